import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CircuitSettings } from '../../src/circuit.js';
import type { ResolvedMember } from '../../src/config.js';
import { HealthStore } from '../../src/health/store.js';
import {
  distanceKm,
  type MemberView,
  rankMembers,
  type SelectionInput,
  selectMembers,
} from '../../src/selector.js';

function view(name: string, weight: number, extra: Partial<MemberView> = {}): MemberView {
  return { name, weight, status: 'unknown', phase: 'closed', ...extra };
}

function input(members: MemberView[], extra: Partial<SelectionInput> = {}): SelectionInput {
  return {
    members,
    active: undefined,
    activeSince: 0,
    gracePeriodMs: 1000,
    proximity: false,
    now: 10_000,
    ...extra,
  };
}

describe('selectMembers', () => {
  it('starts on the heaviest member, ties broken by name, every member listed once', () => {
    const s = selectMembers(input([view('c', 1), view('b', 2), view('a', 2)]));
    expect(s.active).toBe('a');
    expect(s.order).toEqual(['a', 'b', 'c']);
    expect(s.switched).toBeUndefined();
  });

  it('ranks known-healthy before unknown, and open circuits last', () => {
    const ranked = rankMembers(
      input([
        view('a', 3, { phase: 'open', status: 'unhealthy' }),
        view('b', 2),
        view('c', 1, { status: 'healthy', healthySince: 0 }),
      ]),
    );
    expect(ranked.map((m) => m.name)).toEqual(['c', 'b', 'a']);
  });

  it('is sticky: keeps a working active member even when an equal or heavier one is fresh', () => {
    const s = selectMembers(
      input(
        [
          view('a', 2, { status: 'healthy', healthySince: 9500 }),
          view('b', 1, { status: 'healthy' }),
        ],
        { active: 'b', activeSince: 0 },
      ),
    );
    expect(s.active).toBe('b');
    expect(s.order).toEqual(['b', 'a']);
  });

  it('fails back to a heavier member healthy for a whole grace period', () => {
    const s = selectMembers(
      input(
        [
          view('a', 2, { status: 'healthy', healthySince: 8000 }),
          view('b', 1, { status: 'healthy' }),
        ],
        { active: 'b', activeSince: 0 },
      ),
    );
    expect(s.active).toBe('a');
    expect(s.switched).toEqual({ from: 'b', to: 'a', reason: 'failback' });
  });

  it('does not fail back to a member lagging beyond its tolerance', () => {
    const members = [
      view('a', 2, { status: 'healthy', healthySince: 0, lagging: true }),
      view('b', 1, { status: 'healthy' }),
    ];
    expect(selectMembers(input(members, { active: 'b' })).active).toBe('b');
    members[0]!.lagging = false;
    expect(selectMembers(input(members, { active: 'b' })).active).toBe('a');
  });

  it('leaves an active member whose circuit opened, with reason circuit', () => {
    const s = selectMembers(
      input([view('a', 2, { phase: 'open', status: 'unhealthy' }), view('b', 1)], {
        active: 'a',
      }),
    );
    expect(s.active).toBe('b');
    expect(s.order).toEqual(['b', 'a']);
    expect(s.switched?.reason).toBe('circuit');
  });

  it('leaves an active member a health check reported down, with reason health-check', () => {
    const s = selectMembers(
      input([view('a', 2, { status: 'unhealthy' }), view('b', 1)], { active: 'a' }),
    );
    expect(s.switched).toEqual({ from: 'a', to: 'b', reason: 'health-check' });
  });

  it('still lists every member when all are down (the data path keeps trying)', () => {
    const s = selectMembers(
      input(
        [
          view('a', 2, { phase: 'open', status: 'unhealthy' }),
          view('b', 1, { phase: 'half-open', status: 'unhealthy' }),
        ],
        { active: 'a' },
      ),
    );
    expect(s.order.sort()).toEqual(['a', 'b']);
    expect(s.active).toBe('a');
  });

  it('with nothing usable, tries a half-open member before the active one whose circuit just opened', () => {
    const s = selectMembers(
      input(
        [
          view('a', 2, { phase: 'open', status: 'unhealthy' }),
          view('b', 1, { phase: 'half-open', status: 'unhealthy' }),
        ],
        { active: 'a' },
      ),
    );
    // a stays the active member (nothing to switch to), but the trial goes to b first.
    expect(s.active).toBe('a');
    expect(s.order).toEqual(['b', 'a']);
    expect(s.switched).toBeUndefined();
  });

  it('fails back to a settled heavier member when the heaviest one lags', () => {
    const s = selectMembers(
      input(
        [
          view('a', 3, { status: 'healthy', lagging: true }),
          view('b', 2, { status: 'healthy', healthySince: 1000 }),
          view('c', 1, { status: 'healthy', healthySince: 0 }),
        ],
        { active: 'c' },
      ),
    );
    expect(s.active).toBe('b');
    expect(s.switched).toEqual({ from: 'c', to: 'b', reason: 'failback' });
  });

  it('fails back to a settled heavier member while the heaviest one is still in its grace streak', () => {
    const members = [
      view('a', 3, { status: 'healthy', healthySince: 9900 }),
      view('b', 2, { status: 'healthy', healthySince: 1000 }),
      view('c', 1, { status: 'healthy', healthySince: 0 }),
    ];
    expect(selectMembers(input(members, { active: 'c' })).active).toBe('b');
    // Once a has settled too, and a grace period after the switch to b, on to a.
    expect(
      selectMembers(input(members, { active: 'b', activeSince: 10_000, now: 11_000 })).active,
    ).toBe('a');
    expect(
      selectMembers(input(members, { active: 'b', activeSince: 10_000, now: 10_500 })).active,
    ).toBe('b');
  });

  it('a forced member wins until the lock ends', () => {
    const members = [view('a', 2, { status: 'healthy', healthySince: 0 }), view('b', 1)];
    const forced = { name: 'b', until: 20_000 };
    expect(selectMembers(input(members, { active: 'a', forced })).active).toBe('b');
    expect(selectMembers(input(members, { active: 'a', forced, now: 20_000 })).active).toBe('a');
  });

  it('a forced member locks the others out: it is the only member to try until the lock ends', () => {
    const members = [
      view('a', 2, { status: 'healthy', healthySince: 0 }),
      view('b', 1, { phase: 'open', status: 'unhealthy' }),
      view('c', 1),
    ];
    const forced = { name: 'b', until: 20_000 };
    const held = selectMembers(input(members, { active: 'b', forced }));
    expect(held.order[0]).toBe('b');
    expect(held.locked).toBe(true);
    const lifted = selectMembers(input(members, { active: 'b', forced, now: 20_000 }));
    expect(lifted.order).toEqual(['a', 'c', 'b']);
    expect(lifted.locked).toBeUndefined();
  });

  it('with proximity, prefers the member nearest to the request', () => {
    const members = [
      view('us', 2, { location: { lat: 40.7, lon: -74 } }),
      view('eu', 1, { location: { lat: 50.1, lon: 8.7 } }),
    ];
    const paris = { lat: 48.9, lon: 2.35 };
    const s = selectMembers(input(members, { proximity: true, hints: paris }));
    expect(s.active).toBe('eu');
    // without proximity the weight decides
    expect(selectMembers(input(members, { hints: paris })).active).toBe('us');
  });

  it('with proximity, a colo match beats coordinates', () => {
    const members = [
      view('a', 1, { location: { lat: 0, lon: 0, colos: ['FRA'] } }),
      view('b', 1, { location: { lat: 50, lon: 8 } }),
    ];
    const s = selectMembers(
      input(members, { proximity: true, hints: { colo: 'FRA', lat: 50, lon: 8 } }),
    );
    expect(s.active).toBe('a');
  });

  it('computes great-circle distances', () => {
    expect(distanceKm(48.8566, 2.3522, 51.5074, -0.1278)).toBeGreaterThan(330);
    expect(distanceKm(48.8566, 2.3522, 51.5074, -0.1278)).toBeLessThan(350);
  });
});

