/** Shared by the benchmarks: the nearest-rank percentile of sorted samples (NaN when there are none). */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
