/**
 * One client configuration under steady traffic, in its own process (so its health store is
 * its own, as in a separate isolate). Forked by outage.ts; talks over IPC:
 *
 *   parent → {type:'start'}   begin traffic
 *   parent → {type:'stop'}    stop launching, wait for in-flight requests, report
 *   child  → {type:'ready'} / {type:'done', result}
 *
 * Every request is its own request scope (as an edge request would be): 80 % GET of a seeded
 * key, 20 % INCR of a key used exactly once, so duplicates can be counted per member later.
 * `fetch` is wrapped to log every attempt (member, kind, outcome) for the analysis. Requests
 * still unsettled when the drain window after `stop` ends are reported as failed
 * (`NotDrained`), not dropped.
 */
import { createFailoverRedis, type FailoverOptions } from '../src/index.js';
import type { LocalMember } from '../src/testing/index.js';

export interface DriverConfig {
  mode: 'ours' | 'anchor';
  members: LocalMember[];
  prefix: string;
  ratePerSecond: number;
  readKeys: number;
}

export interface RequestRecord {
  start: number;
  end: number;
  kind: 'read' | 'write';
  key: string;
  ok: boolean;
  error?: string;
  /** First failure message (for the report's error table). */
  message?: string;
  member?: string;
}

export interface AttemptRecord {
  t: number;
  member: string;
  /** `data` (a workload command), `ping` (probe through the REST API), `availability`. */
  purpose: 'data' | 'ping' | 'availability';
  /** INCR key for write attempts. */
  key?: string;
  /** `ok` (HTTP answer), `not-sent` (refused, or 503 with the not-sent marker), `unknown`. */
  outcome?: 'ok' | 'not-sent' | 'unknown';
  status?: number;
  /**
   * When `fetch` settled (answer headers or error). Unset for a fetch still hanging at the
   * report: without an abort signal, the client stops waiting at its timeout but the fetch
   * does not end (its failure event has the client's time).
   */
  end?: number;
}

export interface DriverResult {
  mode: DriverConfig['mode'];
  requests: RequestRecord[];
  attempts: AttemptRecord[];
  switches: Array<{ from?: string; to: string; reason: string; at: number }>;
  probes: Record<string, number>;
  skipped: number;
  /** When `stop` arrived (Date.now()). */
  stoppedAt: number;
  /** `activeMember()` when `stop` arrived. */
  activeAtEnd?: string;
  /** Requests still unsettled after the drain window, reported as failed (`NotDrained`). */
  undrained: number;
  /** The client's `failure` events (member, kind, message), for the error table. */
  failures: Array<{
    member: string;
    kind: string;
    message: string;
    failedOver: boolean;
    at: number;
  }>;
}

const MAX_IN_FLIGHT = 600;
const DRAIN_LIMIT_MS = 8000;

const config = JSON.parse(process.env.BENCH_DRIVER ?? '{}') as DriverConfig;
const memberByOrigin = new Map(config.members.map((m) => [new URL(m.url).origin, m.name]));
const attempts: AttemptRecord[] = [];

function errorCode(error: unknown): string | undefined {
  let current = error as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (typeof current.code === 'string') return current.code;
    current = current.cause as typeof current;
  }
  return undefined;
}

const recordingFetch: typeof fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const member = memberByOrigin.get(url.origin) ?? url.origin;
  const record: AttemptRecord = { t: Date.now(), member, purpose: 'data' };
  if (url.pathname.startsWith('/v1/')) record.purpose = 'availability';
  else if (typeof init?.body === 'string') {
    const body = JSON.parse(init.body) as unknown[];
    const name = String(body[0] ?? '').toLowerCase();
    if (name === 'ping') record.purpose = 'ping';
    if (name === 'incr') record.key = String(body[1]);
  }
  attempts.push(record);
  try {
    const response = await fetch(input, init);
    record.status = response.status;
    record.outcome =
      response.status === 503 && response.headers.get('x-redis-edge-sent') === '0'
        ? 'not-sent'
        : 'ok';
    return response;
  } catch (error) {
    record.outcome = errorCode(error) === 'ECONNREFUSED' ? 'not-sent' : 'unknown';
    throw error;
  } finally {
    record.end = Date.now();
  }
};

const anchorStyle: Partial<FailoverOptions> = {
  requestFailover: false,
  health: { intervalMs: 5000, probes: 3, probeDelayMs: 500 },
  circuit: {
    consecutiveFailures: false,
    failureRate: { threshold: 0.1, minimumFailures: 1000, windowMs: 2000 },
  },
  gracePeriodMs: 60_000,
};

