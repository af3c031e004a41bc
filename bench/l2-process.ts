/**
 * The parent's side of a contender in a process of its own (l2-child.ts): started on the client
 * core, it answers one request at a time.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnOn, stopProcess } from './cores.js';

export interface ChildSpec {
  endpoint: string;
  label: string;
  keys: number;
}

export type ChildRequest =
  { type: 'turn'; ms: number } | { type: 'round' } | { type: 'stats' } | { type: 'stop' };

export type ChildReply =
  | { type: 'ready' }
  | { type: 'turn'; ops: number; ms: number; cpuUs: number }
  | { type: 'round' }
  | {
      type: 'stats';
      counts: Record<string, number>;
      calls: number;
      readKeys: number;
      method: number;
      factory: number;
    };

export interface ContenderProcess {
  ask<T extends ChildReply['type']>(
    request: ChildRequest & { type: T },
  ): Promise<Extract<ChildReply, { type: T }>>;
  stop(): Promise<void>;
}

/** Starts the contender `spec.label` in a process of its own and waits until it is ready. */
export async function startContender(spec: ChildSpec): Promise<ContenderProcess> {
  const script = fileURLToPath(new URL('./l2-child.js', import.meta.url));
  const child: ChildProcess = spawnOn(
    'client',
    process.execPath,
    ['--expose-gc', script, JSON.stringify(spec)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const next = (): Promise<ChildReply> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(new Error(`L2 contender "${spec.label}" exited with ${code}`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message as ChildReply);
      });
    });
  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`L2 contender "${spec.label}": ${ready.type}`);
  return {
    ask: async (request) => {
      const answer = next();
      child.send(request);
      const reply = await answer;
      if (reply.type !== request.type) {
        throw new Error(`L2 contender "${spec.label}" answered ${reply.type} to ${request.type}`);
      }
      return reply as never;
    },
    stop: async () => {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ type: 'stop' } satisfies ChildRequest);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
      await stopProcess(child);
    },
  };
}
