import { Redis } from '@upstash/redis';
import type { Miniflare } from 'miniflare';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoreSnapshot } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { kvOf, sleep, startSample, tempDir, workerOf } from './helpers.js';

/**
 * The sample worker in real workerd (Miniflare), against a local cluster of real
 * redis-servers behind real gateways. This file owns its cluster: it kills members.
 *
 * Every member holds a different value under `who` (the members of the local cluster do not
 * replicate), so a response's body proves which member served it, independently of the
 * `x-redis-member` header.
 */
let cluster: LocalCluster;
/** One workerd process; each variant is its own worker, hence its own isolate. */
let mf: Miniflare;

/** Short timings so failover, grace and failback happen within a test. */
const FAST = {
  REDIS_TIMEOUT_MS: '400',
  REDIS_GRACE_PERIOD_MS: '1000',
  REDIS_HEALTH_INTERVAL_MS: '200',
  REDIS_HEALTH_PROBE_TIMEOUT_MS: '300',
};
const PROXIMITY = { ...FAST, REDIS_PROXIMITY: 'true' };

/** Each test (or step) gets isolates no other test has touched. */
const VARIANTS = {
  failover: FAST,
  pinning: FAST,
  near: PROXIMITY,
  eu: PROXIMITY,
  weights: FAST,
  counter: FAST,
  alone: FAST,
  inputs: FAST,
  unpinned: { ...FAST, SAMPLE_PIN: 'false' },
};
type Variant = keyof typeof VARIANTS;

function plain(name: string): Redis {
  const m = cluster.members.find((x) => x.name === name)!;
  return new Redis({ url: m.url, token: m.token, enableAutoPipelining: false, retry: false });
}

async function seed(...names: string[]): Promise<void> {
  for (const name of names) await plain(name).set('who', name);
}

interface Hit {
  status: number;
  member: string | null;
  body: { value?: unknown; member?: string; [key: string]: unknown };
  at: number;
}

type Init = Parameters<Miniflare['dispatchFetch']>[1];

async function call(on: Miniflare, variant: string, path: string, init?: Init): Promise<Hit> {
  const res = await on.dispatchFetch(`http://${variant}.test${path}`, init);
  return {
    status: res.status,
    member: res.headers.get('x-redis-member'),
    body: (await res.json()) as Hit['body'],
    at: Date.now(),
  };
}