const switches: DriverResult['switches'] = [];
const failures: DriverResult['failures'] = [];
const redis = createFailoverRedis({
  members: config.members,
  fetch: recordingFetch,
  on: {
    failure: (e) =>
      failures.push({
        member: e.member,
        kind: e.kind,
        message: e.message,
        failedOver: e.failedOver,
        at: e.at,
      }),
    switch: (e) => {
      const entry: DriverResult['switches'][number] = { to: e.to, reason: e.reason, at: e.at };
      if (e.from !== undefined) entry.from = e.from;
      switches.push(entry);
    },
  },
  ...(config.mode === 'anchor' ? anchorStyle : {}),
});

const requests: RequestRecord[] = [];
/** Requests in flight, with their records (to report those the drain window leaves behind). */
const inFlight = new Map<Promise<void>, RequestRecord>();
const background: Promise<unknown>[] = [];
let launched = 0;
let writes = 0;
let skipped = 0;
let running = false;
/** Set once the result is assembled: a request settling later must not change it. */
let reported = false;
let timer: ReturnType<typeof setInterval> | undefined;

function launchOne(): void {
  const n = launched++;
  const write = n % 5 === 4;
  const key = write ? `${config.prefix}:w:${writes++}` : `bench:r:${n % config.readKeys}`;
  const scoped = redis.scope({ waitUntil: (p) => background.push(p) });
  const record: RequestRecord = {
    start: Date.now(),
    end: 0,
    kind: write ? 'write' : 'read',
    key,
    ok: false,
  };
  const run = (write ? scoped.incr(key) : scoped.get(key)).then(
    () => {
      record.ok = true;
      const member = scoped.servedBy;
      if (member !== undefined) record.member = member;
    },
    (error: unknown) => {
      record.error = error instanceof Error ? error.name : String(error);
      record.message = (error instanceof Error ? error.message : String(error)).slice(0, 400);
    },
  );
  const tracked = run.finally(() => {
    inFlight.delete(tracked);
    if (reported) return;
    record.end = Date.now();
    requests.push(record);
  });
  inFlight.set(tracked, record);
}

function start(): void {
  running = true;
  const begun = performance.now();
  let due = 0;
  // Launch on schedule (catching up after a late tick, at most 20 at once).
  timer = setInterval(() => {
    if (!running) return;
    const target = Math.floor(((performance.now() - begun) / 1000) * config.ratePerSecond);
    let burst = 0;
    while (due < target && burst < 20) {
      due += 1;
      burst += 1;
      if (inFlight.size >= MAX_IN_FLIGHT) skipped += 1;
      else launchOne();
    }
  }, 5);
}

async function stop(): Promise<void> {
  running = false;
  clearInterval(timer);
  const stoppedAt = Date.now();
  const activeAtEnd = redis.activeMember();
  const limit = new Promise((resolve) => setTimeout(resolve, DRAIN_LIMIT_MS));
  await Promise.race([Promise.allSettled([...inFlight.keys()]), limit]);
  await Promise.race([Promise.allSettled(background), limit]);
  // A request the drain window did not see settle counts as failed: dropping it would make a
  // client whose requests hang look better than one whose requests fail.
  reported = true;
  const drainedAt = Date.now();
  const undrained = [...inFlight.values()];
  for (const record of undrained) {
    record.end = drainedAt;
    record.error = 'NotDrained';
    record.message = `still unsettled ${DRAIN_LIMIT_MS} ms after the traffic stopped`;
    requests.push(record);
  }
  const result: DriverResult = {
    mode: config.mode,
    requests,
    attempts,
    switches,
    probes: redis.snapshot().stats.probes,
    skipped,
    stoppedAt,
    ...(activeAtEnd !== undefined ? { activeAtEnd } : {}),
    undrained: undrained.length,
    failures,
  };
  process.send?.({ type: 'done', result }, () => process.exit(0));
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'start') start();
  else if (message.type === 'stop') void stop();
});
process.on('disconnect', () => process.exit(0));

// Warm up: the first request picks `a` and starts the first health refresh.
async function warm(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await redis.scope({ waitUntil: (p) => background.push(p) }).get('bench:r:0');
  }
  await Promise.allSettled(background);
  background.length = 0;
  attempts.length = 0;
  failures.length = 0;
  process.send?.({ type: 'ready', active: redis.activeMember() });
}
void warm();
