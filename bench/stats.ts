// Small statistics and timing helpers for the benchmarks.

export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p % of the values at or below it.
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export const median = (values: readonly number[]) => {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** The items rotated left by `by`: run k of an interleaved measurement starts one configuration later. */
export const rotated = <T>(items: readonly T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]);

export const round = (n: number, digits = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : NaN);

/** Runs fn `warmup` times unmeasured, then `runs` times; returns each run's ms. */
export async function timeRuns(fn: () => unknown, runs: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

/**
 * A closed loop: `concurrency` callers each run fn back to back until `seconds` pass.
 * Returns completions per second and every call's latency in ms.
 */
export async function closedLoop(fn: () => Promise<unknown>, concurrency: number, seconds: number): Promise<{ rps: number; latencies: number[] }> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await fn();
      latencies.push(performance.now() - t0);
    }
  }));
  return { rps: latencies.length / ((performance.now() - start) / 1000), latencies };
}

export const loadAverage = async (): Promise<string> => {
  const { loadavg } = await import('node:os');
  return loadavg().map((l) => l.toFixed(2)).join(' ');
};
