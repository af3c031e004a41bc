import { compactKey, encodeKey, LONG_KEY_LENGTH } from './cache-key.js';

type Node = Map<unknown, unknown>;

/**
 * Remembers the canonical encoding of argument lists made of primitives, so the L1 hit path of a
 * hot key does no string building at all.
 *
 * Looking up a freshly built key string costs more than everything else on an L1 hit: the string
 * must be flattened and hashed on every call. Here each argument is looked up in nested Maps
 * (one per position; strings coming from the caller already carry their hash), and the leaf is
 * the encoded key created once, whose hash V8 then caches too. The encoding is a pure function of
 * the arguments, so a memo entry can never be wrong, only missing; the memo is dropped whole when
 * it reaches its size limit (counted in nodes, inner ones included), which keeps it bounded
 * without bookkeeping.
 */
export class KeyMemo {
  // One root per arity (0 to 4 arguments); the last level maps the last argument to the key.
  private readonly roots: (Node | undefined)[] = [];
  private noArgs: string | undefined;
  private size = 0;

  constructor(
    private readonly limit: number,
    private readonly namespace: string,
  ) {}

  /** The canonical encoding of `args` as kept in memory ({@link compactKey}), from the memo when possible. */
  key(args: readonly unknown[]): string {
    const n = args.length;
    if (n === 0) return (this.noArgs ??= this.encode(args));
    // A memo that may hold nothing (an L1 of size 0) would build and drop a Map on every call.
    if (this.limit === 0) return this.encode(args);
    if (n > 4) return this.encode(args);
    let node = this.roots[n];
    if (node === undefined) node = this.roots[n] = new Map();
    for (let i = 0; i < n - 1; i++) {
      const v = args[i];
      // A hole reads as undefined, which the encoding keeps apart: only the slow path tells.
      if (!memoizable(v) || (v === undefined && !(i in args))) {
        return this.encode(args);
      }
      let next = node.get(v) as Node | undefined;
      if (next === undefined) {
        // Every node counts toward the limit, inner ones too: distinct first arguments each
        // hold a Map, however few keys end in it.
        if (++this.size > this.limit) return this.reset(args);
        next = new Map();
        node.set(v, next);
      }
      node = next;
    }
    const last = args[n - 1];
    if (!memoizable(last) || (last === undefined && !(n - 1 in args))) {
      return this.encode(args);
    }
    let key = node.get(last) as string | undefined;
    if (key === undefined) {
      key = this.encode(args);
      if (++this.size > this.limit) this.clear();
      else node.set(last, key);
    }
    return key;
  }

  /** Starts the memo over when it is full, and encodes `args` without it this once. */
  private reset(args: readonly unknown[]): string {
    this.clear();
    return this.encode(args);
  }

  private encode(args: readonly unknown[]): string {
    return compactKey(encodeKey(args, this.namespace));
  }

  clear(): void {
    this.roots.length = 0;
    this.size = 0;
  }
}

/**
 * Primitives whose Map identity matches their key identity. Map keys compare by SameValueZero,
 * which merges -0 with 0 while the key encoding keeps them apart, so -0 takes the slow path.
 */
function memoizable(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
      // The memo would keep a long argument alive (its Map key) as long as the memo lives.
      return v.length <= LONG_KEY_LENGTH;
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return v !== 0 || 1 / v > 0;
    case 'object':
      return v === null;
    default:
      return false;
  }
}
