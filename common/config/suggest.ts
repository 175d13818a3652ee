/**
 * "Did you mean …?" for a misspelt name: the closest candidate by edit distance (insertions,
 * deletions, substitutions and swaps of neighbours), or one that the name is the start of
 * (`UPLOAD_AGENT_SERVER` → `UPLOAD_AGENT_SERVER_URL`). Undefined when nothing is close.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = name.toLowerCase();
  let best: { candidate: string; distance: number; prefix: boolean } | undefined;
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    const distance = editDistance(wanted, lower);
    if (best === undefined || distance < best.distance)
      best = { candidate, distance, prefix: lower.startsWith(wanted) || wanted.startsWith(lower) };
  }
  if (!best) return undefined;
  // Close means: a few typos relative to the length of the name, or a few more letters at its end.
  const allowed = best.prefix ? Math.max(4, Math.floor(wanted.length / 3)) : Math.max(2, Math.floor(wanted.length / 4));
  return best.distance <= allowed ? best.candidate : undefined;
}

/** ` (did you mean X?)`, or nothing. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const closest = closestName(name, candidates);
  return closest === undefined ? '' : ` (did you mean ${closest}?)`;
}

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits of one substring). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i += 1) {
    for (let j = 1; j < cols; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}
