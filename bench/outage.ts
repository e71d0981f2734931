/**
 * Section b: an outage under steady traffic, this library (defaults) against an "anchor-style"
 * configuration of itself (active member only, health checks every 5 s with 3 probes 500 ms
 * apart, circuit at the anchors' thresholds, 60 s grace), side by side in the same run: both
 * drivers run at the same time against the same cluster, each in its own process (its own
 * health store, like two isolates), and the fault hits both at the same instant.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from '@upstash/redis';
import { MemberGroup } from './lib/remote-cluster.js';
import { round, sleep, summarize } from './lib/stats.js';
import { type Chart, lineChart, PALETTE, type Series } from './lib/svg.js';
import type { AttemptRecord, DriverConfig, DriverResult, RequestRecord } from './outage-driver.js';

const DRIVER = fileURLToPath(new URL('./outage-driver.ts', import.meta.url));
const READ_KEYS = 100;

export type Fault = 'kill' | 'sigstop';
type Mode = DriverConfig['mode'];

interface Driver {
  child: ChildProcess;
  done: Promise<DriverResult>;
}

async function startDriver(config: DriverConfig): Promise<Driver> {
  const child = fork(DRIVER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_DRIVER: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let resolveDone: (r: DriverResult) => void = () => {};
  let rejectDone: (e: Error) => void = () => {};
  const done = new Promise<DriverResult>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type: string; result?: DriverResult; active?: string }) => {
      if (m.type === 'ready') {
        if (m.active !== 'a') reject(new Error(`${config.mode}: active member is ${m.active}`));
        else resolve();
      }
      if (m.type === 'done') resolveDone(m.result!);
    });
    child.once('exit', (code) => {
      const error = new Error(`${config.mode} driver exited (${code})`);
      reject(error);
      rejectDone(error);
    });
  });
  await ready;
  return { child, done };
}

export interface OutageSide {
  mode: Mode;
  requests: number;
  failedReads: number;
  failedWrites: number;
  /** Failed requests by error class. */
  errors: Record<string, number>;
  /** Requests started after the fault: latency in ms. */
  outageLatency: { n: number; p50: number; p99: number; max: number };
  /** ms from the fault until the last workload attempt on the faulty member. */
  timeToHealthyMs: number;
  switches: Array<{ from?: string; to: string; reason: string; afterFaultMs: number }>;
  /** Writes found executed on more than one member (counted on readable members). */
  duplicatesCounted: number;
  /** Writes attempted, with a possibly-executed outcome, on two or more members. */
  duplicatesPossible: number;
  /** Writes that failed with AmbiguousWriteError (outcome unknown, not retried). */
  ambiguousWrites: number;
  /** Acknowledged writes missing everywhere readable (kill -9 loses the killed member's data). */
  ackedWritesMissing: number;
  ackedOnFaultyMember: number;
  skipped: number;
  probes: Record<string, number>;
  /** The client's failed attempts after the fault, by member, kind and message. */
  attemptFailures: Record<string, number>;
}

export interface OutageScenario {
  fault: Fault;
  preFaultMs: number;
  postFaultMs: number;
  ratePerSecond: number;
  sides: OutageSide[];
  /** Time series for the SVG, relative to the fault (s). */
  timeline: Record<
    Mode,
    { bucketMs: number; t: number[]; perMember: Record<string, number[]>; errors: number[] }
  >;
}

async function countWrites(
  cluster: MemberGroup,
  readable: string[],
  keys: string[],
): Promise<Map<string, Record<string, number>>> {
  const counts = new Map<string, Record<string, number>>();
  for (const key of keys) counts.set(key, {});
  for (const name of readable) {
    const m = cluster.member(name);
    const client = new Redis({ url: m.url, token: m.token, enableTelemetry: false });
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      if (chunk.length === 0) continue;
      const values = await client.mget<Array<number | null>>(...chunk);
      chunk.forEach((key, j) => {
        const v = values[j];
        if (v !== null && v !== undefined) counts.get(key)![name] = Number(v);
      });
    }
  }
  return counts;
}

