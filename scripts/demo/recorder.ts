/**
 * What the demo measures: every request's outcome and serving member, bucketed per second,
 * plus the switches and the fault timeline. Pure bookkeeping, no I/O.
 */

export type Operation = 'read' | 'write' | 'counter';

export interface RequestRecord {
  at: number;
  op: Operation;
  status: number;
  member: string | undefined;
  latencyMs: number;
}

export interface Marker {
  at: number;
  label: string;
  kind: 'fault' | 'restore' | 'switch';
}

export interface SecondBucket {
  served: Record<string, number>;
  errors: number;
}

/** A read failed when the worker could not answer it (404 is an answer: the key is absent). */
export function isFailure(r: RequestRecord): boolean {
  if (r.op === 'read') return r.status !== 200 && r.status !== 404;
  if (r.op === 'counter') return r.status !== 200 && r.status !== 409;
  return r.status !== 200;
}

export class Recorder {
  readonly records: RequestRecord[] = [];
  readonly markers: Marker[] = [];
  readonly buckets: SecondBucket[] = [];

  constructor(
    readonly startedAt: number,
    readonly members: string[],
  ) {}

  second(at: number): number {
    return Math.max(0, Math.floor((at - this.startedAt) / 1000));
  }

  add(record: RequestRecord): void {
    this.records.push(record);
    const s = this.second(record.at);
    while (this.buckets.length <= s) this.buckets.push({ served: {}, errors: 0 });
    const bucket = this.buckets[s]!;
    if (isFailure(record)) bucket.errors += 1;
    else if (record.member) bucket.served[record.member] = (bucket.served[record.member] ?? 0) + 1;
  }

  mark(marker: Marker): void {
    this.markers.push(marker);
  }

  /** Requests per member in the last `seconds` whole seconds. */
  recent(seconds: number, now: number): { served: Record<string, number>; errors: number } {
    const to = this.second(now);
    const served: Record<string, number> = {};
    let errors = 0;
    for (let s = Math.max(0, to - seconds); s < to; s++) {
      const b = this.buckets[s];
      if (!b) continue;
      errors += b.errors;
      for (const [m, n] of Object.entries(b.served)) served[m] = (served[m] ?? 0) + n;
    }
    return { served, errors };
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface Summary {
  requests: number;
  reads: number;
  failedReads: number;
  failedWrites: number;
  ambiguousWritesRefused: number;
  failovers: number;
  failbacks: number;
  timeToFailOverMs: number | undefined;
  timeToFailBackMs: number | undefined;
  p50Ms: number;
  p99Ms: number;
  servedBy: Record<string, number>;
}

export function summarize(
  rec: Recorder,
  switches: Array<{ at: number; reason: string; from?: string; to: string }>,
): Summary {
  const reads = rec.records.filter((r) => r.op === 'read');
  const latencies = rec.records.map((r) => r.latencyMs).sort((a, b) => a - b);
  const fault = rec.markers.find((m) => m.kind === 'fault');
  const restore = rec.markers.find((m) => m.kind === 'restore');
  const failover = fault
    ? switches.find((s) => s.at >= fault.at && s.reason !== 'failback')
    : undefined;
  const failback = restore
    ? switches.find((s) => s.at >= restore.at && s.reason === 'failback')
    : undefined;
  const servedBy: Record<string, number> = {};
  for (const r of rec.records) {
    if (!isFailure(r) && r.member) servedBy[r.member] = (servedBy[r.member] ?? 0) + 1;
  }
  return {
    requests: rec.records.length,
    reads: reads.length,
    failedReads: reads.filter(isFailure).length,
    failedWrites: rec.records.filter((r) => r.op !== 'read' && isFailure(r)).length,
    ambiguousWritesRefused: rec.records.filter((r) => r.op === 'counter' && r.status === 409)
      .length,
    failovers: switches.filter((s) => s.reason !== 'failback').length,
    failbacks: switches.filter((s) => s.reason === 'failback').length,
    timeToFailOverMs: fault && failover ? failover.at - fault.at : undefined,
    timeToFailBackMs: restore && failback ? failback.at - restore.at : undefined,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    servedBy,
  };
}