describe('shared decision', () => {
  it('follows the published active member while it is usable here', () => {
    const members = [view('a', 2, { status: 'healthy', healthySince: 0 }), view('b', 1)];
    const s = selectMembers(input(members, { active: 'a', preferred: 'b' }));
    expect(s.switched).toEqual({ from: 'a', to: 'b', reason: 'health-check' });
  });

  it('gives the switch to the published member the reason it would have here', () => {
    const healthy = { status: 'healthy' as const, healthySince: 0 };
    // back to a heavier member: failback
    const both = [view('a', 2, healthy), view('b', 1, healthy)];
    expect(selectMembers(input(both, { active: 'b', preferred: 'a' })).switched).toEqual({
      from: 'b',
      to: 'a',
      reason: 'failback',
    });
    // away from a member whose circuit opened here: circuit
    const broken = [view('a', 2, { phase: 'open', status: 'unhealthy' }), view('b', 1, healthy)];
    expect(selectMembers(input(broken, { active: 'a', preferred: 'b' })).switched).toEqual({
      from: 'a',
      to: 'b',
      reason: 'circuit',
    });
    // a fresh isolate's first choice is not a switch, published or not
    const fresh = selectMembers(input([view('a', 2), view('b', 1)], { preferred: 'b' }));
    expect(fresh.active).toBe('b');
    expect(fresh.switched).toBeUndefined();
  });

  it('decides alone when the published member fails here', () => {
    const members = [view('a', 2), view('b', 1, { phase: 'open', status: 'unhealthy' })];
    expect(selectMembers(input(members, { active: 'b', preferred: 'b' })).active).toBe('a');
  });
});

