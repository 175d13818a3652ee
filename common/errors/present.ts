/**
 * Returns a value that the code around it guarantees (an index inside its array, a regular
 * expression group that always takes part in a match, a key set just before). Where a non-null
 * assertion would let `undefined` travel on and fail somewhere else, this fails at once and names
 * what was missing: a broken guarantee is a bug, reported as one.
 */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`Internal error: ${what} is missing`);
  return value;
}
