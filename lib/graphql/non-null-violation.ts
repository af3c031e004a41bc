/**
 * The part of graphql-js's output types read here: a wrapper's `ofType`. Wrappers are told apart by
 * their `toStringTag` (`GraphQLNonNull`, `GraphQLList`), so this package imports nothing of
 * graphql: an application without GraphQL installs nothing for it.
 */
interface TypeLike {
  readonly ofType?: TypeLike;
}

/** Levels of nested lists checked; deeper counts as a violation (not stored is only a miss). */
const MAX_DEPTH = 64;

/**
 * Whether a resolver's result has `null` (or nothing) where its field's GraphQL type says a value
 * must be: the result of a non-null field (`Float!`), or an item of a list of non-null items
 * (`[Rate!]`), at any depth of lists. GraphQL answers that with a field error and `null` in the
 * nearest nullable place, as it answers an Error in the result: a partial result, the upstream
 * failing quietly (a timeout read as `null`), which stored would answer the error to every client
 * until its ttl ends. Fields of the objects in it are not judged: under Apollo every field has a
 * resolver of the server's own, so the schema does not tell a property GraphQL reads from one
 * computed by a `@ResolveField`, which may well be `null` on the result.
 *
 * @example
 * // @Query(() => Float) rate(...) returning null
 * violatesNonNull(null, info) // true: GraphQL answers an error, nothing is stored
 */
export function violatesNonNull(value: unknown, info: unknown): boolean {
  const walk = (part: unknown, type: TypeLike | undefined, depth: number): boolean => {
    if (depth > MAX_DEPTH) return true;
    let t = type;
    if (tagOf(t) === 'GraphQLNonNull') {
      if (part === null || part === undefined) return true;
      t = t?.ofType;
    }
    if (tagOf(t) !== 'GraphQLList' || !Array.isArray(part)) return false;
    return (part as unknown[]).some((item) => walk(item, t?.ofType, depth + 1));
  };
  return walk(value, (info as { returnType?: TypeLike } | null)?.returnType, 0);
}

function tagOf(type: TypeLike | undefined): string {
  return type === undefined ? '' : Object.prototype.toString.call(type).slice(8, -1);
}