describe('no flapping (property)', () => {
  const settings: CircuitSettings = {
    consecutive: { threshold: 3 },
    rate: { threshold: 0.5, minimumFailures: 3, windowMs: 10_000 },
    gracePeriodMs: 5000,
  };
  const members: ResolvedMember[] = [
    { name: 'a', url: 'http://127.0.0.1:1', token: 't', weight: 2 },
    { name: 'b', url: 'http://127.0.0.1:2', token: 't', weight: 1 },
  ];

  it('switches at most about twice per grace period however the preferred member flaps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 1, max: 2000 }), aUp: fc.boolean() }), {
          minLength: 1,
          maxLength: 400,
        }),
        (steps) => {
          const store = new HealthStore('k', members);
          let now = 0;
          let switches = 0;
          let nextCheck = 0;
          for (const step of steps) {
            now += step.dt;
            if (now >= nextCheck) {
              // a background refresh, as the checker runs it every interval
              nextCheck = now + 1000;
              store.recordCheck('a', { healthy: step.aUp, reason: 'probe' }, settings, now);
              store.recordCheck('b', { healthy: true, reason: 'probe' }, settings, now);
            }
            const sel = store.select(undefined, false, settings.gracePeriodMs, now);
            if (sel.switched) switches += 1;
            const first = sel.order[0]!;
            if (first === 'a' && !step.aUp) {
              store.recordFailure('a', 'not-sent', 'down', settings, now);
              store.recordSuccess('b', 1, settings, 'request', now);
            } else {
              store.recordSuccess(first, 1, settings, 'request', now);
            }
          }
          const bound = 2 * Math.ceil(now / settings.gracePeriodMs) + 2;
          expect(switches).toBeLessThanOrEqual(bound);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never selects a member whose circuit is open while another is usable', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 200 }), (ups) => {
        const store = new HealthStore('k', members);
        let now = 0;
        for (const aUp of ups) {
          now += 100;
          const sel = store.select(undefined, false, settings.gracePeriodMs, now);
          const first = sel.order[0]!;
          expect(store.records.get(first)!.circuit.open && first === 'a').toBe(false);
          if (first === 'a' && !aUp) store.recordFailure('a', 'not-sent', 'down', settings, now);
          else store.recordSuccess(first, 1, settings, 'request', now);
        }
      }),
    );
  });
});

describe('grace period after leaving a member that failed', () => {
  it('does not lead again with a member left for failing within its grace period (Jedis: "prevents flapping")', () => {
    const members = [
      view('a', 3, { status: 'healthy', healthySince: 0, graceUntil: 11_000 }),
      view('b', 2, { status: 'unhealthy' }),
      view('c', 1, { status: 'healthy', healthySince: 0 }),
    ];
    const s = selectMembers(input(members, { active: 'b' }));
    expect(s.active).toBe('c');
    expect(s.switched).toEqual({ from: 'b', to: 'c', reason: 'health-check' });
    // Still a failover target within the request: every member is listed.
    expect(s.order).toEqual(['c', 'a', 'b']);
    // Once its grace period is over, it is the best usable member again.
    expect(selectMembers(input(members, { active: 'b', now: 11_000 })).active).toBe('a');
    // Every usable member in a grace period: the best of them, never none.
    members[2]!.graceUntil = 12_000;
    expect(selectMembers(input(members, { active: 'b' }))).toMatchObject({
      active: 'a',
      order: ['a', 'c', 'b'],
    });
  });

  it('does not fail back to a member in its grace period, however long it has been healthy', () => {
    const members = [
      view('a', 2, { status: 'healthy', healthySince: 0, graceUntil: 11_000 }),
      view('b', 1, { status: 'healthy', healthySince: 0 }),
    ];
    expect(selectMembers(input(members, { active: 'b' })).active).toBe('b');
    const back = selectMembers(input(members, { active: 'b', now: 11_000 }));
    expect(back.switched).toEqual({ from: 'b', to: 'a', reason: 'failback' });
  });
});

