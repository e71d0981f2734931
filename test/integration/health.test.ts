import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  createFailoverRedis,
  type FailoverOptions,
  type FailureEvent,
  type HealthCache,
  type HealthEvent,
  type MemberConfig,
  MemberConfigError,
  resetHealthStores,
  type SharedHealth,
  type SwitchEvent,
} from '../../src/index.js';
import type { LocalCluster } from '../../src/testing/index.js';
import { useOwnCluster } from '../support/own-cluster.js';

/**
 * Health from the availability API (the gateway's emulation of Redis Software's) and from
 * REST PING, against real members. This suite owns its cluster: it injects faults.
 */
let cluster: LocalCluster;
useOwnCluster(
  (c) => {
    cluster = c;
  },
  { heal: true },
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(extra: Partial<FailoverOptions> = {}, members: MemberConfig[] = cluster.members) {
  const switches: SwitchEvent[] = [];
  const failures: FailureEvent[] = [];
  const redis = createFailoverRedis({
    members,
    timeoutMs: 500,
    gracePeriodMs: 800,
    ...extra,
    health: { intervalMs: 100, probeTimeoutMs: 400, jitter: 0, ...extra.health },
    on: { switch: (e) => switches.push(e), failure: (e) => failures.push(e), ...extra.on },
  });
  return { redis, switches, failures };
}

/** Sends reads until `done()` or the time limit; returns how many failed. */
async function traffic(
  redis: { get(k: string): Promise<unknown> },
  done: () => boolean,
  ms = 5000,
) {
  let failed = 0;
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) {
    await redis.get('health:key').catch(() => {
      failed += 1;
    });
    await sleep(20);
  }
  return failed;
}

/** A HealthCache kept in memory: what a KV namespace does, minus the network. */
function memoryCache(): HealthCache & { data: Map<string, SharedHealth>; puts: number } {
  const data = new Map<string, SharedHealth>();
  return {
    data,
    puts: 0,
    async get(key) {
      const v = data.get(key);
      return v ? structuredClone(v) : undefined;
    },
    async put(key, value) {
      this.puts += 1;
      data.set(key, structuredClone(value));
    },
  };
}

