/**
 * Section e: health-check load on the availability API, per member, per minute, per isolate.
 *
 * Simulated time (the client's `now` option), real probes: an isolate serving a request every
 * 200 ms (simulated) for a few simulated minutes against real gateways with the availability
 * emulation. Each request's background work (`waitUntil`) is awaited before the clock moves
 * on, so every refresh that traffic triggers really runs. Every HTTP call is counted by a
 * `fetch` wrapper; the library's own `stats.probes` is reported next to it.
 *
 * Isolates are emulated in one process by `resetHealthStores()` between client constructions:
 * a client keeps the store it was built with, so the cron client and the request client hold
 * separate stores, as two isolates would.
 *
 * `probeDelayMs` is 0 here: the pause between probes is real time and does not change how many
 * probes run, only how long the simulation takes.
 */
import {
  createFailoverRedis,
  type FailoverOptions,
  type KVNamespaceLike,
  kvHealthCache,
  resetHealthStores,
} from '../src/index.js';
import type { LocalMember } from '../src/testing/index.js';
import { round } from './lib/stats.js';
import { barChart, type Chart } from './lib/svg.js';

export interface ProbeLoadScenario {
  name: string;
  health: NonNullable<FailoverOptions['health']>;
  shared: boolean;
}

export const PROBE_SCENARIOS: ProbeLoadScenario[] = [
  { name: 'defaults (5 s, 1 probe), no shared tier', health: {}, shared: false },
  {
    name: "anchors' checks (5 s, 3 probes), no shared tier",
    health: { probes: 3 },
    shared: false,
  },
  { name: 'defaults + KV tier fed by the cron helper', health: {}, shared: true },
  {
    name: "anchors' checks + KV tier fed by the cron helper",
    health: { probes: 3 },
    shared: true,
  },
];

export interface ProbeLoadResult {
  name: string;
  shared: boolean;
  simulatedMinutes: number;
  requestsPerMinute: number;
  /** Request isolate: availability API HTTP calls per member per minute. */
  isolateAvailabilityCallsPerMemberMinute: number;
  /** Request isolate: REST PING calls per member per minute (probe fallback). */
  isolatePingCallsPerMemberMinute: number;
  /** Request isolate: `stats.probes` per member per minute. */
  isolateProbesPerMemberMinute: number;
  isolateRefreshesPerMinute: number;
  isolateKvReadsPerMinute: number;
  /** The cron isolate (shared tier only): availability calls per member per minute. */
  cronAvailabilityCallsPerMemberMinute: number;
  kvWritesPerMinute: number;
}

class MemoryKv implements KVNamespaceLike {
  readonly data = new Map<string, string>();
  reads = 0;
  writes = 0;
  async get(key: string, _type: 'json'): Promise<unknown> {
    this.reads += 1;
    const value = this.data.get(key);
    return value === undefined ? null : JSON.parse(value);
  }
  async put(key: string, value: string): Promise<void> {
    this.writes += 1;
    this.data.set(key, value);
  }
}

interface Counter {
  availability: number;
  ping: number;
  data: number;
}

function countingFetch(counter: Counter): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname.startsWith('/v1/')) counter.availability += 1;
    else if (typeof init?.body === 'string' && /^\["ping"\]$/i.test(init.body)) counter.ping += 1;
    else counter.data += 1;
    return fetch(input, init);
  };
}

export async function runProbeLoad(
  members: LocalMember[],
  options: { simulatedMinutes: number; stepMs: number; log: (line: string) => void },
): Promise<ProbeLoadResult[]> {
  const results: ProbeLoadResult[] = [];
  const minutes = options.simulatedMinutes;
  const perMember = members.length * minutes;
  for (const scenario of PROBE_SCENARIOS) {
    let now = Date.UTC(2026, 0, 1);
    const clock = () => now;
    const kv = new MemoryKv();
    const health = {
      ...scenario.health,
      probeDelayMs: 0,
      ...(scenario.shared ? { cache: kvHealthCache(kv, { minWriteIntervalMs: 0 }) } : {}),
    };
    const cronCounter: Counter = { availability: 0, ping: 0, data: 0 };
    const isolateCounter: Counter = { availability: 0, ping: 0, data: 0 };
    resetHealthStores();
    const cron = createFailoverRedis({
      members,
      now: clock,
      health,
      fetch: countingFetch(cronCounter),
    });
    resetHealthStores();
    const isolate = createFailoverRedis({
      members,
      now: clock,
      health,
      fetch: countingFetch(isolateCounter),
    });
    resetHealthStores();

    let requests = 0;
    const end = minutes * 60_000;
    for (let t = 0; t < end; t += options.stepMs) {
      now = Date.UTC(2026, 0, 1) + t;
      if (scenario.shared && t % 60_000 === 0) await cron.refreshAll();
      const background: Promise<unknown>[] = [];
      await isolate.scope({ waitUntil: (p) => background.push(p) }).get('bench:probe-load');
      requests += 1;
      await Promise.all(background);
    }
    const stats = isolate.snapshot().stats;
    const probes = Object.values(stats.probes).reduce((s, v) => s + v, 0);
    const result: ProbeLoadResult = {
      name: scenario.name,
      shared: scenario.shared,
      simulatedMinutes: minutes,
      requestsPerMinute: round(requests / minutes),
      isolateAvailabilityCallsPerMemberMinute: round(isolateCounter.availability / perMember),
      isolatePingCallsPerMemberMinute: round(isolateCounter.ping / perMember),
      isolateProbesPerMemberMinute: round(probes / perMember),
      isolateRefreshesPerMinute: round(stats.refreshes / minutes),
      isolateKvReadsPerMinute: round(stats.sharedReads / minutes),
      cronAvailabilityCallsPerMemberMinute: round(cronCounter.availability / perMember),
      kvWritesPerMinute: round(kv.writes / minutes),
    };
    options.log(
      `  ${scenario.name}: isolate ${result.isolateAvailabilityCallsPerMemberMinute} availability calls/member/min, ` +
        `probes ${result.isolateProbesPerMemberMinute}, cron ${result.cronAvailabilityCallsPerMemberMinute}`,
    );
    results.push(result);
  }
  resetHealthStores();
  return results;
}

export const ISOLATE_COUNTS = [1, 10, 100, 1000];

/** Availability API calls per member per minute for the whole fleet of N isolates. */
export function fleetLoad(r: ProbeLoadResult, isolates: number): number {
  return (
    r.cronAvailabilityCallsPerMemberMinute + isolates * r.isolateAvailabilityCallsPerMemberMinute
  );
}

export function probeLoadChart(results: ProbeLoadResult[]): Chart {
  return barChart({
    title: 'Availability API calls per member per minute, whole fleet of N busy isolates',
    yLabel: 'calls / member / minute',
    categories: ISOLATE_COUNTS.map((n) => `${n} isolate${n === 1 ? '' : 's'}`),
    groups: results.map((r) => ({
      name: r.name,
      values: ISOLATE_COUNTS.map((n) => fleetLoad(r, n)),
    })),
    log: true,
    width: 980,
    height: 340,
    legendWidth: 300,
    format: (v) => (v >= 1000 ? `${round(v / 1000)}k` : String(round(v))),
  });
}
