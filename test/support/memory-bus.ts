import type { DynamoCacheBus, DynamoCacheBusMessage } from '../../lib/index.js';

/**
 * A bus between the applications of this process: each message is delivered to every subscriber,
 * the sender included (an engine must ignore its own), synchronously.
 */
export class MemoryBus implements DynamoCacheBus {
  readonly sent: DynamoCacheBusMessage[] = [];
  readonly received: DynamoCacheBusMessage[] = [];
  private handler: ((message: DynamoCacheBusMessage) => void) | undefined;

  constructor(private readonly hub: Set<MemoryBus>) {}

  publish(message: DynamoCacheBusMessage): void {
    this.sent.push(message);
    for (const bus of this.hub) bus.deliver(message);
  }

  subscribe(handler: (message: DynamoCacheBusMessage) => void): void {
    this.handler = handler;
    this.hub.add(this);
  }

  close(): void {
    this.hub.delete(this);
    this.handler = undefined;
  }

  private deliver(message: DynamoCacheBusMessage): void {
    this.received.push(message);
    // A copy, as a real transport would deliver.
    this.handler?.(structuredClone(message));
  }
}