async function status(on: Miniflare, variant: string): Promise<StoreSnapshot> {
  const res = await on.dispatchFetch(`http://${variant}.test/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as StoreSnapshot;
}

/** `concurrency` loops of `GET /kv/who` until `stop()` says so. */
async function traffic(variant: Variant, stop: (hits: Hit[]) => boolean, concurrency = 3) {
  const hits: Hit[] = [];
  const loop = async () => {
    while (!stop(hits)) hits.push(await call(mf, variant, '/kv/who'));
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return hits;
}

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 3 });
  await seed('a', 'b', 'c');
  mf = await startSample({ members: cluster.members, variants: VARIANTS });
});

afterAll(async () => {
  await mf?.dispose();
  await cluster?.stop();
});

describe('kill -9 of the active member, then failback (one isolate)', () => {
  it('steady traffic loses no GET, switches to b, and /status shows the switch', async () => {
    const before = await traffic('failover', (hits) => hits.length >= 15);
    expect(before.every((h) => h.status === 200 && h.member === 'a' && h.body.value === 'a')).toBe(
      true,
    );

    const started = Date.now();
    let killedAt = Number.POSITIVE_INFINITY;
    const killing = sleep(300).then(async () => {
      await cluster.kill('a');
      killedAt = Date.now();
    });
    const during = await traffic('failover', () => Date.now() - started > 1800);
    await killing;

    expect(during.filter((h) => h.status !== 200)).toEqual([]);
    // The header and the data agree on every response.
    for (const h of during) expect(h.body.value).toBe(h.member);
    const after = during.filter((h) => h.at > killedAt + 200);
    expect(after.length).toBeGreaterThan(10);
    expect(after.every((h) => h.member === 'b')).toBe(true);

    const snap = await status(mf, 'failover');
    expect(snap.active).toBe('b');
    expect(snap.switches).toContainEqual(
      expect.objectContaining({ from: 'a', to: 'b', reason: expect.any(String) }),
    );
    const a = snap.members.find((m) => m.name === 'a')!;
    expect(a.circuit === 'open' || a.status === 'unhealthy').toBe(true);
    // No secrets in the status JSON.
    const text = JSON.stringify(snap);
    for (const m of cluster.members) {
      expect(text).not.toContain(m.token);
      expect(text).not.toContain(m.availability.password);
    }
  });

  it('after the grace period traffic fails back to a, while a pinned request stays on b', async () => {
    await cluster.restart('a');
    await seed('a');
    const restoredAt = Date.now();
    // One long request: 16 GETs, 250 ms apart. It starts on b and is pinned there.
    const trace = call(mf, 'failover', '/trace/who?count=16&pauseMs=250');
    const hits = await traffic(
      'failover',
      (h) => h.some((x) => x.member === 'a' && x.at > restoredAt) || Date.now() - restoredAt > 8000,
      2,
    );
    const traced = await trace;

    expect(hits.filter((h) => h.status !== 200)).toEqual([]);
    const last = hits.at(-1)!;
    expect(last.member).toBe('a');
    expect(last.body.value).toBe('a');

    const snap = await status(mf, 'failover');
    const failback = snap.switches.find((s) => s.from === 'b' && s.to === 'a');
    expect(failback?.reason).toBe('failback');
    // Not before the member had been healthy for the grace period (1 s).
    expect(failback!.at - restoredAt).toBeGreaterThanOrEqual(1000);

    // Pinning: every command of the long request went to b, although the worker failed back
    // to a while it ran.
    expect(traced.status).toBe(200);
    const steps = traced.body.steps as Array<{ value: string; member: string; at: number }>;
    expect(steps).toHaveLength(16);
    expect(steps.every((s) => s.member === 'b' && s.value === 'b')).toBe(true);
    expect(failback!.at).toBeGreaterThan(steps[0]!.at);
    expect(failback!.at).toBeLessThan(steps.at(-1)!.at);
  });
});

describe('per-request pinning', () => {
  afterEach(async () => {
    await cluster.restart('a').catch(() => {});
    await seed('a');
  });

  it('a member failing mid-request moves the request once, and nothing fails', async () => {
    const trace = call(mf, 'pinning', '/trace/who?count=10&pauseMs=150');
    await sleep(600);
    await cluster.kill('a');
    const traced = await trace;

    expect(traced.status).toBe(200);
    const steps = traced.body.steps as Array<{ value: string; member: string }>;
    const members = steps.map((s) => s.member);
    for (const s of steps) expect(s.value).toBe(s.member);
    expect(members[0]).toBe('a');
    expect(members.at(-1)).toBe('b');
    // a, a, ..., b, b: one move, never back.
    const moves = members.filter((m, i) => i > 0 && m !== members[i - 1]);
    expect(moves).toEqual(['b']);
    expect(traced.member).toBe('b');
  });
});

describe('proximity', () => {
  // Ashburn, Virginia: member b's location in the sample config (a: Frankfurt, c: Singapore).
  const virginia = { cf: { latitude: '39.04', longitude: '-77.49', colo: 'IAD' } };

  it('with proximity on, a request from near member b is served by b', async () => {
    const near = await call(mf, 'near', '/kv/who', virginia);
    expect(near.status).toBe(200);
    expect(near.member).toBe('b');
    expect(near.body.value).toBe('b');

    // The same request with proximity off: weight decides (a).
    expect((await call(mf, 'weights', '/kv/who', virginia)).member).toBe('a');
    // Proximity on, from Frankfurt: a.
    const frankfurt = { cf: { latitude: '50.03', longitude: '8.56', colo: 'FRA' } };
    expect((await call(mf, 'eu', '/kv/who', frankfurt)).member).toBe('a');
  });
});

describe('non-idempotent writes', () => {
  it('INCR whose outcome is unknown answers 409 and is not retried on another member', async () => {
    const name = `visits-${Date.now()}`;
    expect((await call(mf, 'counter', `/counter/${name}`, { method: 'POST' })).body.value).toBe(1);
    expect((await call(mf, 'counter', `/counter/${name}`, { method: 'POST' })).body).toMatchObject({
      value: 2,
      member: 'a',
    });

    // SIGSTOP: the gateway forwards INCR to redis-server, which does not answer.
    await cluster.pause('a');
    let ambiguous: Hit;
    try {
      ambiguous = await call(mf, 'counter', `/counter/${name}`, { method: 'POST' });
    } finally {
      await cluster.resume('a');
    }
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body).toMatchObject({
      error: 'ambiguous-write',
      member: 'a',
      command: 'incr',
      retried: false,
    });
    expect(String(ambiguous.body.message)).toMatch(/not retried/);
    // It was not sent to b (nor c): their counters do not exist.
    expect(await plain('b').get(`counter:${name}`)).toBeNull();
    expect(await plain('c').get(`counter:${name}`)).toBeNull();
    // a ran it once, after SIGCONT.
    await sleep(100);
    expect(await plain('a').get(`counter:${name}`)).toBe(3);
  });
});

describe('scheduled refresh and shared health', () => {
  it('the cron publishes health to KV, and a fresh isolate follows it', async () => {
    const dir = tempDir('ref-kv-');
    const started: Miniflare[] = [];
    const one = async () => {
      const instance = await startSample({
        members: cluster.members,
        variants: { sample: FAST },
        kvPersist: dir.path,
      });
      started.push(instance);
      return instance;
    };
    try {
      // a's data path works, but its availability API says it is down.
      await cluster.setAvailability('a', { status: 503, errorCode: 'bdb_unavailable' });

      const cron = await one();
      const result = await (await workerOf(cron, 'sample')).scheduled({ cron: '* * * * *' });
      expect(result.outcome).toBe('ok');
      const kv = await kvOf(cron, 'HEALTH', 'sample');
      const { keys } = await kv.list();
      expect(keys).toHaveLength(1);
      const record = (await kv.get(keys[0]!.name, 'json')) as {
        active: string;
        members: Record<string, { status: string }>;
      };
      expect(record.active).toBe('b');
      expect(record.members.a?.status).toBe('unhealthy');
      await cron.dispose();

      // A new Miniflare: a fresh isolate with empty module state, sharing only the KV.
      const fresh = await one();
      const first = await call(fresh, 'sample', '/kv/who');
      expect(first.status).toBe(200);
      expect(first.member).toBe('b');
      expect(first.body.value).toBe('b');
      const snap = (await status(fresh, 'sample')) as StoreSnapshot & {
        stats?: { sharedHits: number };
      };
      expect(snap.stats?.sharedHits).toBeGreaterThanOrEqual(1);
      expect(snap.members.find((m) => m.name === 'a')?.status).toBe('unhealthy');

      // Control: a fresh isolate without the shared record starts on a (its data path works).
      expect((await call(mf, 'alone', '/kv/who')).member).toBe('a');
    } finally {
      await cluster.setAvailability('a', null);
      await Promise.all(started.map((instance) => instance.dispose().catch(() => {})));
      dir.remove();
    }
  });
});

describe('input the sample refuses, and what it answers as it was stored', () => {
  const MiB = 1024 * 1024;

  function expectAllClosed(snap: StoreSnapshot) {
    for (const m of snap.members) {
      expect(m, m.name).toMatchObject({ status: 'healthy', circuit: 'closed' });
    }
  }

  it('a value over 1 MiB is refused with a JSON 413 before any Redis call; no circuit opens', async () => {
    const key = `huge-${Date.now()}`;
    // Three of these used to open every member's circuit (the gateway drops the connection).
    for (let i = 0; i < 3; i++) {
      const res = await mf.dispatchFetch(`http://inputs.test/kv/${key}`, {
        method: 'PUT',
        body: 'x'.repeat(11 * MiB),
      });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: 'payload-too-large' });
    }
    // Without a Content-Length the body is counted as it is read.
    const chunk = new TextEncoder().encode('y'.repeat(256 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 5) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const streamed = await mf.dispatchFetch(`http://inputs.test/kv/${key}`, {
      method: 'PUT',
      body: stream,
      duplex: 'half',
    } as unknown as Init);
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ error: 'payload-too-large' });
    for (const name of ['a', 'b', 'c']) expect(await plain(name).get(key)).toBeNull();

    // The limit itself is allowed.
    const atLimit = await call(mf, 'inputs', `/kv/${key}`, {
      method: 'PUT',
      body: 'z'.repeat(MiB),
    });
    expect(atLimit.status).toBe(200);
    expectAllClosed(await status(mf, 'inputs'));
  });

  it('a bad ttl is a JSON 400 naming ttl, and nothing is stored', async () => {
    const key = `ttl-${Date.now()}`;
    for (const ttl of ['100000000000000000000', '1.5', '-5', 'abc', '0', '', '1e3', '0x10']) {
      const hit = await call(mf, 'inputs', `/kv/${key}?ttl=${encodeURIComponent(ttl)}`, {
        method: 'PUT',
        body: 'v',
      });
      expect(hit.status, `ttl=${ttl}`).toBe(400);
      expect(hit.body).toMatchObject({ error: 'bad-request', field: 'ttl' });
    }
    expect((await call(mf, 'inputs', `/kv/${key}`)).status).toBe(404);

    const ok = await call(mf, 'inputs', `/kv/${key}?ttl=60`, { method: 'PUT', body: 'v' });
    expect(ok.status).toBe(200);
    const ttl = await plain(ok.body.member!).ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    const longest = await call(mf, 'inputs', `/kv/${key}?ttl=${Number.MAX_SAFE_INTEGER}`, {
      method: 'PUT',
      body: 'v',
    });
    expect(longest.status).toBe(200);
    expectAllClosed(await status(mf, 'inputs'));
  });

  it("Redis refusing a command is a JSON 400 with Redis' message, not a 500", async () => {
    const stamp = Date.now();
    // Every member holds the same bad data, whichever serves the request.
    for (const name of ['a', 'b', 'c']) {
      await plain(name).set(`counter:word-${stamp}`, 'abc');
      await plain(name).set(`counter:max-${stamp}`, '9223372036854775807');
      await plain(name).lpush(`counter:list-${stamp}`, 'x');
    }
    const cases = [
      [`word-${stamp}`, /not an integer/],
      [`max-${stamp}`, /overflow/],
      [`list-${stamp}`, /WRONGTYPE/],
    ] as const;
    for (const [name, message] of cases) {
      const hit = await call(mf, 'inputs', `/counter/${name}`, { method: 'POST' });
      expect(hit.status, name).toBe(400);
      expect(hit.body.error).toBe('redis');
      expect(String(hit.body.message)).toMatch(message);
    }
    expectAllClosed(await status(mf, 'inputs'));
  });

  it('GET answers the text stored: "null" is a value, "123" stays a string', async () => {
    const stamp = Date.now();
    for (const text of [
      'null',
      '123',
      '00501',
      '"quoted"',
      '{"a":1}',
      'true',
      '12345678901234567890',
    ]) {
      const key = `raw-${stamp}-${encodeURIComponent(text)}`;
      expect((await call(mf, 'inputs', `/kv/${key}`, { method: 'PUT', body: text })).status).toBe(
        200,
      );
      const hit = await call(mf, 'inputs', `/kv/${key}`);
      expect(hit.status, text).toBe(200);
      expect(hit.body.value, text).toBe(text);
    }
    const missing = await call(mf, 'inputs', `/kv/missing-${stamp}`);
    expect(missing.status).toBe(404);
    expect(missing.body.value).toBeNull();
  });

  it('with pinning off, the header, Server-Timing and the member field still name the member', async () => {
    const res = await mf.dispatchFetch('http://unpinned.test/kv/who');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Hit['body'];
    expect(body.member).toBe(body.value);
    expect(res.headers.get('x-redis-member')).toBe(body.member);
    expect(res.headers.get('server-timing')).toMatch(
      new RegExp(`^redis;dur=[\\d.]+;desc="${body.member}, 1 call"$`),
    );
    const put = await call(mf, 'unpinned', `/kv/unpinned-${Date.now()}`, {
      method: 'PUT',
      body: 'v',
    });
    expect(put.status).toBe(200);
    expect(put.body.member).toEqual(expect.any(String));
    expect(put.member).toBe(put.body.member);
    const trace = await call(mf, 'unpinned', '/trace/who?count=3');
    const steps = trace.body.steps as Array<{ value: string; member: string }>;
    for (const step of steps) expect(step.member).toBe(step.value);
  });
});
