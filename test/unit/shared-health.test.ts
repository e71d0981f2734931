/**
 * The shared tier between isolates, at the level of the store and the checker, with a clock of
 * our own: several isolates are several stores, the KV namespace is a map. What only the real
 * members can show (probes, the data path) is in test/integration/health.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { circuitPhase } from '../../src/circuit.js';
import { type FailoverOptions, resolveOptions } from '../../src/config.js';
import { Emitter } from '../../src/events.js';
import { maybeStartRefresh, readShared } from '../../src/health/checker.js';
import type { HealthCache, SharedHealth } from '../../src/health/shared.js';
import { HealthStore, storeKey } from '../../src/health/store.js';
import { FailoverCore } from '../../src/requester.js';

function memoryCache() {
  const data = new Map<string, SharedHealth>();
  const cache: HealthCache = {
    get: async (k) => structuredClone(data.get(k)),
    put: async (k, v) => void data.set(k, structuredClone(v)),
  };
  return { data, cache, published: () => [...data.values()][0]! };
}

/** Three requests to `name` fail here (not sent): with the defaults, its circuit opens. */
function openCircuit(core: FailoverCore, name: string, clock: { now: number }) {
  for (let i = 0; i < 3; i++) {
    core.recordOutcome(name, { kind: 'not-sent', error: new Error('refused'), latencyMs: 1 }, 1500);
    clock.now += 1;
  }
}

/** Two members, a heavier than b, and a clock the test moves. */
function setup(extra: Partial<FailoverOptions> = {}) {
  const clock = { now: 1_000_000 };
  const options = resolveOptions({
    members: [
      { name: 'a', url: 'https://a.example.com', token: 't', weight: 2 },
      { name: 'b', url: 'https://b.example.com', token: 't', weight: 1 },
    ],
    now: () => clock.now,
    ...extra,
  });
  // Each isolate has its own module-scope store.
  const isolate = () =>
    new FailoverCore(
      options,
      new HealthStore(storeKey(options.members), options.members),
      new Emitter(),
    );
  return { clock, options, isolate };
}

