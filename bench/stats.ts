/** Shared shapes and arithmetic for the benchmarks. */

/** One benchmark figure set, printed as one JSON line. */
export interface BenchResult {
  readonly name: string;
  readonly [key: string]: number | string;
}

/** The q-quantile (0..1) of samples, nearest-rank. */
export function percentile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? NaN;
}
