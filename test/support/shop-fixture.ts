import { Injectable } from '@nestjs/common';
import { buildCacheKey, DynamoCached, encodeKey } from '../../lib/index.js';

/*
 * A service with tagged and untagged cached methods, shared by the specs of group invalidation
 * and of the bus.
 */

/** What the methods compute from: bumped by a test when "the data" changes. */
export const world = { version: 1 };

export interface Orders {
  customer: string;
  tier: string;
  version: number;
}

@Injectable()
export class ShopService {
  readonly calls = { product: 0, orders: 0, rate: 0 };
  /** Products whose computation has begun. */
  readonly started = new Set<string>();
  /** A product's computation waits for its gate, when one is set. */
  readonly gates = new Map<string, Promise<void>>();

  /** Fixed tags. */
  @DynamoCached({ ttl: 600, tags: ['x'] })
  async product(id: string): Promise<string> {
    this.calls.product++;
    this.started.add(id);
    const version = world.version;
    await this.gates.get(id);
    return `${id}@v${version}`;
  }

  /** Tags from the value (its tier) and the arguments (the customer). */
  @DynamoCached({
    ttl: 600,
    tags: (orders: Orders, customer: string) => [orders.tier, `customer:${customer}`],
  })
  async orders(customer: string): Promise<Orders> {
    this.calls.orders++;
    return { customer, tier: customer === 'c1' ? 'y' : 'w', version: world.version };
  }

  /** No tags. */
  @DynamoCached(600)
  async rate(pair: string): Promise<string> {
    this.calls.rate++;
    return `${pair}@v${world.version}`;
  }
}

export const PRODUCT = 'ShopService.product';
export const ORDERS = 'ShopService.orders';
export const RATE = 'ShopService.rate';
export const keyOf = (ns: string, ...args: unknown[]): string =>
  buildCacheKey('', ns, encodeKey(args));

export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
