// `ws` comes with @nestjs/graphql (its graphql-ws server); tests use its client on Node 20, which
// has no global WebSocket. Only what graphql-ws's createClient takes is declared.
declare module 'ws' {
  const WebSocket: unknown;
  export default WebSocket;
}