describe('availability API', () => {
  it('503 no_quorum on the active member: leaves it on the next refresh, no user request fails', async () => {
    const { redis, switches, failures } = client();
    await redis.refreshAll();
    expect(redis.activeMember()).toBe('a');
    await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
    const failed = await traffic(redis, () => redis.activeMember() !== 'a');
    expect(failed).toBe(0);
    expect(failures).toEqual([]);
    expect(switches[0]).toMatchObject({ from: 'a', to: 'b', reason: 'health-check' });
    const a = redis.snapshot().members.find((m) => m.name === 'a')!;
    expect(a.status).toBe('unhealthy');
    expect(a.statusReason).toBe('no_quorum');
  });

  it('a request that succeeds after a check reported its member down does not bring it back', async () => {
    const health: HealthEvent[] = [];
    const { redis, switches } = client({ timeoutMs: 5000, on: { health: (e) => health.push(e) } });
    await redis.refreshAll();
    expect(redis.activeMember()).toBe('a');
    // A read in flight to a (its Redis stopped, so it waits), while a check reports a down.
    await cluster.pause('a');
    const inFlight = redis.get('health:key');
    await sleep(100);
    await cluster.setAvailability('a', { status: 503, errorCode: 'bdb_unavailable' });
    await redis.refreshAll();
    await cluster.resume('a');
    await inFlight; // it answers now: a success on a
    expect(health.filter((e) => e.member === 'a').map((e) => [e.status, e.reason])).toEqual([
      ['healthy', 'available'],
      ['unhealthy', 'bdb_unavailable'],
    ]);
    const a = redis.snapshot().members.find((m) => m.name === 'a')!;
    expect([a.status, a.statusReason]).toEqual(['unhealthy', 'bdb_unavailable']);
    await redis.get('health:key');
    expect(redis.activeMember()).toBe('b');
    expect(switches.map((e) => [e.from, e.to, e.reason])).toEqual([['a', 'b', 'health-check']]);
  });

  it('lag above tolerance blocks failback; back under tolerance for a grace period, fails back', async () => {
    const { redis, switches } = client();
    await redis.refreshAll();
    await cluster.setAvailability('a', { status: 503, errorCode: 'bdb_unavailable' });
    await traffic(redis, () => redis.activeMember() === 'b');
    expect(redis.activeMember()).toBe('b');
    // a is available again but lags 6 s behind (tolerance 5 s): no failback.
    await cluster.setLag('a', 6000);
    await cluster.setAvailability('a', null);
    await traffic(redis, () => false, 2000);
    expect(redis.activeMember()).toBe('b');
    const a = redis.snapshot().members.find((m) => m.name === 'a')!;
    expect(a).toMatchObject({ status: 'healthy', lagging: true });
    // In sync again: after a whole grace period healthy, traffic goes back.
    await cluster.setLag('a', 0);
    await traffic(redis, () => redis.activeMember() === 'a');
    expect(redis.activeMember()).toBe('a');
    expect(switches.map((s) => s.reason)).toEqual(['health-check', 'failback']);
  });

  it('a health source that flaps between two members: one switch, then the third member, not back (grace period)', async () => {
    const { redis, switches } = client();
    const down = { status: 503, errorCode: 'bdb_unavailable' };
    await redis.refreshAll();
    await cluster.setAvailability('a', down);
    expect((await redis.refreshAll()).active).toBe('b');
    await cluster.setAvailability('a', null);
    await cluster.setAvailability('b', down);
    // a answers again, but was left for failing a moment ago: Jedis goes to c, so do we.
    expect((await redis.refreshAll()).active).toBe('c');
    const scoped = redis.scope();
    await scoped.set('health:flap', '1');
    expect(scoped.servedBy).toBe('c');
    await cluster.setAvailability('a', down);
    await cluster.setAvailability('b', null);
    expect((await redis.refreshAll()).active).toBe('c');
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['a', 'b', 'health-check'],
      ['b', 'c', 'health-check'],
    ]);
    // Nothing permanent: a back for a whole grace period (800 ms), after it, fails back.
    await cluster.setAvailability('a', null);
    await redis.refreshAll();
    await sleep(900);
    expect((await redis.refreshAll()).active).toBe('a');
  });

  it('a change of lag alone is a health event, with the lag in it', async () => {
    const { redis } = client();
    const events: HealthEvent[] = [];
    redis.on('health', (e) => events.push(e));
    await redis.refreshAll();
    events.length = 0;
    await cluster.setLag('a', 6000);
    await redis.refreshAll();
    expect(events).toEqual([
      expect.objectContaining({
        member: 'a',
        status: 'healthy',
        previous: 'healthy',
        lagging: true,
      }),
    ]);
    // The lagging active member is kept (a failover target, not a failback one).
    expect(redis.activeMember()).toBe('a');
    await redis.refreshAll();
    expect(events.length).toBe(1);
    await cluster.setLag('a', 0);
    await redis.refreshAll();
    expect(events[1]).toMatchObject({ member: 'a', status: 'healthy', lagging: false });
    expect(events.length).toBe(2);
  });

  it('local: true asks the node-local endpoint API and keeps its error_code', async () => {
    const members = cluster.members.map((m) => ({
      ...m,
      availability: { ...m.availability, local: true },
    }));
    const urls: string[] = [];
    const recording: typeof fetch = (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    const { redis } = client({ fetch: recording }, members);
    expect((await redis.refreshAll()).members.every((m) => m.statusReason === 'available')).toBe(
      true,
    );
    const asked = urls.filter((u) => u.includes('/availability'));
    expect(asked.length).toBe(3);
    expect(asked.every((u) => u.includes('/v1/local/bdbs/1/endpoint/availability?'))).toBe(true);
    await cluster.setAvailability('a', { status: 503, errorCode: 'bdb_endpoint_unavailable' });
    const snap = await redis.refreshAll();
    expect(snap.members.find((m) => m.name === 'a')).toMatchObject({
      status: 'unhealthy',
      statusReason: 'bdb_endpoint_unavailable',
    });
    expect(snap.active).toBe('b');
  });

  it('discovers the database uid by host when none is configured', async () => {
    const members = cluster.members.map(({ availability: { bdbUid: _, ...rest }, ...m }) => ({
      ...m,
      availability: rest,
    }));
    const { redis } = client({}, members);
    const snap = await redis.refreshAll();
    expect(
      snap.members.every((m) => m.status === 'healthy' && m.statusReason === 'available'),
    ).toBe(true);
  });

  it('401 from the availability API is a config problem, not an unhealthy member', async () => {
    const password = 'wrong-password-shh';
    const members = cluster.members.map((m) => ({
      ...m,
      availability: { ...m.availability, password },
    }));
    const { redis } = client({}, members);
    const snap = await redis.refreshAll();
    const a = snap.members.find((m) => m.name === 'a')!;
    expect(a.status).toBe('healthy'); // PING answered for it
    expect(a.configProblem).toMatch(/answered 401/);
    expect(JSON.stringify(snap)).not.toContain(password);
    expect(redis.activeMember()).toBe('a');
  });

  it('unreachable availability API: by default PING decides, optionally the member is down', async () => {
    const members = cluster.members.map((m) =>
      m.name === 'a' ? { ...m, availability: { ...m.availability, url: 'http://127.0.0.1:9' } } : m,
    );
    const lenient = client({}, members);
    const snap = await lenient.redis.refreshAll();
    expect(snap.members.find((m) => m.name === 'a')!.status).toBe('healthy');
    expect(lenient.redis.activeMember()).toBe('a');

    resetHealthStores();
    const strict = client({ health: { onSourceUnreachable: 'unhealthy' } }, members);
    await strict.redis.refreshAll();
    expect(strict.redis.activeMember()).toBe('b');
    expect(strict.switches).toEqual([]); // chosen before any traffic: not a switch
  });

  it('an availability API that sends headers and then stalls is cut at probeTimeoutMs', async () => {
    // A real server that answers 200 with a JSON content type and never sends the body.
    const stalled = new Set<ServerResponse>();
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      stalled.add(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const members = cluster.members.map((m) =>
        m.name === 'a'
          ? { ...m, availability: { ...m.availability, url: `http://127.0.0.1:${port}` } }
          : m,
      );
      const { redis } = client({ health: { probeTimeoutMs: 300 } }, members);
      const started = performance.now();
      const snap = await redis.refreshAll();
      expect(performance.now() - started).toBeLessThan(300 + 700);
      expect(stalled.size).toBeGreaterThan(0);
      // The health source could not be read in time: PING decides (the default), and a is fine.
      const a = snap.members.find((m) => m.name === 'a')!;
      expect(a.status).toBe('healthy');
      expect(redis.activeMember()).toBe('a');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a probe that times out counts as a failed probe', async () => {
    const { redis } = client({ health: { probe: 'ping', probeTimeoutMs: 150 } });
    await redis.refreshAll();
    await cluster.pause('a');
    const started = performance.now();
    const snap = await redis.refreshAll();
    expect(performance.now() - started).toBeLessThan(150 + 700);
    expect(snap.members.find((m) => m.name === 'a')!.status).toBe('unhealthy');
    expect(redis.activeMember()).toBe('b');
  });
});

