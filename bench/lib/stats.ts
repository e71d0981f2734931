/** Small statistics helpers for the benchmarks. */

/** Nearest-rank percentile of already sorted values (p in 0..100). */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentileSorted(sorted, 50),
    p99: percentileSorted(sorted, 99),
    mean: mean(sorted),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** Rounds for tables and JSON: 3 significant digits below 100, integers above. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(digits));
}

export function fmt(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  return `${round(value)}${unit}`;
}

/** Ratio formatted as a signed percentage difference: 1.031 → "+3.1 %". */
export function pct(ratio: number): string {
  if (!Number.isFinite(ratio)) return 'n/a';
  const d = (ratio - 1) * 100;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)} %`;
}

/** xorshift32: deterministic and cheap; a seeded stream per benchmark worker or resampling. */
export function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * 95 % bootstrap interval of the median (percentile method). Seeded, so rendering the same
 * results twice gives the same table. With ~20 paired rounds it says whether a median a little
 * past a goal could just as well be a little inside it on this machine.
 */
export function medianInterval(values: readonly number[], resamples = 2000): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  const next = rng(0x9e3779b9);
  const medians: number[] = [];
  const sample = new Array<number>(values.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(next() * values.length)]!;
    medians.push(median(sample));
  }
  medians.sort((a, b) => a - b);
  return [percentileSorted(medians, 2.5), percentileSorted(medians, 97.5)];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