describe('trial of a half-open member', () => {
  it('names a half-open member better than the active one (heavier, or nearer with proximity)', () => {
    const halfOpen = { phase: 'half-open' as const, status: 'unhealthy' as const };
    const healthy = { status: 'healthy' as const, healthySince: 0 };
    const heavier = [view('a', 2, halfOpen), view('b', 1, healthy)];
    const s = selectMembers(input(heavier, { active: 'b' }));
    expect(s).toMatchObject({ active: 'b', order: ['b', 'a'], trial: 'a' });
    // Not a lighter one, nor one still open, nor while a member is forced.
    expect(
      selectMembers(input([view('a', 1, halfOpen), view('b', 2, healthy)], { active: 'b' })).trial,
    ).toBeUndefined();
    const open = [view('a', 2, { ...halfOpen, phase: 'open' }), view('b', 1, healthy)];
    expect(selectMembers(input(open, { active: 'b' })).trial).toBeUndefined();
    const forced = { name: 'b', until: 20_000 };
    expect(selectMembers(input(heavier, { active: 'b', forced })).trial).toBeUndefined();
    // With proximity the nearer member, whatever its weight.
    const near = [
      view('eu', 1, { ...halfOpen, location: { colos: ['FRA'] } }),
      view('us', 2, { ...healthy, location: { colos: ['IAD'] } }),
    ];
    const hints = { colo: 'FRA' };
    expect(selectMembers(input(near, { active: 'us', proximity: true, hints })).trial).toBe('eu');
    expect(selectMembers(input(near, { active: 'us', hints })).trial).toBeUndefined();
  });
});

describe('no flapping between members whose health checks alternate (property)', () => {
  const settings: CircuitSettings = {
    consecutive: { threshold: 3 },
    rate: false,
    gracePeriodMs: 5000,
  };
  const members: ResolvedMember[] = ['a', 'b', 'c'].map((name, i) => ({
    name,
    url: `http://127.0.0.1:${i + 1}`,
    token: 't',
    weight: 3 - i,
  }));

  it('a member left for failing leads again only a grace period later (c, always up, is there), and at most about three switches per grace period', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            dt: fc.integer({ min: 1, max: 2000 }),
            aUp: fc.boolean(),
            bUp: fc.boolean(),
          }),
          { minLength: 1, maxLength: 400 },
        ),
        (steps) => {
          const store = new HealthStore('k', members);
          let now = 0;
          let switches = 0;
          let nextCheck = 0;
          const leftAt: Record<string, number> = {};
          for (const step of steps) {
            now += step.dt;
            const up: Record<string, boolean> = { a: step.aUp, b: step.bUp, c: true };
            if (now >= nextCheck) {
              nextCheck = now + 1000;
              for (const m of ['a', 'b', 'c']) {
                store.recordCheck(m, { healthy: up[m]!, reason: 'probe' }, settings, now);
              }
            }
            const sel = store.select(undefined, false, settings.gracePeriodMs, now);
            const sw = sel.switched;
            if (sw) {
              switches += 1;
              const since = now - (leftAt[sw.to] ?? Number.NEGATIVE_INFINITY);
              expect(since).toBeGreaterThanOrEqual(settings.gracePeriodMs);
              if (sw.from && (sw.reason === 'health-check' || sw.reason === 'circuit')) {
                leftAt[sw.from] = now;
              }
            }
            // The request goes down the order until a member that is up answers.
            for (const m of sel.order) {
              if (up[m]) {
                store.recordSuccess(m, 1, settings, 'request', now);
                break;
              }
              store.recordFailure(m, 'not-sent', 'down', settings, now);
            }
          }
          // A failback needs a grace period since the last switch; between two, at most two
          // failovers (each member left for failing is out of the running for a grace period).
          const bound = 3 * Math.ceil(now / settings.gracePeriodMs) + 3;
          expect(switches).toBeLessThanOrEqual(bound);
        },
      ),
      { numRuns: 300 },
    );
  });
});
