/**
 * The requester's retry decisions against a fake fetch, no processes: members are told apart by
 * port, and "Active-Active" is one state both handlers change, so a write the first member ran
 * before its reply was lost is visible to the next one (as it is once it has replicated).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  createFailoverRedis,
  type FailureEvent,
  MemberConfigError,
  MemberUnavailableError,
  resetHealthStores,
} from '../../src/index.js';

type Handler = (body: unknown, init: RequestInit) => Promise<Response> | Response;

const PORTS: Record<string, string> = { a: '10001', b: '10002', c: '10003' };
const member = (name: string, weight = 1, token = `tok-${name}`) => ({
  name,
  url: `http://127.0.0.1:${PORTS[name]}`,
  token,
  weight,
});

function fakeFetch(handlers: Record<string, Handler>) {
  const calls: string[] = [];
  const fetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const port = new URL(String(input)).port;
    const name = Object.keys(PORTS).find((m) => PORTS[m] === port)!;
    calls.push(name);
    return handlers[name]!(JSON.parse(String(init.body)), init);
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const json = (value: unknown) =>
  new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json' } });
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** The connection reset while the reply was on its way: an unknown outcome. */
const reset = (): never => {
  const error = new TypeError('fetch failed');
  (error as { cause?: unknown }).cause = Object.assign(new Error('read ECONNRESET'), {
    code: 'ECONNRESET',
  });
  throw error;
};
/**
 * The call's clock (the `now` option): a member's handler moves it on to stand for a slow
 * attempt, so "the deadline has passed" does not depend on when timers fire.
 */
let skew = 0;
const now = () => Date.now() + skew;
/** Takes `ms` of the call's time, then loses the reply. */
const slowReset = (ms: number) => () => {
  skew += ms;
  return reset();
};

function client(
  fetch: typeof globalThis.fetch,
  extra: { timeoutMs?: number; deadlineMs?: number; hedgeAfterMs?: number } = {},
) {
  const failures: FailureEvent[] = [];
  const redis = createFailoverRedis({
    members: [member('a', 2), member('b')],
    fetch,
    now,
    cancellation: 'always',
    health: { enabled: false },
    on: { failure: (e) => failures.push(e) },
    ...extra,
  });
  return { redis, failures };
}

beforeEach(() => {
  resetHealthStores();
  skew = 0;
});

describe('unknown outcome where the first run replicated', () => {
  it('a queue drained in a transaction (LRANGE then DEL) is not run again: AmbiguousWriteError', async () => {
    const lists = new Map([['q', ['job1', 'job2']]]);
    const exec = (commands: unknown[][]) =>
      commands.map(([name, key]) =>
        name === 'lrange'
          ? { result: (lists.get(key as string) ?? []).map(b64) }
          : { result: lists.delete(key as string) ? 1 : 0 },
      );
    const { fetch, calls } = fakeFetch({
      a: (body) => {
        exec(body as unknown[][]);
        return reset();
      },
      b: (body) => json(exec(body as unknown[][])),
    });
    const { redis } = client(fetch);
    const result = await redis
      .multi()
      .lrange('q', 0, -1)
      .del('q')
      .exec()
      .catch((e: unknown) => e);
    // Retried, b would answer [[], 0]: the jobs gone without anyone having seen them.
    expect(result).toBeInstanceOf(AmbiguousWriteError);
    expect(calls).toEqual(['a']);
  });

  it('SETBIT is not run again: its reply would be the bit it set itself', async () => {
    const bits = new Set<number>();
    const setbit = (body: unknown) => {
      const [, , offset] = body as [string, string, number, number];
      const old = bits.has(offset) ? 1 : 0;
      bits.add(offset);
      return old;
    };
    const { fetch, calls } = fakeFetch({
      a: (body) => {
        setbit(body);
        return reset();
      },
      b: (body) => json({ result: setbit(body) }),
    });
    const { redis } = client(fetch);
    const result = await redis.setbit('seen', 42, 1).catch((e: unknown) => e);
    // Retried, b would answer 1: "someone else was here first".
    expect(result).toBeInstanceOf(AmbiguousWriteError);
    expect(calls).toEqual(['a']);
  });
});

