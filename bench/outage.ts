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
import { DEFAULTS } from '../src/config.js';
import { MemberGroup } from './lib/remote-cluster.js';
import { round, sleep, summarize } from './lib/stats.js';
import { type Chart, lineChart, PALETTE, type Series } from './lib/svg.js';
import type { AttemptRecord, DriverConfig, DriverResult, RequestRecord } from './outage-driver.js';

const DRIVER = fileURLToPath(new URL('./outage-driver.ts', import.meta.url));
const READ_KEYS = 100;
/** Neither configuration sets these: both clients run with the library's defaults. */
const ATTEMPT_TIMEOUT_MS = DEFAULTS.timeoutMs;
const DEADLINE_MS = DEFAULTS.deadlineMs;
/**
 * A client that sent more than one workload attempt to the faulty member in the last second
 * before the traffic stopped is still on it (at 50 requests/s one that is sends ~50; a lone
 * trial attempt is not "still on it").
 */
const STILL_ON_WINDOW_MS = 1000;

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
  /**
   * Requests started in the outage window (the same for both clients of a scenario: from the
   * fault to the slower client's `timeToHealthyMs` plus one attempt timeout, or to the end of the
   * traffic if a client never left the faulty member). Latency in ms, a failed request counted
   * as taking the whole deadline (censored: failing fast is not a good latency). `okP99`: p99
   * of the window's successful requests alone; `failed`: the window's failed requests.
   */
  outageLatency: {
    windowMs: number;
    n: number;
    failed: number;
    p50: number;
    p99: number;
    max: number;
    okP99: number;
  };
  /**
   * ms from the fault until the last workload attempt on the faulty member settled as the
   * client saw it (its failure event, at the attempt timeout for a hung member, or its answer):
   * from then on no request waits on that member. null: never (still on it at the end).
   */
  timeToHealthyMs: number | null;
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
  /** Requests still unsettled at the end of the drain window (counted as failed). */
  undrained: number;
}

export interface OutageScenario {
  fault: Fault;
  preFaultMs: number;
  postFaultMs: number;
  ratePerSecond: number;
  /** The attempt timeout and deadline both clients ran with (the library's defaults). */
  attemptTimeoutMs: number;
  deadlineMs: number;
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

/**
 * ms from the fault until the client's last workload attempt on `faulty` settled, or null if it
 * was still sending workload attempts there when the traffic stopped. An attempt settles, for
 * the client, at its failure event (a hung member: when the attempt timeout fires, though the
 * fetch itself may hang on) or at its answer (the request it served ended then).
 */
function healthyAfter(result: DriverResult, faultAt: number, faulty: string): number | null {
  const recent = result.attempts.filter(
    (a) =>
      a.purpose === 'data' && a.member === faulty && a.t >= result.stoppedAt - STILL_ON_WINDOW_MS,
  );
  if (result.activeAtEnd === faulty || recent.length > 1) return null;
  let last = faultAt;
  for (const f of result.failures) if (f.member === faulty) last = Math.max(last, f.at);
  for (const r of result.requests) if (r.ok && r.member === faulty) last = Math.max(last, r.end);
  return last - faultAt;
}

function analyse(
  result: DriverResult,
  faultAt: number,
  faulty: string,
  counts: Map<string, Record<string, number>>,
  healthyMs: number | null,
  windowEnd: number,
): OutageSide {
  const requests = result.requests;
  const errors: Record<string, number> = {};
  for (const r of requests) if (!r.ok) errors[r.error ?? '?'] = (errors[r.error ?? '?'] ?? 0) + 1;
  const inWindow = requests.filter((r) => r.start >= faultAt && r.start < windowEnd);
  const censored = inWindow.map((r) =>
    r.ok ? r.end - r.start : Math.max(r.end - r.start, DEADLINE_MS),
  );
  const s = summarize(censored);
  const ok = summarize(inWindow.filter((r) => r.ok).map((r) => r.end - r.start));

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
    outageLatency: {
      windowMs: windowEnd - faultAt,
      n: s.n,
      failed: inWindow.filter((r) => !r.ok).length,
      p50: round(s.p50),
      p99: round(s.p99),
      max: round(s.max),
      okP99: round(ok.p99),
    },
    timeToHealthyMs: healthyMs,
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
    undrained: result.undrained,
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
      attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
      deadlineMs: DEADLINE_MS,
      sides: [],
      timeline: {} as OutageScenario['timeline'],
    };
    // One outage window for both clients, so their latencies cover the same stretch of time.
    const healthy = results.map((result) => healthyAfter(result, faultAt, 'a'));
    const windowEnd = healthy.some((h) => h === null)
      ? stoppedAt
      : Math.min(stoppedAt, faultAt + Math.max(...(healthy as number[])) + ATTEMPT_TIMEOUT_MS);
    for (const [i, result] of results.entries()) {
      const keys = result.requests.filter((r) => r.kind === 'write').map((r) => r.key);
      const counts = await countWrites(cluster, readable, keys);
      const side = analyse(result, faultAt, 'a', counts, healthy[i] ?? null, windowEnd);
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
          `p99 ${side.outageLatency.p99} ms (failed = ${DEADLINE_MS} ms; ok only ${side.outageLatency.okP99} ms) ` +
          `over ${side.outageLatency.windowMs} ms, all traffic healthy after ${side.timeToHealthyMs ?? 'never'} ms, ` +
          `undrained ${side.undrained}, ` +
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