/**
 * A real HTTP server standing in for a cluster API with answers the emulation does not give;
 * `answer` may destroy the socket to drop the connection.
 */
async function scriptedApi(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The cluster's members, with a's availability API at `url` (and no uid unless given). */
function withApi(url: string, bdbUid?: number): MemberConfig[] {
  return cluster.members.map((m) => {
    if (m.name !== 'a') return m;
    const { bdbUid: _, ...availability } = m.availability;
    return { ...m, availability: { ...availability, url, ...(bdbUid ? { bdbUid } : {}) } };
  });
}

describe('availability API answers the emulation does not give', () => {
  it('a 503 from database discovery means unavailable, not a config problem', async () => {
    const api = await scriptedApi((_req, res) => json(res, 503, { error_code: 'no_quorum' }));
    try {
      const { redis } = client({}, withApi(api.url));
      const snap = await redis.refreshAll();
      const a = snap.members.find((m) => m.name === 'a')!;
      expect(a).toMatchObject({ status: 'unhealthy', statusReason: 'no_quorum' });
      expect(a.configProblem).toBeUndefined();
    } finally {
      await api.close();
    }
  });

  it('lag check 503 and the plain check lost: lagging, neither in sync (no failback target) nor down', async () => {
    const api = await scriptedApi((req, res) => {
      if (req.url?.includes('extend_check=lag')) json(res, 503, { error_code: 'bdb_lag' });
      else req.socket.destroy();
    });
    try {
      const { redis } = client({}, withApi(api.url, 1));
      const a = (await redis.refreshAll()).members.find((m) => m.name === 'a')!;
      expect(a).toMatchObject({ status: 'healthy', lagging: true });
      expect(a.statusReason).toMatch(/^bdb_lag/);
      expect(a.healthySince).toBeUndefined();
      expect(redis.activeMember()).toBe('a'); // one lost request does not move traffic
    } finally {
      await api.close();
    }
  });

  it("policy 'any': an unreachable blip is one failed probe, not the verdict", async () => {
    let calls = 0;
    const api = await scriptedApi((req, res) => {
      calls += 1;
      if (calls === 1) req.socket.destroy();
      else json(res, 200, {});
    });
    try {
      const { redis } = client(
        {
          health: { probes: 3, probeDelayMs: 0, policy: 'any', onSourceUnreachable: 'unhealthy' },
        },
        withApi(api.url, 1),
      );
      const a = (await redis.refreshAll()).members.find((m) => m.name === 'a')!;
      expect(a).toMatchObject({ status: 'healthy', statusReason: 'available' });
      expect(calls).toBe(2);
    } finally {
      await api.close();
    }
  });

  it('a redirect to another node: credentials stay behind, and the config problem says why', async () => {
    const seen: Array<string | undefined> = [];
    const master = await scriptedApi((req, res) => {
      seen.push(req.headers.authorization);
      json(res, req.headers.authorization ? 200 : 401, { error_code: 'unauthorized' });
    });
    const secondary = await scriptedApi((req, res) => {
      res.writeHead(307, { location: `${master.url}${req.url}` });
      res.end();
    });
    try {
      const { redis } = client({}, withApi(secondary.url, 1));
      const a = (await redis.refreshAll()).members.find((m) => m.name === 'a')!;
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((h) => h === undefined)).toBe(true);
      expect(a.configProblem).toMatch(/answered 401 .*after a redirect to another node/);
      expect(a.status).toBe('healthy'); // PING decides meanwhile
    } finally {
      await Promise.all([master.close(), secondary.close()]);
    }
  });
});

