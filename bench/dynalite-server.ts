/**
 * dynalite in a process of its own (started by dynamo-backend.ts, pinned to the server core), so
 * the benchmark process's CPU figures hold the client's work only. Sends `{ port }` over IPC once
 * listening; exits when its parent goes away.
 */
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
const quit = (): void => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on('disconnect', quit);
process.on('SIGTERM', quit);
