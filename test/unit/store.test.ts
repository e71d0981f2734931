import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CircuitSettings, circuitPhase } from '../../src/circuit.js';
import { type ResolvedMember, resolveOptions } from '../../src/config.js';
import type { SharedHealth } from '../../src/health/shared.js';
import {
  HealthStore,
  healthStoreFor,
  resetHealthStores,
  storeKey,
} from '../../src/health/store.js';
import { type RequestHints, type Selection, selectMembers } from '../../src/selector.js';

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

const healthy = { healthy: true, lagging: false, reason: 'available' };
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

describe('selection reuse', () => {
  /** What `select` decides from scratch: the pure selector over the records as they are now. */
  function fromScratch(
    store: HealthStore,
    hints: RequestHints | undefined,
    proximity: boolean,
    gracePeriodMs: number,
    now: number,
  ): Selection {
    const forced = store.forced && now < store.forced.until ? store.forced : undefined;
    const shared = store.shared;
    return selectMembers({
      members: [...store.records.values()].map((r) => ({
        name: r.member.name,
        weight: r.member.weight,
        location: r.member.location,
        status: r.status,
        phase: circuitPhase(r.circuit, now),
        healthySince: r.healthySince,
        lagging: r.lagging,
        graceUntil: r.graceUntil,
      })),
      active: store.active,
      activeSince: store.activeSince,
      gracePeriodMs,
      proximity,
      now,
      forced,
      preferred: shared && now < shared.until ? shared.active : undefined,
      hints,
    });
  }

  // 'a' (the heaviest) more often, so failovers away from it and failbacks to it are common.
  const names = ['a', 'a', 'a', 'b', 'c'] as const;
  const step = fc.oneof(
    fc.record({ op: fc.constant('success' as const), m: fc.constantFrom(...names) }),
    fc.record({ op: fc.constant('failure' as const), m: fc.constantFrom(...names) }),
    fc.record({
      op: fc.constant('check' as const),
      m: fc.constantFrom(...names),
      healthy: fc.boolean(),
      lagging: fc.boolean(),
    }),
    fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 2500 }) }),
    fc.record({
      op: fc.constant('weight' as const),
      m: fc.constantFrom(...names),
      w: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({
      op: fc.constant('force' as const),
      m: fc.constantFrom(...names),
      ms: fc.integer({ min: 1, max: 3000 }),
    }),
    fc.record({
      op: fc.constant('publish' as const),
      active: fc.option(fc.constantFrom(...names), { nil: undefined }),
    }),
    fc.record({ op: fc.constant('replace' as const), m: fc.constantFrom(...names) }),
    fc.record({ op: fc.constant('remove' as const), m: fc.constantFrom(...names) }),
    // As `setActiveMember` does: the active member changes outside `select`.
    fc.record({ op: fc.constant('activate' as const), m: fc.constantFrom(...names) }),
    fc.record({
      op: fc.constant('merge' as const),
      active: fc.option(fc.constantFrom(...names), { nil: undefined }),
      statuses: fc.array(fc.constantFrom('healthy' as const, 'unhealthy' as const, 'lagging'), {
        minLength: 3,
        maxLength: 3,
      }),
    }),
    // Several changes may come between two selections, made by clients that differ in
    // proximity, grace period and hints (they can share one store).
    ...Array.from({ length: 4 }, () =>
      fc.record({
        op: fc.constant('select' as const),
        near: fc.boolean(),
        proximity: fc.boolean(),
        grace: fc.constantFrom(0, 1000, 5000),
      }),
    ),
  );

  it('never changes a decision: after any history, select answers what the selector decides from scratch', () => {
    const settings: CircuitSettings = {
      consecutive: { threshold: 2 },
      rate: false,
      gracePeriodMs: 1000,
    };
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const store = storeOf(
          members([
            { weight: 3, location: { colos: ['AMS'] } },
            { weight: 2, location: { colos: ['FRA'] } },
            { weight: 1 },
          ]),
        );
        let now = 1_000_000;
        for (const s of steps) {
          const record = 'm' in s ? store.records.get(s.m) : undefined;
          switch (s.op) {
            case 'success':
              store.recordSuccess(s.m, 5, settings, 'request', now);
              break;
            case 'failure':
              store.recordFailure(s.m, 'unknown-outcome', 'reset', settings, now);
              break;
            case 'check':
              store.recordCheck(s.m, { ...s, reason: 'probe' }, settings, now);
              break;
            case 'wait':
              now += s.ms;
              break;
            case 'weight':
              // As `setWeight` does: a new member object.
              if (record) record.member = { ...record.member, weight: s.w };
              break;
            case 'force':
              store.forced = { name: s.m, until: now + s.ms };
              break;
            case 'publish':
              store.shared = { active: s.active, at: now, until: now + 1500 };
              break;
            case 'replace':
              // Removed and added again at run time: a new record in last place.
              if (record) {
                store.removeMember(s.m);
                store.addMember({ ...record.member });
              }
              break;
            case 'remove':
              if (record && store.records.size > 1) store.removeMember(s.m);
              break;
            case 'activate':
              if (record) store.setActive(s.m, 'forced', now);
              break;
            case 'merge':
              store.applyShared(
                {
                  version: 1,
                  key: store.key,
                  at: now,
                  active: s.active,
                  members: Object.fromEntries(
                    ['a', 'b', 'c'].map((m, i) => [
                      m,
                      {
                        status: s.statuses[i] === 'unhealthy' ? 'unhealthy' : 'healthy',
                        checkedAt: now,
                        lagging: s.statuses[i] === 'lagging' || undefined,
                      },
                    ]),
                  ),
                },
                1500,
                now,
              );
              break;
            case 'select': {
              const hints = s.near ? { colo: 'FRA' } : undefined;
              const expected = fromScratch(store, hints, s.proximity, s.grace, now);
              const got = store.select(hints, s.proximity, s.grace, now);
              expect({
                order: [...got.order],
                active: got.active,
                locked: got.locked,
                trial: got.trial,
              }).toEqual({
                order: expected.order,
                active: expected.active,
                locked: expected.locked,
                trial: expected.trial,
              });
              expect(got.switched).toEqual(expected.switched);
              break;
            }
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('fails back once the heavier member has been healthy for a grace period, with nothing else happening', () => {
    const store = storeOf(members([{ weight: 2 }, { weight: 1 }]));
    store.recordCheck('a', { healthy: false, reason: 'down' }, circuit, 0);
    store.recordCheck('b', healthy, circuit, 0);
    expect(store.select(undefined, false, 1000, 10).active).toBe('b');
    store.recordCheck('a', healthy, circuit, 2000);
    // Healthy, but not for a whole grace period yet: the same answer, many times over.
    for (let t = 2001; t < 3000; t += 100)
      expect(store.select(undefined, false, 1000, t).active).toBe('b');
    const back = store.select(undefined, false, 1000, 3000);
    expect(back.active).toBe('a');
    expect(back.switched).toEqual({ from: 'b', to: 'a', reason: 'failback' });
  });

  it('ranks a member again when its circuit turns half-open, with nothing else happening', () => {
    const store = storeOf(members([{ weight: 1 }, { weight: 1 }, { weight: 1 }]));
    for (const m of ['a', 'b', 'c']) store.recordCheck(m, healthy, circuit, 0);
    for (let i = 0; i < 3; i++) store.recordFailure('c', 'unknown-outcome', 'reset', circuit, 10);
    expect(store.select(undefined, false, 1000, 20).order).toEqual(['a', 'b', 'c']);
    for (let i = 0; i < 3; i++) store.recordFailure('b', 'unknown-outcome', 'reset', circuit, 500);
    // Both open: by name.
    expect(store.select(undefined, false, 1000, 600).order).toEqual(['a', 'b', 'c']);
    expect(store.select(undefined, false, 1000, 1009).order).toEqual(['a', 'b', 'c']);
    // c's grace period ends at 1010: half-open ranks before b's open circuit.
    expect(store.select(undefined, false, 1000, 1010).order).toEqual(['a', 'c', 'b']);
  });

  it('sees changes made between two selections: the active member set by hand, a member removed, a heavier member back in sync', () => {
    const byHand = storeOf(members([{ weight: 1 }, { weight: 1 }]));
    for (const m of ['a', 'b']) byHand.recordCheck(m, healthy, circuit, 0);
    byHand.select(undefined, false, 1000, 10);
    byHand.setActive('b', 'forced', 20);
    expect(byHand.select(undefined, false, 1000, 30).order).toEqual(['b', 'a']);

    const shrunk = storeOf(members([{ weight: 1 }, { weight: 1 }, { weight: 1 }]));
    for (const m of ['a', 'b', 'c']) shrunk.recordCheck(m, healthy, circuit, 0);
    shrunk.select(undefined, false, 1000, 10);
    shrunk.removeMember('c');
    expect(shrunk.select(undefined, false, 1000, 20).order).toEqual(['a', 'b']);

    // Healthy but lagging keeps its rank class; catching up is what lets it settle.
    const lagged = storeOf(members([{ weight: 2 }, { weight: 1 }]));
    lagged.recordCheck('a', { healthy: false, reason: 'down' }, circuit, 0);
    lagged.recordCheck('b', healthy, circuit, 0);
    lagged.select(undefined, false, 1000, 10);
    lagged.recordCheck('a', lagging, circuit, 100);
    expect(lagged.select(undefined, false, 1000, 200).active).toBe('b');
    lagged.recordCheck('a', healthy, circuit, 300);
    expect(lagged.select(undefined, false, 1000, 5000).active).toBe('a');
  });

  it('hands back the same order while nothing it depends on has changed, and a new one when something has', () => {
    const store = storeOf(members([{ weight: 2 }, { weight: 1 }]));
    store.recordCheck('a', healthy, circuit, 0);
    store.recordCheck('b', healthy, circuit, 0);
    const first = store.select(undefined, false, 1000, 10);
    expect(first.order).toEqual(['a', 'b']);
    expect(store.select(undefined, false, 1000, 20).order).toBe(first.order);
    store.recordCheck('b', { healthy: false, reason: 'down' }, circuit, 30);
    const after = store.select(undefined, false, 1000, 40);
    expect(after.order).not.toBe(first.order);
    expect(after.order).toEqual(['a', 'b']);
    expect(Object.isFrozen(after.order)).toBe(true);
  });
});

describe('grace period of a member left for failing', () => {
  /** a (3), b (2), c (1), all healthy, a active. */
  function threeHealthy(): HealthStore {
    const store = storeOf(members([{ weight: 3 }, { weight: 2 }, { weight: 1 }]));
    for (const m of ['a', 'b', 'c']) store.recordCheck(m, healthy, circuit, 0);
    expect(store.select(undefined, false, 1000, 10).active).toBe('a');
    return store;
  }
  const down = { healthy: false, reason: 'bdb_unavailable' };

  it('a health source that flaps between two members moves traffic once, then to the third', () => {
    const store = threeHealthy();
    store.recordCheck('a', down, circuit, 100);
    expect(store.select(undefined, false, 1000, 100).switched).toMatchObject({ to: 'b' });
    expect(store.records.get('a')!.graceUntil).toBe(1100);
    store.recordCheck('a', healthy, circuit, 200);
    store.recordCheck('b', down, circuit, 200);
    // a answers again, but it was left for failing 100 ms ago: not back to it, on to c.
    const away = store.select(undefined, false, 1000, 200);
    expect(away.switched).toEqual({ from: 'b', to: 'c', reason: 'health-check' });
    expect(away.order).toEqual(['c', 'a', 'b']);
    // c works: the flapping of a and b no longer moves anything.
    store.recordCheck('a', down, circuit, 300);
    store.recordCheck('b', healthy, circuit, 300);
    expect(store.select(undefined, false, 1000, 300).switched).toBeUndefined();
    // c fails too while a and b are both in their grace periods: the best of them, never none.
    store.recordCheck('a', healthy, circuit, 400);
    store.recordCheck('c', down, circuit, 400);
    expect(store.select(undefined, false, 1000, 400).switched).toEqual({
      from: 'c',
      to: 'a',
      reason: 'health-check',
    });
  });

  it('leaving for an open circuit starts one too; a failback or a switch by hand does not', () => {
    const store = threeHealthy();
    for (let i = 0; i < 3; i++) store.recordFailure('a', 'not-sent', 'refused', circuit, 100);
    expect(store.select(undefined, false, 1000, 100).switched?.reason).toBe('circuit');
    expect(store.records.get('a')!.graceUntil).toBe(1100);
    store.recordCheck('a', healthy, circuit, 1100); // half-open, a passing check closes it
    const back = store.select(undefined, false, 1000, 2100);
    expect(back.switched).toEqual({ from: 'b', to: 'a', reason: 'failback' });
    expect(store.records.get('b')!.graceUntil).toBeUndefined();
    store.setActive('c', 'forced', 2200);
    expect(store.records.get('a')!.graceUntil).toBe(1100);
  });

  it('is published, and a cron run in a fresh isolate keeps it; a record without it means none', () => {
    const store = threeHealthy();
    store.recordCheck('a', down, circuit, 100);
    store.select(undefined, false, 1000, 100);
    const record = store.toShared(150);
    expect(record.members.a!.graceUntil).toBe(1100);
    expect(record.members.b!.graceUntil).toBeUndefined();
    // The next run, elsewhere: a answers again and b is down.
    const next = storeOf(members([{ weight: 3 }, { weight: 2 }, { weight: 1 }]));
    next.applyShared(record, 1000, 200);
    next.setActive(record.active, undefined, record.activeSince!);
    next.shared = undefined;
    next.recordCheck('a', healthy, circuit, 200);
    next.recordCheck('b', down, circuit, 200);
    next.recordCheck('c', healthy, circuit, 200);
    expect(next.select(undefined, false, 1000, 200).active).toBe('c');
    // A record published before this field existed: no grace period.
    const old = structuredClone(record);
    delete old.members.a!.graceUntil;
    const legacy = storeOf(members([{ weight: 3 }, { weight: 2 }, { weight: 1 }]));
    legacy.applyShared(old, 1000, 200);
    expect(legacy.records.get('a')!.graceUntil).toBeUndefined();
  });

  it('shows in the snapshot', () => {
    const store = threeHealthy();
    store.recordCheck('a', down, circuit, 100);
    store.select(undefined, false, 1000, 100);
    expect(store.snapshot(200).members.find((m) => m.name === 'a')!.graceUntil).toBe(1100);
    expect(store.snapshot(1100).members.find((m) => m.name === 'a')!.graceUntil).toBeUndefined();
  });
});

describe('lag events', () => {
  it('a change of lag alone is a health event, with the lag in it', () => {
    const store = storeOf();
    expect(store.recordCheck('a', healthy, circuit, 100)).toMatchObject({ status: 'healthy' });
    expect(store.recordCheck('a', healthy, circuit, 200)).toBeUndefined();
    expect(store.recordCheck('a', lagging, circuit, 300)).toEqual({
      member: 'a',
      status: 'healthy',
      previous: 'healthy',
      reason: 'lagging (bdb_lag)',
      lagging: true,
      at: 300,
    });
    expect(store.recordCheck('a', lagging, circuit, 400)).toBeUndefined();
    // an answer to a request says nothing about lag
    expect(store.recordSuccess('a', 5, circuit, 'request', 450)).toBeUndefined();
    expect(store.recordCheck('a', healthy, circuit, 500)).toMatchObject({
      status: 'healthy',
      previous: 'healthy',
      lagging: false,
    });
    expect(store.recordCheck('a', healthy, circuit, 600)).toBeUndefined();
  });

  it('a check that cannot see lag (PING, a member down) never says it caught up', () => {
    const store = storeOf();
    store.recordCheck('a', lagging, circuit, 100);
    // Down: the lag is unknown, and the event says the last known value.
    expect(
      store.recordCheck('a', { healthy: false, reason: 'bdb_unavailable' }, circuit, 200),
    ).toMatchObject({ status: 'unhealthy', lagging: true });
    // PING fallback (the availability API unreachable): up, lag still unknown; no healthy
    // streak starts, so no failback to it on PING's word.
    expect(store.recordCheck('a', { healthy: true, reason: 'ping' }, circuit, 300)).toMatchObject({
      status: 'healthy',
      lagging: true,
    });
    expect(store.records.get('a')!.healthySince).toBeUndefined();
    // Only the availability API answering in sync says it caught up.
    expect(store.recordCheck('a', healthy, circuit, 400)).toMatchObject({ lagging: false });
    expect(store.records.get('a')!.healthySince).toBe(400);
  });

  it('from the shared record too', () => {
    const store = storeOf();
    const at = 1000;
    const shared: SharedHealth = {
      version: 1,
      key: store.key,
      at,
      members: {
        a: { status: 'healthy', lagging: true, checkedAt: at },
        b: { status: 'healthy', checkedAt: at },
      },
    };
    const { events } = store.applyShared(shared, 120_000, at);
    expect(events.find((e) => e.member === 'a')).toMatchObject({
      status: 'healthy',
      lagging: true,
      reason: 'shared',
    });
    expect(events.find((e) => e.member === 'b')!.lagging).toBeUndefined();
  });
});