describe('a wrong token', () => {
  // Upstash-style members: no availability API, so PING (with the member's token) checks them.
  const pingOnly = () => cluster.members.map(({ availability: _, ...m }) => m);

  it('stays a config error after a refresh: never a silent failover', async () => {
    const members = pingOnly().map((m) => (m.name === 'a' ? { ...m, token: 'wrong-token' } : m));
    const { redis } = client({}, members);
    await expect(redis.get('k')).rejects.toBeInstanceOf(MemberConfigError);
    const snap = await redis.refreshAll();
    const a = snap.members.find((m) => m.name === 'a')!;
    expect(a.configProblem).toMatch(/rejected the token/);
    expect(a.status).not.toBe('unhealthy');
    expect(redis.activeMember()).toBe('a');
    await expect(redis.get('k')).rejects.toBeInstanceOf(MemberConfigError);
  });

  it('in one client does not take the member away from a client with the right one', async () => {
    const good = client({}, pingOnly());
    await good.redis.refreshAll();
    const stale = pingOnly().map((m) => (m.name === 'a' ? { ...m, token: 'rotated-out' } : m));
    const bad = client({}, stale);
    await bad.redis.refreshAll(); // the same store: the fingerprint has no tokens
    expect(good.redis.activeMember()).toBe('a');
    await good.redis.set('health:token', 'v');
    expect(good.switches).toEqual([]);
  });
});

