import { Redis } from '@upstash/redis';
import { describe, expect, it } from 'vitest';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  createFailoverRedis,
  type FailoverOptions,
  type FailureEvent,
  MemberConfigError,
  MemberUnavailableError,
  resetHealthStores,
  type SwitchEvent,
} from '../../src/index.js';
import type { LocalCluster } from '../../src/testing/index.js';
import { useOwnCluster } from '../support/own-cluster.js';

/**
 * Request-scoped failover against real members: redis-server processes behind real gateways,
 * killed with SIGKILL, hung with SIGSTOP. This suite owns its cluster (it breaks members).
 */
let cluster: LocalCluster;
useOwnCluster(
  (c) => {
    cluster = c;
  },
  { heal: true },
);

function plainOn(name: string): Redis {
  const m = cluster.members.find((x) => x.name === name)!;
  return new Redis({ url: m.url, token: m.token, enableAutoPipelining: false });
}

/**
 * Tests that expect a particular fallback member start with `refreshAll()`: with every member
 * known healthy the order is by weight, not by whichever background probe happened to finish
 * first (known-healthy members rank before unknown ones).
 */
function client(extra: Partial<FailoverOptions> = {}) {
  const switches: SwitchEvent[] = [];
  const failures: FailureEvent[] = [];
  const redis = createFailoverRedis({
    members: cluster.members,
    timeoutMs: 500,
    deadlineMs: 3000,
    gracePeriodMs: 1000,
    health: { intervalMs: 200, probeTimeoutMs: 300 },
    on: { switch: (e) => switches.push(e), failure: (e) => failures.push(e) },
    ...extra,
  });
  return { redis, switches, failures };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('request-scoped failover', () => {
  it('kill -9 of the active member during a read loop: zero failed reads, circuit switch', async () => {
    const { redis, switches, failures } = client();
    for (const m of cluster.members) await plainOn(m.name).set('loop:key', m.name);
    await redis.refreshAll();
    const seen: string[] = [];
    let failed = 0;
    for (let i = 0; i < 60; i++) {
      if (i === 20) await cluster.kill('a');
      try {
        seen.push((await redis.get<string>('loop:key'))!);
      } catch {
        failed += 1;
      }
    }
    expect(failed).toBe(0);
    expect(seen.slice(0, 20).every((v) => v === 'a')).toBe(true);
    expect(seen.slice(25).every((v) => v === 'b')).toBe(true);
    const sw = switches.find((s) => s.from === 'a');
    // Normally the circuit (three failed reads in a row); on a loaded machine a background
    // PING may notice first. Either way no read fails.
    expect(sw).toMatchObject({
      from: 'a',
      to: 'b',
      reason: expect.stringMatching(/^(circuit|health-check)$/),
    });
    // After the switch, requests go straight to b: no further failed attempts on a.
    const afterSwitch = failures.filter((f) => f.at > sw!.at);
    expect(afterSwitch).toEqual([]);
    expect(failures.every((f) => f.member === 'a' && f.failedOver)).toBe(true);
    expect(redis.activeMember()).toBe('b');
  });

  it('SIGSTOP: reads finish on the next member within the attempt timeout', async () => {
    const { redis } = client();
    await plainOn('b').set('hang:key', 'from-b');
    await redis.refreshAll();
    await cluster.pause('a');
    const started = performance.now();
    const value = await redis.get('hang:key');
    const elapsed = performance.now() - started;
    expect(value).toBe('from-b');
    expect(elapsed).toBeLessThan(500 + 900); // the attempt timeout, far from the 3 s deadline
  });

  it('SIGSTOP under concurrent reads: only requests already in flight go without a signal; later attempts to the hung member are cancelled', async () => {
    const a = cluster.members.find((m) => m.name === 'a')!;
    const toA: Array<{ signal: AbortSignal | undefined }> = [];
    const recording: typeof fetch = (input, init) => {
      const url = String(input);
      // The reads of this test only (health probes may PING the same URL).
      if ((url === a.url || url === `${a.url}/`) && String(init?.body).includes('hang:key')) {
        toA.push({ signal: init?.signal ?? undefined });
      }
      return fetch(input, init);
    };
    // No circuit and no background checks: the hung member is never known to be out, so the
    // lock below may send traffic to it (a manual switch to a member known to be out is refused).
    const { redis } = client({
      fetch: recording,
      circuit: { consecutiveFailures: false, failureRate: false },
      health: { enabled: false },
    });
    await plainOn('b').set('hang:key', 'from-b');
    await plainOn('a').set('hang:key', 'from-a');
    await redis.refreshAll();
    expect(await redis.get('hang:key')).toBe('from-a');
    expect(toA.every((r) => r.signal === undefined)).toBe(true);

    await cluster.pause('a');
    const before = toA.length;
    const first = await Promise.all(Array.from({ length: 10 }, () => redis.get('hang:key')));
    expect(first).toEqual(Array(10).fill('from-b'));
    // The ten were sent before anything had timed out: timer-bounded, no signal.
    const inFlight = toA.slice(before);
    expect(inFlight.length).toBe(10);
    expect(inFlight.every((r) => r.signal === undefined)).toBe(true);

    // Send traffic to the hung member again (forced, so the others are locked out and these
    // reads fail): every attempt now carries a signal, aborted at its timeout, so no further
    // request is left open on it.
    redis.forceActiveMember('a', 60_000);
    const after = toA.length;
    const second = await Promise.all(
      Array.from({ length: 5 }, () => redis.get('hang:key').catch((e: unknown) => e)),
    );
    expect(second.every((e) => e instanceof AllMembersFailedError)).toBe(true);
    const cancelled = toA.slice(after);
    expect(cancelled.length).toBe(5);
    expect(cancelled.every((r) => r.signal?.aborted === true)).toBe(true);

    // cancellation: 'always' gives every attempt a signal, a healthy member's too.
    await cluster.resume('a');
    const eager = client({ fetch: recording, cancellation: 'always' });
    await eager.redis.refreshAll();
    eager.redis.forceActiveMember('a', 60_000);
    const healthy = toA.length;
    expect(await eager.redis.get('hang:key')).toBe('from-a');
    expect(toA.slice(healthy).map((r) => r.signal instanceof AbortSignal)).toEqual([true]);
  });

  it('SIGSTOP: a non-idempotent write in flight is refused as ambiguous and runs at most once', async () => {
    const { redis } = client();
    await redis.refreshAll();
    await cluster.pause('a');
    const error = await redis.incr('hang:counter').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AmbiguousWriteError);
    expect(error).toMatchObject({ member: 'a', command: 'incr' });
    await cluster.resume('a');
    // The member executes what it had received once it wakes up: exactly one increment in all.
    await sleep(100);
    const counts = await Promise.all(
      ['a', 'b', 'c'].map((n) => plainOn(n).get<number>('hang:counter')),
    );
    expect(counts.reduce<number>((sum, c) => sum + (c ?? 0), 0)).toBe(1);
    expect(counts[0]).toBe(1);
  });

  it('SIGSTOP: a transaction that reads a key and then deletes it is refused as ambiguous, never re-run', async () => {
    const { redis } = client();
    await redis.refreshAll();
    await plainOn('a').rpush('hang:jobs', 'j1', 'j2');
    await cluster.pause('a');
    // Re-run where the first run's DEL has replicated, it would answer an empty list: the jobs
    // would be gone for the caller. Like GETDEL, it is not retried on an unknown outcome.
    const error = await redis
      .multi()
      .lrange('hang:jobs', 0, -1)
      .del('hang:jobs')
      .exec()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AmbiguousWriteError);
    expect(error).toMatchObject({ member: 'a' });
    await cluster.resume('a');
    await sleep(100);
    expect(await plainOn('b').exists('hang:jobs')).toBe(0);
    expect(await plainOn('c').exists('hang:jobs')).toBe(0);
  });

  it('SIGSTOP: an idempotent write is retried on the next member and lands', async () => {
    const { redis } = client();
    await redis.refreshAll();
    await cluster.pause('a');
    await expect(redis.set('hang:idem', 'v1')).resolves.toBe('OK');
    expect(await plainOn('b').get('hang:idem')).toBe('v1');
    await cluster.resume('a');
    await sleep(100);
    // Whatever the hung member did with it, running it twice did no harm.
    expect([null, 'v1']).toContain(await plainOn('a').get('hang:idem'));
    expect(await plainOn('c').get('hang:idem')).toBeNull();
  });

  it('connection refused: a non-idempotent write is retried safely on the next member', async () => {
    const { redis, failures } = client();
    await cluster.kill('a');
    // Let the client's connection pool see the closed keep-alive sockets: a request written
    // into one the server had just closed is rightly an unknown outcome, a different test.
    await sleep(100);
    expect(await redis.incr('refused:counter')).toBe(1);
    expect(await plainOn('b').get('refused:counter')).toBe(1);
    expect(await plainOn('c').get('refused:counter')).toBeNull();
    expect(failures[0]).toMatchObject({ member: 'a', kind: 'not-sent', failedOver: true });
  });

  it('backend down behind a live gateway (503 not sent): writes fail over safely', async () => {
    const { redis } = client();
    await cluster.killBackend('a');
    // Give the gateway a moment to see its backend connection drop; a command written in that
    // instant is rightly an unknown outcome (502), which is a different test.
    await sleep(300);
    expect(await redis.lpush('backend:list', 'x')).toBe(1);
    expect(await plainOn('b').llen('backend:list')).toBe(1);
  });

  it('all members down: AllMembersFailedError quickly, listing every member', async () => {
    const { redis } = client();
    for (const m of cluster.members) await cluster.kill(m.name);
    const started = performance.now();
    const error = await redis.get('x').catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(2500);
    expect(error).toBeInstanceOf(AllMembersFailedError);
    const failures = (error as AllMembersFailedError).failures;
    expect(failures.map((f) => f.member).sort()).toEqual(['a', 'b', 'c']);
    expect(failures.every((f) => f.kind === 'not-sent')).toBe(true);
  });

  it('all members hung: gives up at the deadline, no hang, no unbounded retries', async () => {
    const { redis } = client({ deadlineMs: 1200 });
    await redis.refreshAll();
    for (const m of cluster.members) await cluster.pause(m.name);
    const started = performance.now();
    const error = await redis.get('x').catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(AllMembersFailedError);
    expect(elapsed).toBeLessThan(1200 + 900);
    const kinds = (error as AllMembersFailedError).failures.map((f) => f.kind);
    expect(kinds.length).toBe(3);
    expect(kinds.filter((k) => k === 'unknown-outcome').length).toBeGreaterThanOrEqual(2);
  });

  it("a timeout cut short by the caller's deadline is not held against the member", async () => {
    // Member a answers, but 150 ms late (lag injected on the client's side of real requests).
    const aUrl = new URL(cluster.members.find((m) => m.name === 'a')!.url).origin;
    const laggyFetch: typeof fetch = async (input, init) => {
      if (new URL(String(input)).origin === aUrl) await sleep(150);
      return fetch(input, init);
    };
    const { redis, switches, failures } = client({
      fetch: laggyFetch,
      health: { intervalMs: 60_000 },
    });
    await redis.refreshAll();
    // A 100 ms budget per request: each call times out on a, and nothing else fits in it.
    for (let i = 0; i < 5; i++) {
      const error = await redis
        .scope({ deadlineMs: 100 })
        .get('x')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AllMembersFailedError);
    }
    expect(failures.filter((f) => f.member === 'a').length).toBe(5);
    // Five timeouts of our own making: a's circuit stays closed and traffic stays on it.
    expect(redis.snapshot().members.find((m) => m.name === 'a')).toMatchObject({
      circuit: 'closed',
      consecutiveFailures: 0,
    });
    expect(switches).toEqual([]);
    expect(await redis.get('x')).toBeNull(); // the full timeout (500 ms) is enough for a
    expect(redis.activeMember()).toBe('a');

    // Without health checks nothing else would find a hanging member: there they count.
    const unchecked = client({ fetch: laggyFetch, health: { enabled: false } });
    await unchecked.redis.refreshAll();
    for (let i = 0; i < 3; i++)
      await unchecked.redis
        .scope({ deadlineMs: 100 })
        .get('x')
        .catch(() => 0);
    expect(unchecked.switches[0]).toMatchObject({ from: 'a', reason: 'circuit' });

    // A timeout at the full timeoutMs still counts: 150 ms late against a 150 ms timeout.
    resetHealthStores(); // a fresh store: the one above has a's circuit open now
    const slow = client({
      timeoutMs: 150,
      fetch: laggyFetch,
      health: { enabled: false },
    });
    await slow.redis.refreshAll();
    for (let i = 0; i < 3; i++) await slow.redis.get('x');
    expect(slow.switches[0]).toMatchObject({ from: 'a', reason: 'circuit' });
  });

  it('a member that hangs under a tight request budget is found out by a probe, not left in place', async () => {
    // Refreshes only when something asks for one: the timeouts cut short must ask.
    const { redis } = client({ health: { intervalMs: 60_000, probeTimeoutMs: 300 } });
    await redis.refreshAll();
    await cluster.pause('a');
    const served: Array<string | undefined> = [];
    for (let i = 0; i < 15 && served.at(-1) !== 'b'; i++) {
      const scoped = redis.scope({ deadlineMs: 300 }); // less than timeoutMs (500)
      await scoped.get('x').catch(() => undefined);
      served.push(scoped.servedBy);
      await sleep(100);
    }
    expect(served.at(-1)).toBe('b');
    const a = redis.snapshot().members.find((m) => m.name === 'a')!;
    expect(a.status).toBe('unhealthy'); // the probe's verdict
    expect(a.consecutiveFailures).toBe(0); // not the circuit's
  });

  it('a late answer from a request sent before the circuit opened does not end its grace period', async () => {
    // Two clients over the same members share one health store; the patient one's read is
    // still waiting on a when the impatient one's timeouts open a's circuit.
    const impatient = client({ timeoutMs: 300, health: { enabled: false }, gracePeriodMs: 60_000 });
    const patient = client({ timeoutMs: 3000, health: { enabled: false }, gracePeriodMs: 60_000 });
    await impatient.redis.refreshAll();
    await cluster.pause('a');
    const late = patient.redis.get('x');
    for (let i = 0; i < 3; i++) await impatient.redis.get('x');
    expect(impatient.switches[0]).toMatchObject({ from: 'a', to: 'b', reason: 'circuit' });
    await cluster.resume('a');
    expect(await late).toBeNull(); // answered by a, after its circuit opened
    const a = impatient.redis.snapshot().members.find((m) => m.name === 'a')!;
    expect(a.circuit).toBe('open');
    expect(a.status).toBe('unhealthy');
    expect(impatient.redis.activeMember()).toBe('b');
    expect(await impatient.redis.get('x')).toBeNull();
    expect(impatient.redis.activeMember()).toBe('b');
  });

  it('fails back after the grace period once the preferred member is back', async () => {
    const { redis, switches } = client();
    await cluster.kill('a');
    for (let i = 0; i < 5; i++) await redis.get('fb');
    expect(redis.activeMember()).toBe('b');
    await cluster.restart('a');
    const deadline = Date.now() + 8000;
    while (redis.activeMember() !== 'a' && Date.now() < deadline) {
      await redis.get('fb');
      await sleep(50);
    }
    expect(redis.activeMember()).toBe('a');
    // Out by whichever noticed first (the circuit or a background PING), back by failback.
    expect(switches.map((s) => s.reason)).toEqual([
      expect.stringMatching(/^(circuit|health-check)$/),
      'failback',
    ]);
  });

  it('with health checks off, a PING in the background closes a half-open circuit; reads stay on the active member until failback', async () => {
    const { redis, switches, failures } = client({ health: { enabled: false } });
    await plainOn('a').set('fb', 'from-a');
    await plainOn('b').set('fb', 'from-b');
    expect(await redis.get('fb')).toBe('from-a');
    await cluster.kill('a');
    for (let i = 0; i < 5; i++) await redis.get('fb');
    expect(redis.activeMember()).toBe('b');
    await cluster.restart('a');
    await plainOn('a').set('fb', 'from-a');
    failures.length = 0;
    let failed = 0;
    const readWhileOnB = new Set<unknown>();
    const background: Promise<unknown>[] = [];
    const deadline = Date.now() + 6000;
    while (redis.activeMember() !== 'a' && Date.now() < deadline) {
      try {
        const value = await redis.scope({ waitUntil: (p) => background.push(p) }).get('fb');
        if (redis.activeMember() === 'b') readWhileOnB.add(value);
      } catch {
        failed += 1;
      }
      await sleep(20);
    }
    await Promise.all(background);
    // No read went to the member coming back before failback (it may be behind).
    expect([...readWhileOnB]).toEqual(['from-b']);
    expect(failed).toBe(0);
    expect(failures).toEqual([]);
    expect(redis.activeMember()).toBe('a');
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['a', 'b', 'circuit'],
      ['b', 'a', 'failback'],
    ]);
  });

  it('with health checks off, a member still down gets one PING per half-open period, and no call fails', async () => {
    const aUrl = cluster.members.find((m) => m.name === 'a')!.url;
    let pings = 0;
    const recording: typeof fetch = (input, init) => {
      if (String(input).startsWith(aUrl) && init?.body === '["ping"]') pings += 1;
      return fetch(input, init);
    };
    const { redis, failures } = client({ health: { enabled: false }, fetch: recording });
    await redis.get('x');
    await cluster.kill('a');
    for (let i = 0; i < 5; i++) await redis.get('x');
    expect(redis.activeMember()).toBe('b');
    const background: Promise<unknown>[] = [];
    const burst = async () => {
      const scope = redis.scope({ waitUntil: (p) => background.push(p) });
      await Promise.all([
        ...Array.from({ length: 10 }, () => scope.get('x')),
        scope.incr('trial:counter'),
      ]);
      await Promise.all(background);
    };
    failures.length = 0;
    await sleep(1100); // a's grace period (1000 ms) is over: half-open
    await burst();
    expect(pings).toBe(1);
    // The failed trial opened a's circuit for another grace period: nothing more until then.
    await burst();
    expect(pings).toBe(1);
    await sleep(1100);
    await burst();
    expect(pings).toBe(2);
    expect(failures).toEqual([]);
    expect(redis.activeMember()).toBe('b');
  });

  it('hedged reads take the first answer when the active member is slow', async () => {
    const { redis } = client({ hedgeAfterMs: 100, timeoutMs: 2000 });
    await plainOn('b').set('hedge:key', 'b');
    await redis.refreshAll();
    await cluster.pause('a');
    const started = performance.now();
    expect(await redis.get('hedge:key')).toBe('b');
    expect(performance.now() - started).toBeLessThan(100 + 900); // not the 2 s timeout
  });

  it('a hedged read cancels the slow attempt it did not need, and a caller abort cancels both', async () => {
    const sent: Array<{ url: string; signal: AbortSignal }> = [];
    const recordingFetch: typeof fetch = (input, init) => {
      if (init?.signal) sent.push({ url: String(input), signal: init.signal });
      return fetch(input, init);
    };
    const { redis, failures } = client({
      hedgeAfterMs: 100,
      timeoutMs: 2000,
      fetch: recordingFetch,
      // No background probes: every request recorded below is one of the reads' attempts.
      health: { enabled: false },
    });
    await plainOn('b').set('hedge:cancel', 'b');
    await redis.refreshAll();
    await cluster.pause('a');
    const memberOf = (url: string) =>
      cluster.members.find((m) => new URL(m.url).origin === new URL(url).origin)?.name;

    sent.length = 0;
    expect(await redis.get('hedge:cancel')).toBe('b');
    const loser = sent.find((s) => memberOf(s.url) === 'a');
    expect(loser?.signal.aborted).toBe(true);
    // The loser was ours to cancel: not a failure of the member, and no event for it.
    expect(failures.filter((f) => f.member === 'a')).toEqual([]);

    // Every member slow: the caller gives up, and every attempt it started is aborted.
    await cluster.pause('b');
    await cluster.pause('c');
    sent.length = 0;
    const caller = new AbortController();
    const read = redis.scope({ signal: caller.signal }).get('hedge:cancel');
    await sleep(400); // a, then b after 100 ms, then c after 200 ms
    caller.abort(new Error('client went away'));
    await expect(read).rejects.toThrow('client went away');
    expect(sent.map((s) => memberOf(s.url)).sort()).toEqual(['a', 'b', 'c']);
    expect(sent.every((s) => s.signal.aborted)).toBe(true);
    await cluster.resume('b');
    await cluster.resume('c');
  });

  it('a hedged read won by another member does not move a pinned request off its member', async () => {
    const { redis } = client({ hedgeAfterMs: 100, timeoutMs: 2000, health: { enabled: false } });
    await plainOn('b').set('hedge:pin', 'b');
    await redis.refreshAll();
    const scoped = redis.scope({ pin: true });
    await scoped.get('hedge:pin');
    expect(scoped.pinnedMember).toBe('a');
    await cluster.pause('a');
    const slowRead = scoped.get('hedge:pin'); // a is slow, b answers the hedge
    await sleep(300);
    await cluster.resume('a');
    expect(await slowRead).toBe('b');
    expect(scoped.servedBy).toBe('b');
    expect(scoped.pinnedMember).toBe('a'); // slow, not failed: the request stays on a
  });

  it("a scope's first read, won by a hedge, pins the scope to its lead, not to the standby", async () => {
    const { redis } = client({ hedgeAfterMs: 100, timeoutMs: 2000, health: { enabled: false } });
    await plainOn('b').set('hedge:first', 'b');
    await redis.refreshAll();
    const scoped = redis.scope({ pin: true });
    await cluster.pause('a');
    const slowRead = scoped.get('hedge:first'); // a is slow, b answers the hedge
    await sleep(300);
    await cluster.resume('a');
    expect(await slowRead).toBe('b');
    expect(scoped.pinnedMember).toBe('a'); // slow, not failed: the scope's writes stay on a
    await scoped.incr('hedge:first:n');
    expect(await plainOn('a').get('hedge:first:n')).toBe(1);
    expect(await plainOn('b').get('hedge:first:n')).toBeNull();
  });

  it('a hedged read goes only to a member fit to be selected, not to one reported down', async () => {
    const { redis } = client({ hedgeAfterMs: 50, timeoutMs: 2000, health: { intervalMs: 60_000 } });
    await plainOn('a').set('hedge:fit', 'a');
    await cluster.setAvailability('b', { status: 503, errorCode: 'bdb_unavailable' });
    await cluster.setAvailability('c', { status: 503, errorCode: 'bdb_unavailable' });
    await redis.refreshAll();
    await cluster.pause('a');
    const slowRead = redis.get('hedge:fit');
    await sleep(300);
    await cluster.resume('a');
    expect(await slowRead).toBe('a'); // nothing failed: no hedge to b or c
  });

  it('a hedge refused for a wrong token does not fail a read the lead member answers', async () => {
    const members = cluster.members.map((m) => (m.name === 'b' ? { ...m, token: 'wrong' } : m));
    const { redis, failures } = client({
      members,
      hedgeAfterMs: 50,
      timeoutMs: 2000,
      health: { enabled: false },
    });
    await plainOn('a').set('hedge:token', 'a');
    await cluster.pause('c'); // so that c cannot answer first either
    await cluster.pause('a');
    const slowRead = redis.get('hedge:token');
    await sleep(300);
    await cluster.resume('a');
    expect(await slowRead).toBe('a');
    expect(failures).toContainEqual(expect.objectContaining({ member: 'b', kind: 'config' }));
  });

  it('a hedged read whose first member is down moves on at once, not after the hedge delay', async () => {
    const { redis } = client({ hedgeAfterMs: 1000, timeoutMs: 2000 });
    await plainOn('b').set('hedge:down', 'b');
    await redis.refreshAll();
    await cluster.kill('a');
    const started = performance.now();
    expect(await redis.get('hedge:down')).toBe('b');
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('anchor-style mode (requestFailover: false)', () => {
  it('a call tries the active member only; traffic moves when the circuit opens', async () => {
    const { redis, switches } = client({ requestFailover: false, health: { enabled: false } });
    await redis.refreshAll();
    await cluster.kill('a');
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(
        await redis.get('x').then(
          () => 'ok',
          (e: Error) => e.name,
        ),
      );
    }
    expect(outcomes).toEqual([
      'AllMembersFailedError',
      'AllMembersFailedError',
      'AllMembersFailedError',
      'ok',
      'ok',
    ]);
    expect(switches[0]).toMatchObject({ from: 'a', to: 'b', reason: 'circuit' });
  });
});

describe('controls', () => {
  it('forceActiveMember holds for its duration, then the preferred member returns', async () => {
    const { redis, switches } = client();
    await redis.refreshAll();
    redis.forceActiveMember('c', 800);
    for (let i = 0; i < 3; i++) {
      const scoped = redis.scope();
      await scoped.get('forced');
      expect(scoped.pinnedMember).toBe('c');
    }
    await sleep(800 + 1000 + 300); // lock, then a grace period on c before failback
    const deadline = Date.now() + 3000;
    while (redis.activeMember() !== 'a' && Date.now() < deadline) {
      await redis.get('forced');
      await sleep(50);
    }
    expect(redis.activeMember()).toBe('a');
    expect(switches[0]).toMatchObject({ from: 'a', to: 'c', reason: 'forced' });
  });

  it('forceActiveMember locks the other members out: no failover to them while it holds', async () => {
    const { redis } = client({ health: { enabled: false } });
    await redis.refreshAll();
    redis.forceActiveMember('c', 60_000);
    await cluster.kill('c');
    const error = await redis.get('forced').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllMembersFailedError);
    // c was tried; the others were kept out, and the error says so rather than "failed".
    expect(
      (error as AllMembersFailedError).failures.map((f) => [f.member, f.kind, f.message]),
    ).toEqual([
      ['c', expect.any(String), expect.any(String)],
      ['a', 'skipped', 'locked out by forceActiveMember'],
      ['b', 'skipped', 'locked out by forceActiveMember'],
    ]);
    // Lifting the lock (setActiveMember) lets traffic fail over again.
    redis.setActiveMember('a');
    expect(await redis.get('forced')).toBeNull();
  });

  /** What a manual control throws, or undefined. */
  function thrownBy(call: () => void): Error | undefined {
    try {
      call();
    } catch (error) {
      return error as Error;
    }
    return undefined;
  }

  it('setActiveMember and forceActiveMember refuse a member a health check reported down', async () => {
    const { redis, switches, failures } = client({ health: { intervalMs: 60_000 } });
    await redis.set('manual:out', 'v');
    await cluster.kill('b');
    await redis.refreshAll(); // a full check: b is known to be down (its circuit never opened)
    expect(redis.snapshot().members.find((m) => m.name === 'b')).toMatchObject({
      status: 'unhealthy',
      circuit: 'closed',
    });
    // As Jedis' setActiveDatabase (JedisValidationException) and redis-py's
    // set_active_database (NoValidDatabaseException): refused, synchronously, nothing changed.
    for (const call of [
      () => redis.setActiveMember('b'),
      () => redis.forceActiveMember('b', 30_000),
    ]) {
      const error = thrownBy(call);
      expect(error).toBeInstanceOf(MemberUnavailableError);
      expect(error).toMatchObject({ member: 'b' });
      expect(error!.message).toBe('Member "b" is out: a health check reported it down');
    }
    expect(redis.activeMember()).toBe('a');
    expect(redis.snapshot().forced).toBeUndefined();
    expect(switches).toEqual([]);
    // In particular no lock on a dead member: the others still serve.
    for (let i = 0; i < 3; i++) expect(await redis.get('manual:out')).toBe('v');
    expect(failures).toEqual([]);
    // Unknown names keep their own error.
    expect(() => redis.setActiveMember('zz')).toThrow('no member named "zz"');
  });

  it('setActiveMember and forceActiveMember refuse a member whose circuit is open here, not one never checked', async () => {
    const { redis, switches } = client({ health: { enabled: false } });
    // Nothing checked: every member's state is unknown, which is no reason to refuse.
    expect(redis.snapshot().members.map((m) => m.status)).toEqual([
      'unknown',
      'unknown',
      'unknown',
    ]);
    redis.setActiveMember('c');
    expect(redis.activeMember()).toBe('c');
    await cluster.kill('c');
    for (let i = 0; i < 3; i++) await redis.get('manual:circuit'); // c's circuit opens
    expect(redis.activeMember()).not.toBe('c');
    for (const call of [
      () => redis.setActiveMember('c'),
      () => redis.forceActiveMember('c', 30_000),
    ]) {
      const error = thrownBy(call);
      expect(error).toBeInstanceOf(MemberUnavailableError);
      expect(error!.message).toBe('Member "c" is out: its circuit is open');
      for (const m of cluster.members) {
        expect(error!.message).not.toContain(m.url);
        expect(error!.message).not.toContain(m.token);
      }
    }
    expect(switches.map((e) => [e.to, e.reason])).toEqual([
      ['c', 'forced'],
      [expect.any(String), 'circuit'],
    ]);
    expect(redis.snapshot().forced).toBeUndefined();
    // Another member is accepted as before.
    redis.forceActiveMember('b', 30_000);
    expect(redis.activeMember()).toBe('b');
  });

  it('a half-open member (grace period over, not checked since) may be forced: that is how an operator brings it back', async () => {
    const { redis } = client({ health: { enabled: false } });
    await plainOn('c').set('manual:half', 'from-c');
    redis.setActiveMember('c');
    await cluster.pause('c');
    for (let i = 0; i < 3; i++) await redis.get('manual:half'); // timeouts: c's circuit opens
    await cluster.resume('c');
    expect(redis.activeMember()).not.toBe('c');
    expect(() => redis.forceActiveMember('c', 30_000)).toThrow(MemberUnavailableError);
    await sleep(1100); // the grace period (1000 ms) is over
    expect(redis.snapshot().members.find((m) => m.name === 'c')!.circuit).toBe('half-open');
    redis.forceActiveMember('c', 30_000);
    expect(redis.activeMember()).toBe('c');
    expect(await redis.get('manual:half')).toBe('from-c');
    expect(redis.snapshot().members.find((m) => m.name === 'c')!.circuit).toBe('closed');
  });

  it('a pinned request leaves its member once a health check reports it down', async () => {
    const { redis } = client({ health: { intervalMs: 60_000 } });
    await plainOn('b').set('pin:down', 'b');
    await redis.refreshAll();
    const scoped = redis.scope({ pin: true });
    await scoped.get('pin:down');
    expect(scoped.pinnedMember).toBe('a');
    await cluster.setAvailability('a', { status: 503, errorCode: 'bdb_unavailable' });
    await redis.refreshAll(); // a is down by the health check; its circuit is still closed
    expect(redis.snapshot().members.find((m) => m.name === 'a')).toMatchObject({
      status: 'unhealthy',
      circuit: 'closed',
    });
    expect(await scoped.get('pin:down')).toBe('b');
    expect(scoped.pinnedMember).toBe('b');
  });

  it('removeMember of the active member switches to the next one', async () => {
    const { redis, switches } = client();
    await redis.refreshAll(); // every member known healthy, so weight decides the successor
    await redis.refreshAll();
    redis.removeMember('a');
    const scoped = redis.scope();
    await scoped.get('removed');
    expect(scoped.pinnedMember).toBe('b');
    expect(switches.at(-1)).toMatchObject({ from: 'a', to: 'b' });
  });

  it('a scope stays on its member for all of its commands', async () => {
    const { redis } = client();
    const scoped = redis.scope();
    await scoped.set('pin:1', 1);
    redis.setActiveMember('c');
    await scoped.get('pin:1');
    expect(scoped.pinnedMember).toBe('a');
    const fresh = redis.scope();
    await fresh.get('pin:1');
    expect(fresh.pinnedMember).toBe('c');
  });
});

describe('configuration problems surface', () => {
  it('401 from a member is a MemberConfigError naming it, with no token in the message', async () => {
    const badToken = 'definitely-wrong-token-xyz';
    const members = cluster.members.map((m) => (m.name === 'a' ? { ...m, token: badToken } : m));
    const redis = createFailoverRedis({ members, timeoutMs: 500 });
    const error = await redis.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemberConfigError);
    expect(error).toMatchObject({ member: 'a', status: 401 });
    expect(String((error as Error).message)).toContain('"a"');
    expect(JSON.stringify(error)).not.toContain(badToken);
    expect(String((error as Error).message)).not.toContain(badToken);
    expect(String((error as Error).stack)).not.toContain(badToken);
  });
});
