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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