describe('probe policies', () => {
  /** A custom probe answering from a script, per member. */
  function scripted(answers: Record<string, boolean[]>) {
    const calls: Record<string, number> = {};
    const probe = async (member: { name: string }) => {
      const i = calls[member.name] ?? 0;
      calls[member.name] = i + 1;
      return answers[member.name]?.[i] ?? true;
    };
    return { probe, calls };
  }

  for (const [policy, expected, callsA] of [
    ['all', 'unhealthy', 2],
    ['majority', 'healthy', 3],
    ['any', 'healthy', 1],
  ] as const) {
    it(`${policy}: pass, fail, pass is ${expected}`, async () => {
      const { probe, calls } = scripted({ a: [true, false, true] });
      const { redis } = client({ health: { probe, probes: 3, probeDelayMs: 0, policy } });
      const snap = await redis.refreshAll();
      expect(snap.members.find((m) => m.name === 'a')!.status).toBe(expected);
      // It stops as soon as the verdict is certain.
      expect(calls.a).toBe(callsA);
    });
  }

  it('majority: fail, fail is decided after two probes', async () => {
    const { probe, calls } = scripted({ b: [false, false, true] });
    const { redis } = client({ health: { probe, probes: 3, probeDelayMs: 0, policy: 'majority' } });
    const snap = await redis.refreshAll();
    expect(snap.members.find((m) => m.name === 'b')!.status).toBe('unhealthy');
    expect(calls.b).toBe(2);
  });

  it('a custom probe that hangs is cut at probeTimeoutMs', async () => {
    const probe = (m: { name: string }) =>
      m.name === 'a' ? new Promise<boolean>(() => {}) : Promise.resolve(true);
    const { redis } = client({ health: { probe, probeTimeoutMs: 100 } });
    const started = performance.now();
    const snap = await redis.refreshAll();
    expect(performance.now() - started).toBeLessThan(900);
    expect(snap.members.find((m) => m.name === 'a')!.statusReason).toMatch(/timed out/);
  });
});

describe('refresh on traffic', () => {
  it('concurrent requests start at most one refresh per interval', async () => {
    const { redis } = client({ health: { intervalMs: 60_000 } });
    await Promise.all(Array.from({ length: 20 }, () => redis.get('x')));
    await sleep(300);
    await Promise.all(Array.from({ length: 20 }, () => redis.get('x')));
    const snap = redis.snapshot();
    expect(snap.stats.refreshes).toBe(1);
    for (const m of cluster.members) expect(snap.stats.probes[m.name]).toBe(1);
  });

  it('a refresh presumed lost that ends late does not clear the marker of the one after it', async () => {
    // Probes that end only when released, and a clock that jumps past staleRefreshMs.
    const gates: Array<() => void> = [];
    const probe = () => new Promise<boolean>((resolve) => gates.push(() => resolve(true)));
    let clock = 1_000_000;
    const { redis } = client({
      health: { probe, probeTimeoutMs: 10_000, intervalMs: 1000 },
      now: () => clock,
    });
    await redis.get('x'); // refresh 1 starts: one probe per member, all waiting
    expect(gates).toHaveLength(3);
    clock += 200_000; // past staleRefreshMs: refresh 1 is presumed lost
    await redis.get('x'); // refresh 2 starts
    expect(gates).toHaveLength(6);
    for (const release of gates.slice(0, 3)) release(); // refresh 1 ends after all
    await sleep(20);
    clock += 5000; // stale again, but refresh 2 is still running
    await redis.get('x');
    expect(gates).toHaveLength(6);
    expect(redis.snapshot().stats.refreshes).toBe(2);
    for (const release of gates) release();
  });

  it('an async listener that rejects does not become an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { redis } = client({ health: { enabled: false } });
      redis.on('switch', async () => {
        throw new Error('webhook down');
      });
      await redis.refreshAll();
      await cluster.kill('a');
      for (let i = 0; i < 4; i++) await redis.get('x'); // a's circuit opens: a switch event
      await sleep(50);
      expect(redis.snapshot().switches.length).toBeGreaterThan(0);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a request never waits for a refresh it did not start (warm isolate)', async () => {
    const { redis } = client({ health: { intervalMs: 50, probeTimeoutMs: 2000, probe: 'ping' } });
    await redis.refreshAll();
    await sleep(100);
    await cluster.pause('c'); // c's probe will hang for its whole timeout
    await redis.get('x'); // starts a refresh that hangs on c
    const started = performance.now();
    for (let i = 0; i < 5; i++) await redis.get('x');
    expect(performance.now() - started).toBeLessThan(1200); // the hung refresh takes 2 s
  });

  it('initialization: a cold isolate waits, boundedly, for a first verdict', async () => {
    await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
    const { redis } = client({ health: { initialization: { policy: 'all', timeoutMs: 2000 } } });
    // Without the wait the first request would go to the unknown, heaviest member a.
    const scoped = redis.scope();
    await scoped.get('x');
    expect(scoped.pinnedMember).toBe('b');
  });

  it("initialization never spends the call's deadline, nor outlasts the caller's abort", async () => {
    // b hangs, so the 'all' policy cannot be met before its 2 s limit.
    await cluster.pause('b');
    const { redis } = client({ health: { initialization: { policy: 'all', timeoutMs: 2000 } } });
    let started = performance.now();
    const scoped = redis.scope({ deadlineMs: 400 });
    expect(await scoped.get('x')).toBeNull(); // a tried, and it answered
    expect(performance.now() - started).toBeLessThan(400 + 300);
    expect(scoped.servedBy).toBe('a');

    resetHealthStores();
    const cold = client({ health: { initialization: { policy: 'all', timeoutMs: 2000 } } });
    const caller = new AbortController();
    started = performance.now();
    const read = cold.redis.scope({ signal: caller.signal }).get('x');
    setTimeout(() => caller.abort(new Error('client went away')), 100);
    await expect(read).rejects.toThrow('client went away');
    expect(performance.now() - started).toBeLessThan(100 + 300);

    // aborted before the call: no wait at all
    resetHealthStores();
    const colder = client({ health: { initialization: { policy: 'all', timeoutMs: 2000 } } });
    started = performance.now();
    const gone = AbortSignal.abort(new Error('gone before it started'));
    await expect(colder.redis.scope({ signal: gone }).get('x')).rejects.toThrow('gone before');
    expect(performance.now() - started).toBeLessThan(300);
  });
});