function analyse(
  result: DriverResult,
  faultAt: number,
  faulty: string,
  counts: Map<string, Record<string, number>>,
): OutageSide {
  const requests = result.requests;
  const errors: Record<string, number> = {};
  for (const r of requests) if (!r.ok) errors[r.error ?? '?'] = (errors[r.error ?? '?'] ?? 0) + 1;
  const during = requests.filter((r) => r.start >= faultAt).map((r) => r.end - r.start);
  const s = summarize(during);
  const lastOnFaulty = result.attempts
    .filter((a) => a.purpose === 'data' && a.member === faulty && a.t >= faultAt)
    .reduce((max, a) => Math.max(max, a.t), faultAt);

  // Per write key: members where an attempt may have executed it.
  const possibly = new Map<string, Set<string>>();
  for (const a of result.attempts) {
    if (a.key === undefined || a.outcome === 'not-sent') continue;
    const set = possibly.get(a.key) ?? new Set<string>();
    possibly.set(a.key, set);
    set.add(a.member);
  }
  let duplicatesCounted = 0;
  let ackedWritesMissing = 0;
  let ackedOnFaulty = 0;
  const writes = requests.filter((r) => r.kind === 'write');
  for (const w of writes) {
    const perMember = counts.get(w.key) ?? {};
    const total = Object.values(perMember).reduce((sum, v) => sum + v, 0);
    if (total > 1) duplicatesCounted += 1;
    if (w.ok && w.member === faulty) ackedOnFaulty += 1;
    if (w.ok && total === 0 && w.member !== faulty) ackedWritesMissing += 1;
  }
  const duplicatesPossible = [...possibly.values()].filter((set) => set.size > 1).length;

  return {
    mode: result.mode,
    requests: requests.length,
    failedReads: requests.filter((r) => r.kind === 'read' && !r.ok).length,
    failedWrites: writes.filter((r) => !r.ok).length,
    errors,
    outageLatency: { n: s.n, p50: round(s.p50), p99: round(s.p99), max: round(s.max) },
    timeToHealthyMs: lastOnFaulty - faultAt,
    switches: result.switches
      .filter((sw) => sw.at >= faultAt)
      .map((sw) => ({ ...sw, afterFaultMs: sw.at - faultAt })),
    duplicatesCounted,
    duplicatesPossible,
    ambiguousWrites: errors.AmbiguousWriteError ?? 0,
    ackedWritesMissing,
    ackedOnFaultyMember: ackedOnFaulty,
    skipped: result.skipped,
    probes: result.probes,
    attemptFailures: countBy(
      result.failures
        .filter((f) => f.at >= faultAt)
        .map((f) => `${f.member} ${f.kind}: ${f.message.replace(/\d+/g, 'N')}`),
    ),
  };
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function timeline(
  requests: RequestRecord[],
  faultAt: number,
  fromMs: number,
  toMs: number,
  members: string[],
  bucketMs = 250,
) {
  const n = Math.ceil((toMs - fromMs) / bucketMs);
  const t = Array.from({ length: n }, (_, i) => round((fromMs + i * bucketMs) / 1000, 4));
  const perMember: Record<string, number[]> = {};
  for (const m of members) perMember[m] = new Array(n).fill(0);
  const errors = new Array(n).fill(0);
  const scale = 1000 / bucketMs;
  for (const r of requests) {
    const i = Math.floor((r.end - faultAt - fromMs) / bucketMs);
    if (i < 0 || i >= n) continue;
    const served = r.member === undefined ? undefined : perMember[r.member];
    if (r.ok && served) served[i] = (served[i] ?? 0) + scale;
    else if (!r.ok) errors[i] += scale;
  }
  return { bucketMs, t, perMember, errors };
}

export interface OutageOptions {
  ratePerSecond: number;
  preFaultMs: number;
  postFaultMs: number;
  log: (line: string) => void;
}

export async function runOutage(fault: Fault, options: OutageOptions): Promise<OutageScenario> {
  const cluster = await MemberGroup.start(3);
  const drivers: Partial<Record<Mode, Driver>> = {};
  try {
    for (const m of cluster.members) {
      const seeder = new Redis({ url: m.url, token: m.token, enableTelemetry: false });
      const p = seeder.pipeline();
      for (let i = 0; i < READ_KEYS; i++) p.set(`bench:r:${i}`, `${m.name}-${i}`);
      await p.exec();
    }
    for (const mode of ['ours', 'anchor'] as const) {
      drivers[mode] = await startDriver({
        mode,
        members: cluster.members,
        prefix: `${fault}:${mode}`,
        ratePerSecond: options.ratePerSecond,
        readKeys: READ_KEYS,
      });
    }
    const startedAt = Date.now();
    for (const d of Object.values(drivers)) d.child.send({ type: 'start' });
    await sleep(options.preFaultMs);
    const faultAt = Date.now();
    if (fault === 'kill') await cluster.kill('a');
    else await cluster.pause('a');
    options.log(`  ${fault}: fault on member a after ${faultAt - startedAt} ms`);
    await sleep(options.postFaultMs);
    const stoppedAt = Date.now();
    for (const d of Object.values(drivers)) d.child.send({ type: 'stop' });
    const results = await Promise.all(Object.values(drivers).map((d) => d.done));

    let readable = ['b', 'c'];
    if (fault === 'sigstop') {
      // The paused member runs what it had received when it wakes up: count that too.
      await cluster.resume('a');
      await sleep(1000);
      readable = ['a', 'b', 'c'];
    }
    const scenario: OutageScenario = {
      fault,
      preFaultMs: options.preFaultMs,
      postFaultMs: options.postFaultMs,
      ratePerSecond: options.ratePerSecond,
      sides: [],
      timeline: {} as OutageScenario['timeline'],
    };
    for (const result of results) {
      const keys = result.requests.filter((r) => r.kind === 'write').map((r) => r.key);
      const counts = await countWrites(cluster, readable, keys);
      const side = analyse(result, faultAt, 'a', counts);
      scenario.sides.push(side);
      scenario.timeline[result.mode] = timeline(
        result.requests,
        faultAt,
        startedAt - faultAt,
        stoppedAt - faultAt,
        ['a', 'b', 'c'],
      );
      options.log(
        `  ${fault} ${result.mode}: failed reads ${side.failedReads}, failed writes ${side.failedWrites}, ` +
          `p99 ${side.outageLatency.p99} ms, all traffic healthy after ${side.timeToHealthyMs} ms, ` +
          `duplicates ${side.duplicatesCounted}/${side.duplicatesPossible}`,
      );
    }
    return scenario;
  } finally {
    for (const d of Object.values(drivers)) if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await cluster.stop();
  }
}

const MODE_LABEL: Record<Mode, string> = {
  ours: 'this library (defaults)',
  anchor: 'anchor-style (requestFailover: false, 5 s checks)',
};

export function outageCharts(scenario: OutageScenario): Chart[] {
  const what = scenario.fault === 'kill' ? 'kill -9' : 'SIGSTOP';
  const peak = Math.max(
    ...Object.values(scenario.timeline).flatMap((tl) => [
      ...tl.errors,
      ...Object.values(tl.perMember).flat(),
    ]),
  );
  return (['ours', 'anchor'] as const).map((mode) => {
    const tl = scenario.timeline[mode];
    const side = scenario.sides.find((s) => s.mode === mode)!;
    const series: Series[] = Object.entries(tl.perMember).map(([member, values], i) => ({
      name: `served by ${member}`,
      color: PALETTE[i],
      points: values.map((v, j) => [tl.t[j]!, v] as [number, number]),
    }));
    series.push({
      name: 'errors',
      color: '#000',
      dashed: true,
      points: tl.errors.map((v, j) => [tl.t[j]!, v] as [number, number]),
    });
    const markers = [{ x: 0, label: `${what} a`, color: '#d62728' }];
    const first = side.switches[0];
    if (first)
      markers.push({
        x: first.afterFaultMs / 1000,
        label: `switch → ${first.to}`,
        color: '#2ca02c',
      });
    return lineChart({
      title: `${what} of the active member: ${MODE_LABEL[mode]}`,
      xLabel: 'seconds since the fault (by completion time, 250 ms buckets)',
      yLabel: 'requests/s',
      series,
      markers,
      yMax: peak,
    });
  });
}

export type { AttemptRecord };