describe('shared health between isolates', () => {
  it('a plan that cannot see lag says "in sync": a lagging flag from an older record does not stay', async () => {
    const { cache, published } = memoryCache();
    const { clock, options, isolate } = setup({
      health: { cache, jitter: 0, probe: async () => true },
    });
    const cron = isolate();
    // A record published by a setup with the availability API, which saw a lagging.
    cron.store.applyShared(
      {
        version: 1,
        key: cron.store.key,
        at: clock.now,
        members: { a: { status: 'healthy', lagging: true, checkedAt: clock.now } },
      },
      options.health.sharedMaxAgeMs,
      clock.now,
    );
    expect(cron.store.records.get('a')!.lagging).toBe(true);
    clock.now += 1000;
    await cron.refreshAll();
    expect(cron.store.records.get('a')!.lagging).toBe(false);
    expect(published().members.a!.lagging).toBeUndefined();
  });

  it('an isolate checks a member whose circuit it opened, closes it, and follows the record again', async () => {
    const { data, cache, published } = memoryCache();
    const { clock, isolate } = setup({
      gracePeriodMs: 60_000,
      health: { cache, jitter: 0, probe: async () => true },
    });
    const edge = isolate();
    edge.select(undefined);
    // a blips for this isolate only: three failures open its circuit; traffic moves to b.
    openCircuit(edge, 'a', clock);
    edge.select(undefined);
    expect(edge.store.active).toBe('b');

    // The cron, in its own isolate, sees a fine and publishes it, every minute.
    const cron = isolate();
    clock.now += 30_000;
    await cron.refreshAll();
    expect(published().active).toBe('a');
    expect(data.size).toBe(1);

    for (let t = 0; t < 180_000; t += 5_000) {
      clock.now += 5_000;
      if (t % 60_000 === 25_000) await cron.refreshAll();
      await maybeStartRefresh(edge.checkerDeps)?.done;
      edge.select(undefined);
    }
    // The record is newer than the failure, but only a check here can close the circuit.
    expect(edge.store.stats.probes.a ?? 0).toBeGreaterThan(0);
    expect(circuitPhase(edge.store.records.get('a')!.circuit, clock.now)).toBe('closed');
    expect(edge.store.active).toBe('a');
  });

  it('an older record read after a newer one (KV going back a generation) changes nothing', async () => {
    const { clock, options, isolate } = setup();
    const edge = isolate();
    const key = edge.store.key;
    const older: SharedHealth = {
      version: 1,
      key,
      at: 10_000,
      active: 'a',
      activeSince: 0,
      members: {
        a: { status: 'healthy', checkedAt: 10_000, healthySince: 0 },
        b: { status: 'healthy', checkedAt: 10_000, healthySince: 0 },
      },
    };
    const newer: SharedHealth = {
      version: 1,
      key,
      at: 70_000,
      active: 'b',
      activeSince: 70_000,
      members: {
        a: { status: 'unhealthy', reason: 'bdb_unavailable', checkedAt: 70_000 },
        b: { status: 'healthy', checkedAt: 70_000, healthySince: 0 },
      },
    };
    const served = [newer, older];
    const deps = {
      ...edge.checkerDeps,
      health: {
        ...options.health,
        cache: { get: async () => served.shift(), put: async () => {} },
      },
    };
    clock.now = 71_000;
    await readShared(deps);
    expect(edge.select(undefined).active).toBe('b');
    clock.now = 80_000; // the older record is still within sharedMaxAgeMs
    await readShared(deps);
    expect(edge.store.records.get('a')!.status).toBe('unhealthy');
    expect(edge.store.shared?.at).toBe(70_000);
    expect(edge.select(undefined).active).toBe('b');
  });

  it('a member the publisher never checked is left out of the record, not published as unknown', () => {
    const { clock, options, isolate } = setup();
    const cron = isolate();
    cron.store.recordCheck('a', { healthy: true, reason: 'ping' }, options.circuit, clock.now);
    const record = cron.store.toShared(clock.now);
    expect(Object.keys(record.members)).toEqual(['a']);
    // An isolate that saw b answer keeps that, and checks b itself.
    const edge = isolate();
    edge.store.recordSuccess('b', 5, options.circuit, 'request', clock.now - 1000);
    const { keptLocal } = edge.store.applyShared(record, options.health.sharedMaxAgeMs, clock.now);
    expect(edge.store.records.get('b')!.status).toBe('healthy');
    expect(keptLocal).toEqual(['b']);
  });

  it('a warm cron isolate starts from the decision another cron run published since', async () => {
    const { cache, published } = memoryCache();
    const down = new Set<string>();
    const { clock, isolate } = setup({
      gracePeriodMs: 120_000,
      health: { cache, probe: async (m) => !down.has(m.name) },
    });
    const x = isolate();
    const y = isolate();
    await x.refreshAll(); // minute 0 in isolate X: a
    expect(published().active).toBe('a');

    clock.now += 60_000; // minute 1 in isolate Y: a is down, b takes over
    down.add('a');
    await y.refreshAll();
    expect(published().active).toBe('b');

    clock.now += 60_000; // minute 2 in X again: a answers, but not for a grace period yet
    down.delete('a');
    await x.refreshAll();
    expect(published().active).toBe('b');
    expect(published().members.a!.healthySince).toBeGreaterThan(clock.now - 60_000);
    expect(x.store.active).toBe('b');
  });

  it('a cron run leaves the marker of a traffic refresh still running: still one at a time', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const release: Array<() => void> = [];
    let slow = true;
    const { clock, options, isolate } = setup({
      health: {
        jitter: 0,
        probe: async () => {
          if (!slow) return true;
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise<void>((r) => release.push(r));
          inFlight -= 1;
          return true;
        },
      },
    });
    const core = isolate();
    const first = maybeStartRefresh(core.checkerDeps);
    expect(first).toBeDefined();
    await new Promise((r) => setTimeout(r, 10));
    expect(inFlight).toBe(2); // both members, one refresh

    clock.now += 1000; // the cron fires in this isolate; its probes answer at once
    slow = false;
    await core.refreshAll();
    slow = true;

    clock.now += options.health.intervalMs; // the first refresh still runs (not presumed lost)
    const second = maybeStartRefresh(core.checkerDeps);
    for (const r of release) r();
    await first!.done;
    expect(second).toBeUndefined();
    expect(maxInFlight).toBe(2);
    expect(core.store.refreshStartedAt).toBeUndefined();
  });
  it('a cron isolate serving traffic does not follow a decision older than its own (KV back a generation)', async () => {
    const history: SharedHealth[] = [];
    let stale: SharedHealth | undefined;
    const cache: HealthCache = {
      get: async () => structuredClone(stale ?? history[history.length - 1]),
      put: async (_k, v) => void history.push(structuredClone(v)),
    };
    const down = new Set<string>(['a']);
    const { clock, isolate } = setup({
      gracePeriodMs: 30_000,
      health: { cache, jitter: 0, probe: async (m) => !down.has(m.name) },
    });
    const x = isolate();
    await x.refreshAll(); // T0: a down -> b
    expect(history.at(-1)!.active).toBe('b');
    clock.now += 60_000;
    down.delete('a');
    await x.refreshAll(); // T0+60: a back, not settled
    expect(history.at(-1)!.active).toBe('b');
    clock.now += 60_000;
    await x.refreshAll(); // T0+120: failback to a
    expect(history.at(-1)!.active).toBe('a');
    expect(x.store.active).toBe('a');
    // Traffic in the same isolate; KV answers the previous generation (still < sharedMaxAgeMs old).
    stale = history[history.length - 2];
    clock.now += 6_000;
    await maybeStartRefresh(x.checkerDeps)?.done;
    const switches: unknown[] = [];
    x.emitter.on('switch', (e) => switches.push(e));
    x.select(undefined);
    expect(switches).toEqual([]);
    expect(x.store.active).toBe('a');
  });

  it('a cron run in a warm isolate does not adopt a published member failing here: no switch back and forth', async () => {
    const { cache } = memoryCache();
    const { clock, isolate } = setup({
      gracePeriodMs: 60_000,
      health: { cache, jitter: 0, probe: async () => true },
    });
    const cron = isolate();
    await cron.refreshAll(); // publishes a
    clock.now += 1000;
    const edge = isolate();
    edge.select(undefined);
    openCircuit(edge, 'a', clock);
    edge.select(undefined);
    expect(edge.store.active).toBe('b');
    const switches: Array<{ from?: string; to: string }> = [];
    edge.emitter.on('switch', (e) => switches.push(e));
    clock.now += 5_000;
    await edge.refreshAll(); // the cron fires in this warm isolate
    expect(edge.store.active).toBe('b');
    // b was active before and after: no switch happened
    expect(switches).toEqual([]);
  });
});
