import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback TCP proxy for fault injection: it forwards bytes both ways, each chunk held back
 * by `latencyMs` (order kept), and it can stop accepting (connection refused, like a dead server)
 * and start again on the same port.
 */
export interface TcpProxy {
  readonly port: number;
  /** `http://127.0.0.1:{port}` */
  readonly endpoint: string;
  latencyMs: number;
  /** Closes the listener and cuts every connection; the port then refuses connections. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Pipe {
  cancel(): void;
}

/** Forwards `from` to `to`, delaying each chunk by the latency at the time it arrived. */
function delayedPipe(from: Socket, to: Socket, latency: () => number): Pipe {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const flush = (): void => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
    else if (ended && !to.destroyed) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: Date.now() + latency(), chunk });
    if (timer === undefined) timer = setTimeout(flush, Math.max(0, queue[0]!.due - Date.now()));
  });
  from.on('end', () => {
    ended = true;
    if (timer === undefined) flush();
  });
  return {
    cancel: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
    },
  };
}

/** Starts a proxy on 127.0.0.1 (an ephemeral port) in front of `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number, latencyMs = 0): Promise<TcpProxy> {
  const live = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  let server: Server | undefined;
  let port = 0;

  const cut = (link: { client: Socket; upstream: Socket; pipes: Pipe[] }): void => {
    live.delete(link);
    for (const p of link.pipes) p.cancel();
    link.client.destroy();
    link.upstream.destroy();
  };

  const listen = async (): Promise<void> => {
    // Half-open sockets: an end travels through the proxy with the same delay as the data.
    const s = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
      const link = { client, upstream, pipes: [] as Pipe[] };
      live.add(link);
      link.pipes.push(delayedPipe(client, upstream, () => proxy.latencyMs));
      link.pipes.push(delayedPipe(upstream, client, () => proxy.latencyMs));
      client.on('error', () => cut(link));
      upstream.on('error', () => cut(link));
      const closed = (): void => {
        if (client.destroyed && upstream.destroyed) live.delete(link);
      };
      client.on('close', closed);
      upstream.on('close', closed);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const link of [...live]) cut(link);
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  const proxy: TcpProxy = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    latencyMs,
    stop,
    start: listen,
    close: stop,
  };
  return proxy;
}