describe('failure event: failedOver', () => {
  it('is true when the call goes on to the next member', async () => {
    const { fetch, calls } = fakeFetch({ a: () => reset(), b: () => json({ result: 'v' }) });
    const { redis, failures } = client(fetch, { timeoutMs: 1000, deadlineMs: 5000 });
    expect(await redis.get('k')).toBe('v');
    expect(calls).toEqual(['a', 'b']);
    expect(failures).toMatchObject([{ member: 'a', kind: 'unknown-outcome', failedOver: true }]);
  });

  it('is false when the first attempt used up the deadline and no other member is tried', async () => {
    const { fetch, calls } = fakeFetch({ a: slowReset(600), b: () => json({ result: 'v' }) });
    const { redis, failures } = client(fetch, { timeoutMs: 1000, deadlineMs: 500 });
    const err = await redis.get('k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllMembersFailedError);
    expect(calls).toEqual(['a']);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ member: 'a', failedOver: false });
  });

  it('is false for the last member', async () => {
    const { fetch } = fakeFetch({ a: () => reset(), b: () => reset() });
    const { redis, failures } = client(fetch, { timeoutMs: 1000, deadlineMs: 5000 });
    await expect(redis.get('k')).rejects.toBeInstanceOf(AllMembersFailedError);
    expect(failures.map((f) => [f.member, f.failedOver])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('is the same for a hedged read: true while another member is tried, false for the last', async () => {
    const { fetch, calls } = fakeFetch({ a: () => reset(), b: () => reset() });
    const { redis, failures } = client(fetch, {
      timeoutMs: 1000,
      deadlineMs: 5000,
      hedgeAfterMs: 500,
    });
    await expect(redis.get('k')).rejects.toBeInstanceOf(AllMembersFailedError);
    expect(calls).toEqual(['a', 'b']);
    expect(failures.map((f) => [f.member, f.failedOver])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('is false for a hedged read whose first attempt used up the deadline', async () => {
    const { fetch, calls } = fakeFetch({ a: slowReset(600), b: () => json({ result: 'v' }) });
    const { redis, failures } = client(fetch, {
      timeoutMs: 1000,
      deadlineMs: 500,
      hedgeAfterMs: 400,
    });
    await expect(redis.get('k')).rejects.toBeInstanceOf(AllMembersFailedError);
    expect(calls).toEqual(['a']);
    expect(failures).toMatchObject([{ member: 'a', failedOver: false }]);
  });
});

describe('hedged reads', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const refused = (): never => {
    const error = new TypeError('fetch failed');
    (error as { cause?: unknown }).cause = Object.assign(new Error('connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
    });
    throw error;
  };

  it('the lead refusing the token is surfaced, not answered by the hedge in its place', async () => {
    const { fetch } = fakeFetch({
      a: async () => {
        await sleep(100);
        return new Response(JSON.stringify({ error: 'WRONGPASS' }), { status: 401 });
      },
      b: async () => {
        await sleep(300);
        return json({ result: b64('b') });
      },
    });
    const redis = createFailoverRedis({
      members: [member('a', 3, 'wrong'), member('b', 2)],
      fetch,
      hedgeAfterMs: 30,
      health: { enabled: false },
      cancellation: 'always',
    });
    await expect(redis.get('k')).rejects.toBeInstanceOf(MemberConfigError);
  });

  it('never go to a member with an open circuit, even behind one this client has no token for', async () => {
    let cDown = true;
    const { fetch, calls } = fakeFetch({
      a: async () => {
        await sleep(200);
        return json({ result: b64('a') });
      },
      b: () => json({ result: b64('b') }),
      c: () => (cDown ? refused() : json({ result: b64('c') })),
    });
    const options = {
      fetch,
      health: { enabled: false },
      circuit: { consecutiveFailures: 1 },
      cancellation: 'always' as const,
    };
    const reader = createFailoverRedis({
      members: [member('a', 3), member('c', 1)],
      hedgeAfterMs: 30,
      ...options,
    });
    // Another client on the same store adds b, which the reader holds no token for.
    createFailoverRedis({ members: [member('a', 3), member('c', 1)], ...options }).addMember(
      member('b', 2),
    );
    reader.forceActiveMember('c', 60_000);
    await reader.get('x').catch(() => undefined); // c's circuit opens
    reader.setActiveMember('a');
    expect(reader.snapshot().members.find((m) => m.name === 'c')!.circuit).not.toBe('closed');
    cDown = false;
    calls.length = 0;
    expect(await reader.get('k')).toBe('a');
    expect(calls).toEqual(['a']); // nothing failed: no hedge to c, which is out
  });
});

describe('trial of a half-open member (health checks off)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /**
   * a (weight 2) lost three replies in a row (circuit open, b active), and its grace period is
   * over: half-open, and nothing but a trial can close its circuit. `bodies` records what a
   * is sent from then on.
   */
  async function halfOpenA(a: Handler, extra: { hedgeAfterMs?: number } = {}) {
    let aHandler: Handler = () => reset();
    const bodies: unknown[] = [];
    const { fetch, calls } = fakeFetch({
      a: (body, init) => aHandler(body, init),
      b: () => json({ result: b64('b') }),
    });
    const { redis, failures } = client(fetch, { timeoutMs: 500, ...extra });
    for (let i = 0; i < 3; i++) await redis.get('k');
    expect(redis.activeMember()).toBe('b');
    skew += 60_000; // the default grace period
    aHandler = (body, init) => {
      bodies.push(body);
      return a(body, init);
    };
    calls.length = 0;
    failures.length = 0;
    const background: Promise<unknown>[] = [];
    const scoped = () => redis.scope({ waitUntil: (p) => background.push(p) });
    const settled = () => Promise.all(background);
    const circuitOfA = () => redis.snapshot().members.find((m) => m.name === 'a')!.circuit;
    return { redis, failures, calls, bodies, scoped, settled, circuitOfA };
  }

  it('is a PING beside the call, which the active member serves; its answer closes the circuit', async () => {
    const t = await halfOpenA(() => json({ result: b64('PONG') }));
    const scope = t.scoped();
    // The caller's read is never the trial: a member just back may be behind.
    expect(await scope.get('k')).toBe('b');
    expect(scope.servedBy).toBe('b');
    await t.settled();
    expect(t.bodies).toEqual([['ping']]);
    expect(t.circuitOfA()).toBe('closed');
    expect(t.failures).toEqual([]);
  });

  it('a write starts it too, and one at a time: concurrent calls send one PING', async () => {
    const t = await halfOpenA(async () => {
      await sleep(50);
      return json({ result: b64('PONG') });
    });
    const scope = t.scoped();
    await Promise.all([scope.incr('n'), scope.get('k'), scope.set('k', 'v')]);
    await t.settled();
    expect(t.bodies).toEqual([['ping']]);
    expect(t.circuitOfA()).toBe('closed');
  });

  it('a trial that fails opens the circuit for another grace period; no call fails for it', async () => {
    const t = await halfOpenA(() => reset());
    expect(await t.scoped().get('k')).toBe('b');
    await t.settled();
    expect(t.circuitOfA()).toBe('open');
    expect(t.failures).toEqual([]);
    skew += 1000;
    await t.scoped().get('k');
    await t.settled();
    expect(t.bodies).toHaveLength(1); // still in its new grace period: no second trial
  });

  it('a hanging member cannot stall a hedged read, and its trial times out as a failure', async () => {
    const t = await halfOpenA(
      async (_body, init) => {
        await new Promise((_resolve, reject) =>
          init.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
        );
        return json({ result: b64('never') });
      },
      { hedgeAfterMs: 30 },
    );
    const started = Date.now();
    expect(await t.scoped().get('k')).toBe('b');
    expect(Date.now() - started).toBeLessThan(400);
    await t.settled();
    expect(t.circuitOfA()).toBe('open');
  });

  it('an error reply to the PING is a failed trial, as the PING probe judges it', async () => {
    const t = await halfOpenA(() => json({ error: 'ERR max requests limit exceeded' }));
    expect(await t.scoped().get('k')).toBe('b');
    await t.settled();
    expect(t.circuitOfA()).toBe('open');
  });

  it('after a failed trial the member may still be forced back once its grace period is over', async () => {
    const t = await halfOpenA(() => reset());
    await t.scoped().get('k');
    await t.settled();
    expect(t.circuitOfA()).toBe('open');
    expect(() => t.redis.forceActiveMember('a', 10_000)).toThrow(MemberUnavailableError);
    skew += 60_000;
    expect(t.circuitOfA()).toBe('half-open');
    // setActiveMember would not hold a member that is not usable; forcing it is the way back.
    expect(() => t.redis.setActiveMember('a')).toThrow(MemberUnavailableError);
    t.redis.forceActiveMember('a', 10_000);
    expect(t.redis.activeMember()).toBe('a');
  });

  it('a trial refused for its token is no verdict, is reported, and waits a grace period before the next', async () => {
    const t = await halfOpenA(
      () => new Response(JSON.stringify({ error: 'WRONGPASS' }), { status: 401 }),
    );
    expect(await t.scoped().get('k')).toBe('b');
    await t.settled();
    expect(t.circuitOfA()).toBe('half-open');
    expect(t.failures.map((f) => [f.member, f.kind, f.command])).toEqual([['a', 'config', 'ping']]);
    skew += 1000;
    await t.scoped().get('k');
    await t.settled();
    expect(t.bodies).toHaveLength(1);
  });

  it('a trial that ends after a call closed the circuit changes nothing', async () => {
    let bFails = false;
    const pings: string[] = [];
    const { fetch } = fakeFetch({
      a: async (body, init) => {
        if (JSON.stringify(body) === '["ping"]') {
          pings.push('ping');
          // Hangs until its timeout.
          return new Promise<Response>((_resolve, reject) =>
            init.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
          );
        }
        return json({ result: b64('a') });
      },
      b: () => (bFails ? reset() : json({ result: b64('b') })),
    });
    const { redis } = client(fetch, { timeoutMs: 500 });
    // a's circuit opens (three lost replies, through a client of the same members, which shares
    // the isolate's health), b leads; a grace period later a is half-open.
    const aDown = createFailoverRedis({
      members: [member('a', 2), member('b')],
      fetch: fakeFetch({ a: () => reset(), b: () => json({ result: b64('b') }) }).fetch,
      now,
      cancellation: 'always',
      health: { enabled: false },
    });
    for (let i = 0; i < 3; i++) await aDown.get('k');
    expect(redis.activeMember()).toBe('b');
    skew += 60_000;
    const background: Promise<unknown>[] = [];
    const scope = () => redis.scope({ waitUntil: (p) => background.push(p) });
    expect(await scope().get('k')).toBe('b'); // starts the trial, which hangs
    expect(pings).toHaveLength(1);
    bFails = true;
    expect(await scope().get('k')).toBe('a'); // b fails, the call goes to a: its circuit closes
    const a = () => redis.snapshot().members.find((m) => m.name === 'a')!;
    expect(a()).toMatchObject({ circuit: 'closed', status: 'healthy' });
    await Promise.all(background); // the PING times out now
    expect(a()).toMatchObject({ circuit: 'closed', status: 'healthy' });
  });
});