describe('shared health between isolates', () => {
  it('refreshAll publishes; a fresh isolate serves its first request from it without probing', async () => {
    const cache = memoryCache();
    await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
    const cron = client({ health: { cache } });
    const published = await cron.redis.refreshAll();
    expect(published.active).toBe('b');
    expect(cache.puts).toBe(1);

    resetHealthStores(); // a new isolate
    const { redis } = client({ health: { cache } });
    const scoped = redis.scope();
    await scoped.get('x');
    expect(scoped.pinnedMember).toBe('b');
    const snap = redis.snapshot();
    expect(snap.stats.probes).toEqual({});
    expect(snap.stats.sharedHits).toBe(1);
    expect(snap.members.find((m) => m.name === 'a')!.status).toBe('unhealthy');
  });

  it('isolates follow the published active member while nothing fails', async () => {
    const cache = memoryCache();
    const cron = client({ health: { cache } });
    cron.redis.setActiveMember('c');
    await cron.redis.refreshAll();
    expect(cron.redis.snapshot().active).toBe('c');
    // 5 fresh isolates, 10 requests each: all on the published member.
    const served: string[] = [];
    for (let i = 0; i < 5; i++) {
      resetHealthStores();
      const { redis } = client({ health: { cache } });
      for (let j = 0; j < 10; j++) {
        const scoped = redis.scope();
        await scoped.get('x');
        served.push(scoped.pinnedMember!);
      }
    }
    expect(served.filter((m) => m !== 'c')).toEqual([]);
  });

  it('a fresh local failure beats an older shared "healthy"', async () => {
    const cache = memoryCache();
    const cron = client({ health: { cache } });
    await cron.redis.refreshAll(); // everyone healthy, a active
    resetHealthStores();
    const { redis } = client({ health: { cache, intervalMs: 60_000 } });
    await redis.get('x');
    await cluster.kill('a');
    for (let i = 0; i < 3; i++) await redis.get('x'); // trips a's circuit locally
    expect(redis.activeMember()).toBe('b');
    // The (now stale) shared record still says a is healthy and active; merging it again
    // must not send traffic back to a.
    const second = client({ health: { cache, intervalMs: 1 } });
    await sleep(5);
    await second.redis.get('x');
    await sleep(50);
    expect(second.redis.activeMember()).toBe('b');
  });

  it('an isolate re-checks what it saw fail even while the shared record is fresh', async () => {
    const cache = memoryCache();
    await client({ health: { cache } }).redis.refreshAll(); // all healthy, a active
    resetHealthStores();
    const { redis } = client({ health: { cache, intervalMs: 100 } });
    await redis.get('x');
    await cluster.kill('a');
    for (let i = 0; i < 3; i++) await redis.get('x');
    expect(redis.activeMember()).toBe('b');
    await cluster.restart('a');
    // No new cron run: the isolate's own check of a must bring it back.
    await traffic(redis, () => redis.activeMember() === 'a', 6000);
    expect(redis.activeMember()).toBe('a');
  });

  it('a record of another member list (or with no key) is no record: the isolate probes', async () => {
    const cache = memoryCache();
    const { redis } = client({ health: { cache } });
    const published = await redis.refreshAll();
    const [stored] = [...cache.data.values()];
    for (const key of ['someone-else', undefined]) {
      resetHealthStores();
      cache.data.set([...cache.data.keys()][0]!, {
        ...stored!,
        key: key as string,
        at: Date.now(),
      });
      const fresh = client({ health: { cache } });
      await fresh.redis.get('x');
      await sleep(600); // the background refresh it started
      const snap = fresh.redis.snapshot();
      expect(snap.stats.sharedHits).toBe(0);
      expect(Object.values(snap.stats.probes).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    }
    expect(published.active).toBe('a');
  });

  it('a cron run in a fresh isolate keeps the grace rules of the runs before it', async () => {
    const cache = memoryCache();
    /** Each cron invocation in an isolate of its own: nothing but the shared record carries over. */
    const freshCron = async () => {
      resetHealthStores();
      const { redis, switches } = client({ health: { cache } });
      const snap = await redis.refreshAll();
      return { active: snap.active, switches };
    };
    expect((await freshCron()).active).toBe('a');
    await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
    expect((await freshCron()).active).toBe('b');
    await cluster.setAvailability('a', null);
    // a is back, but not for a whole grace period (800 ms): the fleet stays on b.
    const stay = await freshCron();
    expect(stay.active).toBe('b');
    expect(cache.data.values().next().value?.active).toBe('b');
    await sleep(900);
    const back = await freshCron();
    expect(back.active).toBe('a');
    expect(back.switches).toEqual([
      expect.objectContaining({ from: 'b', to: 'a', reason: 'failback' }),
    ]);
  });

  it('cron runs in fresh isolates, and isolates deciding alone, keep the grace period of a member the cron left for failing', async () => {
    const cache = memoryCache();
    const options = { gracePeriodMs: 60_000, health: { cache } };
    const freshCron = async () => {
      resetHealthStores();
      return (await client(options).redis.refreshAll()).active;
    };
    const down = { status: 503, errorCode: 'bdb_unavailable' };
    expect(await freshCron()).toBe('a');
    await cluster.setAvailability('a', down);
    expect(await freshCron()).toBe('b');
    await cluster.setAvailability('a', null);
    // a is up again: published healthy, in its grace period, and the fleet stays on b.
    expect(await freshCron()).toBe('b');
    const record = cache.data.values().next().value!;
    expect(record.members.a).toMatchObject({ status: 'healthy' });
    expect(record.members.a!.graceUntil).toBeGreaterThan(Date.now());
    // A serving isolate whose published member fails here decides alone: c, not a.
    resetHealthStores();
    const isolate = client(options);
    await isolate.redis.get('x');
    expect(isolate.redis.activeMember()).toBe('b');
    await cluster.kill('b');
    await traffic(isolate.redis, () => isolate.redis.activeMember() !== 'b', 3000);
    expect(isolate.switches).toEqual([expect.objectContaining({ from: 'b', to: 'c' })]);
    await cluster.restart('b');
    // The health source now says a is up and b is down: only the record tells this cron run
    // that a was left a moment ago, so the fleet goes to c, not back to a.
    await cluster.setAvailability('b', down);
    expect(await freshCron()).toBe('c');
  });

  /** A serving isolate following a record that names `a`, on `a` after its first request. */
  async function isolateFollowingA() {
    const cache = memoryCache();
    expect((await client({ health: { cache } }).redis.refreshAll()).active).toBe('a');
    resetHealthStores(); // a serving isolate: its health comes from the record
    const isolate = client({ health: { cache } });
    await isolate.redis.get('x');
    expect(isolate.redis.activeMember()).toBe('a');
    expect(isolate.redis.snapshot().stats.sharedHits).toBe(1);
    /** A newer cron run, in another isolate, choosing `active` (`a` again by default). */
    const republish = (active = 'a') => {
      const [key, record] = [...cache.data][0]!;
      cache.data.set(key, { ...record, active, at: Date.now() });
      return Date.now();
    };
    return { ...isolate, republish };
  }

  /** Reads for `ms`, each in a scope of its own; returns the member that served each. */
  async function servedFor(
    redis: { scope(): { get(k: string): Promise<unknown>; servedBy?: string } },
    ms: number,
  ) {
    const served: string[] = [];
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const scoped = redis.scope();
      await scoped.get('x');
      served.push(scoped.servedBy!);
      await sleep(20);
    }
    return served;
  }

  it('setActiveMember in an isolate holds over the shared record for a grace period, then the record leads', async () => {
    const { redis, switches, republish } = await isolateFollowingA();
    const setAt = Date.now();
    redis.setActiveMember('b');
    // The isolate re-reads the record every 100 ms, and a newer one comes meanwhile: the switch
    // made here is kept (it used to last one command, then "fail back" to the record's a).
    const early = await servedFor(redis, 150);
    const newerAt = republish();
    const late = await servedFor(redis, 250);
    expect(Date.now() - setAt).toBeLessThan(800); // still within the grace period
    expect([...new Set([...early, ...late])]).toEqual(['b']);
    expect(redis.snapshot().sharedAt).toBeGreaterThanOrEqual(newerAt); // it was merged
    expect(redis.activeMember()).toBe('b');
    // Once the grace period (800 ms) is over, the published choice leads again.
    await traffic(redis, () => redis.activeMember() === 'a', 3000);
    expect(redis.activeMember()).toBe('a');
    expect(Date.now() - setAt).toBeGreaterThanOrEqual(800);
    expect(switches.map((e) => [e.from, e.to, e.reason])).toEqual([
      ['a', 'b', 'forced'],
      ['b', 'a', 'failback'],
    ]);
  });

  it("a member set by hand that fails hands over to the record's choice at once", async () => {
    const { redis, switches, republish } = await isolateFollowingA();
    republish('b'); // the fleet was moved to b
    await traffic(redis, () => redis.activeMember() === 'b', 2000); // this isolate follows
    expect(redis.activeMember()).toBe('b');
    redis.setActiveMember('c');
    await cluster.kill('c');
    for (let i = 0; i < 3; i++) await redis.get('x'); // c's circuit opens
    // Straight to b, the record's choice: not to the best-ranked member (a) first, and from
    // there to the record's one with a second switch. Whichever finds c dead first says why:
    // its circuit, or a health check (one is due every 100 ms, and a loaded machine may take
    // that long between the kill and the reads).
    expect(redis.activeMember()).toBe('b');
    expect(switches.map((e) => [e.from, e.to, e.reason])).toEqual([
      ['a', 'b', 'health-check'],
      ['b', 'c', 'forced'],
      ['c', 'b', expect.stringMatching(/^(circuit|health-check)$/)],
    ]);
  });

  it('forceActiveMember holds over the shared record for its whole duration, then the record leads', async () => {
    const { redis, switches, republish } = await isolateFollowingA();
    const forcedAt = Date.now();
    redis.forceActiveMember('c', 800);
    const early = await servedFor(redis, 200);
    republish();
    const late = await servedFor(redis, 200);
    expect(Date.now() - forcedAt).toBeLessThan(800);
    expect([...new Set([...early, ...late])]).toEqual(['c']);
    await traffic(redis, () => redis.activeMember() === 'a', 3000);
    expect(redis.activeMember()).toBe('a');
    expect(Date.now() - forcedAt).toBeGreaterThanOrEqual(800);
    expect(switches.map((e) => [e.from, e.to, e.reason])).toEqual([
      ['a', 'c', 'forced'],
      ['c', 'a', 'failback'],
    ]);
  });

  it('the cron decides by the grace rules, not by the record it published before', async () => {
    const cache = memoryCache();
    const cron = client({ health: { cache, intervalMs: 50 } });
    await cron.redis.refreshAll(); // publishes a as active
    await sleep(60);
    await cron.redis.get('x'); // this isolate reads the record (active a) back
    await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
    expect((await cron.redis.refreshAll()).active).toBe('b');
    await cluster.setAvailability('a', null);
    // a answers again, but has not been healthy for a grace period (800 ms): stay on b.
    expect((await cron.redis.refreshAll()).active).toBe('b');
    await sleep(900);
    expect((await cron.redis.refreshAll()).active).toBe('a');
  });
});
