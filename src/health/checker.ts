/**
 * The health checker: keeps the store fresh without putting a probe on a user request's path.
 *
 * Refresh is stale-while-revalidate, driven by traffic (there are no timers between requests
 * on the edge): a request that finds the store older than the interval starts one refresh,
 * if none is running in this isolate, and hands it to `waitUntil`. It never awaits it, and no
 * other request ever awaits it either: in workerd a promise created by one request can hang
 * forever when awaited by another. The one exception is a bounded cold-start wait by the very
 * request that started the refresh (the `initialization` policy).
 */

import type { CircuitSettings } from '../circuit.js';
import type { ResolvedHealthOptions } from '../config.js';
import type { Emitter } from '../events.js';
import type { MemberTransport } from '../transport/types.js';
import { quorum, runProbes, sleep } from './policy.js';
import {
  availabilityProbe,
  customProbe,
  type Probe,
  type ProbeVerdict,
  pingProbe,
  scrubSecrets,
} from './probes.js';
import { cacheKeyFor } from './shared.js';
import type { HealthStore } from './store.js';

export interface CheckerDeps {
  store: HealthStore;
  health: ResolvedHealthOptions;
  circuit: CircuitSettings;
  emitter: Emitter;
  transport(name: string): MemberTransport | undefined;
  now(): number;
  fetch?: typeof fetch;
}

/** Probes one member by the configured plan, falling back to PING when the source fails. */
export async function checkMember(
  deps: CheckerDeps,
  name: string,
): Promise<ProbeVerdict | undefined> {
  const { store, health } = deps;
  const record = store.records.get(name);
  const transport = deps.transport(name);
  if (!record || !transport) return undefined;
  const { probe } = health;
  const primary =
    typeof probe === 'function'
      ? customProbe(probe)
      : probe !== 'ping' && record.member.availability
        ? availabilityProbe
        : pingProbe;
  const counted: Probe = (ctx) => {
    store.stats.probes[name] = (store.stats.probes[name] ?? 0) + 1;
    return primary(ctx);
  };
  const ctx = {
    member: record.member,
    transport,
    timeoutMs: health.probeTimeoutMs,
    uidCache: store.uidCache,
    fetch: deps.fetch,
  };
  // `health` carries the plan: probes, probeDelayMs, policy.
  let verdict = await runProbes(counted, ctx, health);
  // The probe that decides; a config problem there (a wrong token: PING refused) is no verdict.
  let decider = verdict;
  // The health source is broken, not necessarily the member: ask the data path itself, unless
  // the user wants an unreachable source to mean "down".
  const fallBack = verdict.unreachable
    ? health.onSourceUnreachable !== 'unhealthy'
    : verdict.configProblem;
  if (fallBack && primary !== pingProbe) {
    decider = await runProbes(pingProbe, ctx, health);
    verdict = {
      ...decider,
      reason: `${decider.reason} (${verdict.reason})`,
      configProblem: verdict.configProblem || decider.configProblem,
    };
  }
  // Lag only the availability API can see. A plan without it says "in sync", so that a flag
  // left from elsewhere (an older shared record, another setup) cannot block failback for good;
  // a PING standing in for a broken availability API leaves the last seen value.
  if (primary !== availabilityProbe && verdict.lagging === undefined) {
    verdict = { ...verdict, lagging: false };
  }
  const refused = !verdict.healthy && decider.configProblem !== undefined;
  // What a server answered (a PING error, an availability error_code) may quote the request's
  // credentials back; none of it is kept or published with them.
  const { member } = record;
  verdict = { ...verdict, reason: scrubSecrets(member, verdict.reason) };
  if (verdict.configProblem) verdict.configProblem = scrubSecrets(member, verdict.configProblem);
  const event = store.recordCheck(name, { ...verdict, refused }, deps.circuit, deps.now());
  if (event) deps.emitter.emit('health', event);
  return verdict;
}

/** Checks every member in parallel (one refresh). */
export async function checkAll(deps: CheckerDeps): Promise<void> {
  deps.store.stats.refreshes += 1;
  await Promise.all([...deps.store.records.keys()].map((name) => checkMember(deps, name)));
  deps.store.initialized = true;
}

/**
 * Reads the shared tier and merges it when it is fresh. Returns undefined when there is no
 * fresh record, otherwise the members the record could not vouch for (seen failing here later).
 */
