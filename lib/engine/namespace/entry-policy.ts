/**
 * A namespace's ttl: seconds, `null` (never expires), or a function of the result, so that each
 * entry gets its own.
 *
 * @example
 * const ttl: TtlOption = (user: User | null) => (user === null ? 30 : 3600);
 */
export type TtlOption = number | null | ((value: never) => number | null);

/**
 * An entry's tags, for `deleteByTag`: fixed, or a function of the result and the arguments.
 *
 * @example
 * const tags: TagsOption = (order: Order) => [`customer:${order.customerId}`];
 */
export type TagsOption =
  readonly string[] | ((value: never, ...args: never[]) => readonly string[]);

/** The most tags an entry may carry (a revalidation reads them with the item: 100 keys a call). */
export const MAX_TAGS = 64;
/**
 * The longest tag, in UTF-8 bytes (a marker's key, prefix and tag, must fit DynamoDB's 2,048-byte
 * partition key; `keyPrefix` is limited accordingly).
 */
export const MAX_TAG_LENGTH = 1024;

/**
 * Why a tag list cannot be used, or `undefined` when it can: an array of at most
 * {@link MAX_TAGS} non-empty strings of at most {@link MAX_TAG_LENGTH} UTF-8 bytes.
 */
export function tagsProblem(tags: unknown): string | undefined {
  if (!Array.isArray(tags)) return `tags must be an array of strings, got ${typeof tags}`;
  if (tags.length > MAX_TAGS)
    return `an entry may carry at most ${MAX_TAGS} tags, got ${tags.length}`;
  // Bytes, not characters: a marker's key (`#tag:{tag}#`) must fit DynamoDB's 2,048 bytes.
  const bad = (tags as unknown[]).findIndex(
    (tag) =>
      typeof tag !== 'string' ||
      tag === '' ||
      Buffer.byteLength(tag) > MAX_TAG_LENGTH ||
      !isWellFormed(tag),
  );
  return bad === -1
    ? undefined
    : `tags[${bad}] must be a non-empty, well-formed string (no lone surrogate) of at most ${MAX_TAG_LENGTH} bytes (UTF-8)`;
}

/**
 * Whether a string has no lone surrogate. One becomes U+FFFD in UTF-8, so two names that differ
 * only there would share DynamoDB keys (another namespace's or tag's entries).
 */
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The longest ttl (and grace) in seconds, about 317 years: an item's times must stay numbers
 * DynamoDB stores (a ttl of 1e200 overflowed every write). `null` is "never expires".
 */
export const MAX_TTL_S = 1e10;

/** Why a ttl (given, or returned by a ttl function) cannot be used, or `undefined`. */
export function ttlProblem(ttl: unknown): string | undefined {
  if (ttl === null) return undefined;
  return typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 && ttl <= MAX_TTL_S
    ? undefined
    : `ttl must be a positive number of seconds up to ${MAX_TTL_S} or null, got ${String(ttl)}`;
}

/**
 * How long one computed entry lives, and its tags, from the namespace's settings: `ttl` and `tags`
 * may be functions of the result. A function that throws or returns something unusable makes the
 * entry unstorable (`problem`): the result is still returned.
 *
 * @example
 * const life = entryLife(settings, user, [id]);
 * if ('problem' in life) logger.warn(life.problem);
 */
export function entryLife(
  ttl: TtlOption,
  tags: TagsOption | undefined,
  value: unknown,
  args: readonly unknown[],
): { ttl: number | null; tags: readonly string[] | undefined } | { problem: string } {
  let seconds: unknown = ttl;
  let list: unknown = tags;
  try {
    if (typeof ttl === 'function') seconds = (ttl as (value: unknown) => unknown)(value);
    if (typeof tags === 'function') {
      list = (tags as (value: unknown, ...args: unknown[]) => unknown)(value, ...args);
    }
  } catch (err) {
    return { problem: `the ttl or tags function threw: ${(err as Error)?.message ?? String(err)}` };
  }
  const problem = ttlProblem(seconds) ?? (list === undefined ? undefined : tagsProblem(list));
  if (problem !== undefined) return { problem };
  const usable = list as readonly string[] | undefined;
  return { ttl: seconds as number | null, tags: usable?.length === 0 ? undefined : usable };
}
