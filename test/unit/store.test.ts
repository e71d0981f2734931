import { describe, expect, it } from 'vitest';
import type { CircuitSettings } from '../../src/circuit.js';
import { type ResolvedMember, resolveOptions } from '../../src/config.js';
import type { SharedHealth } from '../../src/health/shared.js';
import {
  HealthStore,
  healthStoreFor,
  resetHealthStores,
  storeKey,
} from '../../src/health/store.js';

/**
 * The health store's own rules, on the store itself: healthy streaks and lag, merging the
 * shared record, and what makes two member lists the same store.
 */
const circuit: CircuitSettings = {
  consecutive: { threshold: 3 },
  rate: false,
  gracePeriodMs: 1000,
};

function members(over: Partial<ResolvedMember>[] = [{}, {}]): ResolvedMember[] {
  return over.map((o, i) => ({
    name: String.fromCharCode(97 + i),
    url: `https://${String.fromCharCode(97 + i)}.example.com`,
    token: 't',
    weight: 1,
    ...o,
  }));
}

function storeOf(list = members()): HealthStore {
  return new HealthStore(storeKey(list), list);
}

const healthy = { healthy: true, reason: 'available' };
const lagging = { healthy: true, lagging: true, reason: 'lagging (bdb_lag)' };

describe('healthy streaks', () => {
  it('a lagging member has none, whatever answers it gives; it starts when it is in sync', () => {
    const store = storeOf();
    store.recordCheck('a', lagging, circuit, 100);
    expect(store.records.get('a')!.healthySince).toBeUndefined();
    // a request served by the lagging member is an answer, not a streak in sync
    store.recordSuccess('a', 5, circuit, 'request', 200);
    expect(store.records.get('a')!.healthySince).toBeUndefined();
    store.recordCheck('a', healthy, circuit, 300);
    expect(store.records.get('a')!.healthySince).toBe(300);
    store.recordSuccess('a', 5, circuit, 'request', 400);
    expect(store.records.get('a')!.healthySince).toBe(300);
  });
});

describe('merging the shared record', () => {
  function record(
    store: HealthStore,
    at: number,
    m: SharedHealth['members'],
    active = 'b',
  ): SharedHealth {
    return { version: 1, key: store.key, at, active, members: m };
  }

  it('a member the record reports lagging gets no healthy streak from it', () => {
    const store = storeOf();
    store.applyShared(
      record(store, 1000, {
        a: { status: 'healthy', lagging: true, checkedAt: 1000 },
        b: { status: 'healthy', checkedAt: 1000, healthySince: 10 },
      }),
      120_000,
      1000,
    );
    expect(store.records.get('a')!.healthySince).toBeUndefined();
    expect(store.records.get('b')!.healthySince).toBe(10);
    // in sync at the next check: the streak starts then, not when it was lagging
    store.recordCheck('a', healthy, circuit, 61_000);
    expect(store.records.get('a')!.healthySince).toBe(61_000);
  });

  it('does not ask to re-check a member only because the record it came from says it is down', () => {
    const store = storeOf();
    const shared = record(store, 1000, {
      a: { status: 'unhealthy', checkedAt: 1000, reason: 'bdb_unavailable' },
      b: { status: 'healthy', checkedAt: 1000 },
    });
    expect(store.applyShared(shared, 120_000, 1000).keptLocal).toEqual([]);
    // the same record read again by the next refresh
    expect(store.applyShared(shared, 120_000, 6000).keptLocal).toEqual([]);
    // a failure this isolate saw itself, after the record: that one is checked here
    for (let t = 7000; t < 7003; t++) store.recordFailure('b', 'unknown-outcome', 'x', circuit, t);
    expect(store.applyShared(shared, 120_000, 8000).keptLocal).toEqual(['b']);
  });

  it('asks to check a member suspected here after the record (a timeout the deadline cut short)', () => {
    const store = storeOf();
    const shared = record(store, 1000, {
      a: { status: 'healthy', checkedAt: 1000 },
      b: { status: 'healthy', checkedAt: 1000 },
    });
    expect(store.applyShared(shared, 120_000, 1000).keptLocal).toEqual([]);
    store.nextRefreshAt = 10_000;
    store.suspect('a', 'member "a" did not answer within 100 ms', 2000, 5000);
    expect(store.nextRefreshAt).toBe(2000); // the next request refreshes
    // at most once per interval: no refresh storm from a member merely slower than the budget
    store.nextRefreshAt = 10_000;
    store.suspect('a', 'member "a" did not answer within 100 ms', 3000, 5000);
    expect(store.nextRefreshAt).toBe(10_000);
    store.suspect('a', 'member "a" did not answer within 100 ms', 7000, 5000);
    expect(store.nextRefreshAt).toBe(7000);
    store.nextRefreshAt = 2000;
    expect(store.applyShared(shared, 120_000, 2100).keptLocal).toEqual(['a']);
    expect(store.records.get('a')!.circuit.consecutiveFailures).toBe(0);
  });

  it('asks to check a member the record does not list (added here at run time)', () => {
    const store = storeOf();
    store.addMember(members([{}, {}, {}])[2]!);
    const shared = record(store, 1000, {
      a: { status: 'healthy', checkedAt: 1000 },
      b: { status: 'healthy', checkedAt: 1000 },
    });
    expect(store.applyShared(shared, 120_000, 1000).keptLocal).toEqual(['c']);
  });
});

describe('one store per configuration', () => {
  it('shares a store between equal member lists (tokens aside), not between lists that rank or probe differently', () => {
    resetHealthStores();
    const base = resolveOptions({ members: members() }).members;
    const otherTokens = resolveOptions({
      members: members().map((m) => ({ ...m, token: 'read-only' })),
    }).members;
    expect(healthStoreFor(base)).toBe(healthStoreFor(otherTokens));
    const weighted = resolveOptions({ members: members([{ weight: 5 }, {}]) }).members;
    expect(healthStoreFor(weighted)).not.toBe(healthStoreFor(base));
    const withApi = resolveOptions({
      members: members([
        { availability: { url: 'https://cluster.example.com', username: 'u', password: 'p' } },
        {},
      ]),
    }).members;
    expect(healthStoreFor(withApi)).not.toBe(healthStoreFor(base));
    // the availability password is no part of the key
    const otherPassword = resolveOptions({
      members: members([
        {
          availability: {
            url: 'https://cluster.example.com',
            username: 'u',
            password: 'pw-SECRET-42',
          },
        },
        {},
      ]),
    }).members;
    expect(healthStoreFor(otherPassword)).toBe(healthStoreFor(withApi));
    expect(storeKey(otherPassword)).not.toContain('pw-SECRET-42');
    // the same place, written in another order, is the same configuration
    const here = resolveOptions({
      members: members([{ location: { lat: 1, lon: 2, colos: ['FRA', 'AMS'] } }, {}]),
    }).members;
    const sameHere = resolveOptions({
      members: members([{ location: { colos: ['AMS', 'FRA'], lon: 2, lat: 1 } }, {}]),
    }).members;
    expect(storeKey(sameHere)).toBe(storeKey(here));
    resetHealthStores();
  });
});