export async function readShared(deps: CheckerDeps): Promise<string[] | undefined> {
  const cache = deps.health.cache;
  if (!cache) return undefined;
  const { store } = deps;
  store.stats.sharedReads += 1;
  const shared = await cache.get(cacheKeyFor(store.key));
  const now = deps.now();
  // A record of another member list (or without one) is no record: probe as without a cache.
  if (!shared || shared.key !== store.key || now - shared.at > deps.health.sharedMaxAgeMs) {
    return undefined;
  }
  store.stats.sharedHits += 1;
  const { events, keptLocal } = store.applyShared(shared, deps.health.sharedMaxAgeMs, now);
  for (const event of events) deps.emitter.emit('health', event);
  return keptLocal;
}

export interface RunningRefresh {
  /** Settles when the shared tier has been read: true when it was fresh and merged. */
  shared: Promise<boolean>;
  /** Settles when the refresh is over. Never rejects. */
  done: Promise<void>;
}

/** One refresh: the shared record if it is fresh, otherwise our own probes. */
export function refresh(deps: CheckerDeps): RunningRefresh {
  const startedAt = deps.store.refreshStartedAt;
  const read = readShared(deps).catch(() => undefined);
  const shared = read.then((kept) => kept !== undefined);
  const done = read
    .then(async (kept) => {
      if (kept === undefined) return checkAll(deps);
      // Fresh shared health: probe only what this isolate saw fail since it was published.
      await Promise.all(kept.map((name) => checkMember(deps, name)));
    })
    .catch(() => undefined)
    .finally(() => {
      // Only this refresh's own marker: one presumed lost may end after a newer one started.
      if (deps.store.refreshStartedAt === startedAt) deps.store.refreshStartedAt = undefined;
    });
  return { shared, done };
}

/**
 * Starts a refresh if the store is stale and none is running here. Returns the refresh when
 * this call started one (only its own request may await it), otherwise undefined.
 */
export function maybeStartRefresh(deps: CheckerDeps): RunningRefresh | undefined {
  const { store, health } = deps;
  if (!health.enabled) return undefined;
  const now = deps.now();
  if (now < store.nextRefreshAt) return undefined;
  // A refresh whose promise never settled (its request ended in workerd) must not block
  // refreshes forever: after a generous bound it is considered gone.
  if (
    store.refreshStartedAt !== undefined &&
    now - store.refreshStartedAt < health.staleRefreshMs
  ) {
    return undefined;
  }
  store.refreshStartedAt = now;
  // Jitter spreads isolates that started together so they do not probe in lockstep.
  const spread = 1 + (Math.random() * 2 - 1) * health.jitter;
  store.nextRefreshAt = now + health.intervalMs * spread;
  return refresh(deps);
}

/** Publishes this store's health and active member to the shared tier (the cron helper). */
export async function publishShared(deps: CheckerDeps): Promise<void> {
  const cache = deps.health.cache;
  if (!cache) return;
  const record = deps.store.toShared(deps.now());
  deps.store.publishedAt = record.at;
  await cache.put(cacheKeyFor(deps.store.key), record);
}

/**
 * Resolves when the initialization policy is met, or after its time limit, or `limitMs` (what
 * the call's deadline leaves beyond one attempt), or when `signal` aborts: a cold start never
 * spends the budget the call needs to try a member.
 */
export async function awaitInitialization(
  deps: CheckerDeps,
  started: RunningRefresh,
  limitMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const { store, health } = deps;
  const init = health.initialization;
  if (!init) {
    // No policy: still let a cold isolate start from the shared record when there is one,
    // since reading it is one fast lookup rather than a round of probes.
    if (health.cache) {
      await withTimeout(started.shared, Math.min(health.sharedColdStartWaitMs, limitMs), signal);
    }
    return;
  }
  const wanted = quorum(init.policy, store.records.size);
  const met = () =>
    store.initialized ||
    [...store.records.values()].filter((r) => r.status === 'healthy').length >= wanted;
  let waiting = true;
  // Probes of different members finish at different times; poll the store cheaply.
  const poll = (async () => {
    const step = Math.max(5, Math.min(50, init.timeoutMs / 20));
    while (waiting && !met()) await sleep(step);
  })();
  await withTimeout(Promise.race([started.done, poll]), Math.min(init.timeoutMs, limitMs), signal);
  waiting = false;
}

/** Waits for `promise`, at most `ms`, and no longer once `signal` aborts. */
async function withTimeout(
  promise: Promise<unknown>,
  ms: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stop: (() => void) | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      stop = () => resolve();
      // A listener added to a signal that has already aborted would never fire.
      if (signal?.aborted) return stop();
      timer = setTimeout(stop, Math.max(0, ms));
      signal?.addEventListener('abort', stop, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (stop) signal?.removeEventListener('abort', stop);
}
