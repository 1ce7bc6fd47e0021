/**
 * "Did you mean ...?" for typos: the known name closest to what was written, when one is close enough.
 * Shared by vm.yaml, settings.yaml and the command line.
 */

/** Edit distance counting an insertion, deletion, substitution or swap of two neighbours as one edit. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * How close `written` is to `known`, or undefined when it is not close enough to suggest: at most two
 * edits (and fewer edits than half its length, so `ab` is not "close" to `vm`), or the start of `known`
 * (at least 3 characters, so `vm.mem` suggests `vm.memory`). Lower is closer; case is ignored.
 */
export function closeness(written: string, known: string): number | undefined {
  const a = written.toLowerCase();
  const b = known.toLowerCase();
  if (a === b) return 0;
  const distance = editDistance(a, b);
  if (distance <= 2 && distance <= Math.floor(a.length / 2)) return distance;
  // A start of a name ranks after a one-letter slip but before two: `snap` is `snapshot`, not `stop`.
  if (a.length >= 3 && b.startsWith(a)) return distance <= 1 ? distance : 1.5;
  return undefined;
}

/** The closest of `candidates` (the first on a tie), or undefined when none is close. */
export function suggest(written: string, candidates: Iterable<string>): string | undefined {
  let best: { name: string; score: number } | undefined;
  for (const name of candidates) {
    if (name === written) continue;
    const score = closeness(written, name);
    if (score !== undefined && (best === undefined || score < best.score)) best = { name, score };
  }
  return best?.name;
}
