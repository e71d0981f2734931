import { Hono } from 'hono';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { type FailoverVariables, failover, statusHandler } from '../../src/hono/index.js';
import {
  ConfigError,
  type CustomProbe,
  createFailoverRedis,
  FailoverRedis,
  resetHealthStores,
} from '../../src/index.js';
import { clusterOptions, gatedProbe, StrictExecutionContext, sleep, track } from './support.js';

/**
 * The Hono middleware in Node, through `app.request()`: the same code path a Worker runs,
 * minus workerd. Uses the shared cluster (nothing here breaks a member).
 */
const cluster = inject('cluster');

beforeEach(() => {
  // A cold isolate per test: the first command starts a health refresh.
  resetHealthStores();
});

function appWith(options: Parameters<typeof failover>[0]) {
  const app = new Hono<{ Variables: FailoverVariables }>();
  app.use(failover(options));
  app.get('/kv/:key', async (c) => {
    const key = `adapters:hono:${c.req.param('key')}`;
    await c.var.redis.set(key, 'v');
    const value = await c.var.redis.get<string>(key);
    return c.json({ value, member: c.var.redis.pinnedMember });
  });
  app.get('/redirect', async (c) => {
    await c.var.redis.ping();
    return Response.redirect('https://example.com/', 302);
  });
  return app;
}

describe('failover() under app.request()', () => {
  it('works with no execution context, and finishes background work before returning', async () => {
    const probe = gatedProbe();
    const app = appWith({
      ...clusterOptions(cluster.members, probe.probe),
      memberHeader: true,
      serverTiming: true,
    });
    // No env, no ctx: c.executionCtx throws here, the middleware must not.
    const pending = track(Promise.resolve(app.request('/kv/no-ctx')));
    await sleep(300);
    // Nowhere to hand the refresh to: the response waits for it.
    expect(pending.settled).toBe(false);
    probe.release();
    const res = await pending.promise;
    expect(probe.finished()).toBe(3);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ value: 'v', member: 'a' });
    expect(res.headers.get('x-redis-member')).toBe('a');
    expect(res.headers.get('server-timing')).toMatch(/^redis;dur=\d+(\.\d)?;desc="a, 2 calls"$/);
  });

  it('hands background work to executionCtx.waitUntil, called as a method', async () => {
    const probe = gatedProbe();
    const app = appWith(clusterOptions(cluster.members, probe.probe));
    const ctx = new StrictExecutionContext();
    const res = await app.request('/kv/ctx', undefined, {}, ctx as never);
    expect(res.status).toBe(200);
    // The response did not wait for the probes...
    expect(probe.finished()).toBe(0);
    expect(ctx.promises.length).toBeGreaterThan(0);
    // ...they run on in waitUntil.
    probe.release();
    await ctx.settle();
    expect(probe.finished()).toBe(3);
  });

  it("uses Netlify's context.waitUntil (Hono's Netlify adapter puts it in c.env.context)", async () => {
    const probe = gatedProbe();
    const app = appWith(clusterOptions(cluster.members, probe.probe));
    const context = new StrictExecutionContext();
    const res = await app.request('/kv/netlify', undefined, { context });
    expect(res.status).toBe(200);
    expect(probe.finished()).toBe(0);
    probe.release();
    await context.settle();
    expect(probe.finished()).toBe(3);
  });

  it('takes options from a function of the context (members from c.env)', async () => {
    type Bindings = { MEMBERS: string };
    const app = new Hono<{ Bindings: Bindings; Variables: FailoverVariables }>();
    const seen: FailoverRedis[] = [];
    app.use(
      failover<{ Bindings: Bindings }>((c) => ({
        members: JSON.parse(c.env.MEMBERS),
        memberHeader: 'x-served-by',
      })),
    );
    app.get('/', async (c) => {
      seen.push(c.var.redis);
      await c.var.redis.ping();
      return c.text('ok');
    });
    const env = { MEMBERS: JSON.stringify(cluster.members) };
    const first = await app.request('/', undefined, env);
    const second = await app.request('/', undefined, env);
    expect(first.headers.get('x-served-by')).toBe('a');
    expect(second.headers.get('x-served-by')).toBe('a');
    // Every request gets its own scope (its own pin), not a shared client.
    expect(seen[0]).toBeInstanceOf(FailoverRedis);
    expect(seen[0]).not.toBe(seen[1]);
  });

  it('adds the member header to responses with immutable headers', async () => {
    const app = appWith({ members: cluster.members, memberHeader: true });
    const res = await app.request('/redirect');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://example.com/');
    expect(res.headers.get('x-redis-member')).toBe('a');
  });

  it('names the serving member with pinning off (pin: false)', async () => {
    const app = appWith({
      members: cluster.members,
      memberHeader: true,
      serverTiming: true,
      pin: false,
    });
    const res = await app.request('/kv/unpinned');
    expect(res.status).toBe(200);
    // Nothing is pinned, yet member a served both commands.
    expect(await res.json()).toEqual({ value: 'v' });
    expect(res.headers.get('x-redis-member')).toBe('a');
    expect(res.headers.get('server-timing')).toMatch(/^redis;dur=[\d.]+;desc="a, 2 calls"$/);
  });

  it('encodes a member name that is not a header value, instead of failing the response', async () => {
    const key = `adapters:hono:tokyo:${Date.now()}`;
    const client = createFailoverRedis({
      members: [{ ...cluster.members[0]!, name: '東京' }],
      health: { enabled: false },
    });
    const app = new Hono<{ Variables: FailoverVariables }>();
    app.use(failover({ client, memberHeader: true, serverTiming: true }));
    app.post('/incr', async (c) => c.json({ n: await c.var.redis.incr(key) }));
    app.get('/redirect', async (c) => {
      await c.var.redis.ping();
      return Response.redirect('https://example.com/', 302);
    });
    const res = await app.request('/incr', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ n: 1 });
    const header = res.headers.get('x-redis-member');
    expect(header).toBe('%E6%9D%B1%E4%BA%AC');
    expect(decodeURIComponent(header!)).toBe('東京');
    expect(res.headers.get('server-timing')).toMatch(
      /^redis;dur=[\d.]+;desc="%E6%9D%B1%E4%BA%AC, 1 call"$/,
    );
    // A redirect (immutable headers) gets its copy with the encoded header too.
    const redirect = await app.request('/redirect');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('x-redis-member')).toBe('%E6%9D%B1%E4%BA%AC');
  });

  it('rejects bad static options when the app is built, naming the field', () => {
    expect(() => failover({ members: [] })).toThrow(ConfigError);
    expect(() => failover({ members: cluster.members, requestDeadlineMs: -1 })).toThrow(
      /requestDeadlineMs/,
    );
    expect(() => failover({ members: cluster.members, memberHeader: 'bad header' })).toThrow(
      /memberHeader/,
    );
  });

  it('a request deadline bounds all Redis work of the request', async () => {
    const app = new Hono<{ Variables: FailoverVariables }>();
    app.use(failover({ members: cluster.members, requestDeadlineMs: 1000 }));
    app.get('/', async (c) => {
      await c.var.redis.ping();
      // Past the request's budget: the next command must not even be tried.
      await sleep(1100);
      try {
        await c.var.redis.ping();
        return c.text('ran');
      } catch (error) {
        return c.text((error as Error).name, 503);
      }
    });
    const res = await app.request('/');
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('AllMembersFailedError');
  });
});

describe('statusHandler()', () => {
  it('answers the snapshot of the failover() client, without secrets', async () => {
    const app = new Hono<{ Variables: FailoverVariables }>();
    app.use(failover({ members: cluster.members }));
    app.get('/kv', async (c) => c.json(await c.var.redis.ping()));
    app.get('/status', statusHandler());
    await app.request('/kv');
    const res = await app.request('/status');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(body.active).toBe('a');
    expect(body.members.map((m: { name: string }) => m.name)).toEqual(['a', 'b', 'c']);
    expect(body.members[0]).toMatchObject({ status: 'healthy', circuit: 'closed' });
    const text = JSON.stringify(body);
    for (const m of cluster.members) {
      expect(text).not.toContain(m.token);
      expect(text).not.toContain(m.availability.password);
    }
  });

  it('can build its own client, and hide member URLs', async () => {
    const app = new Hono();
    app.get('/status', statusHandler({ members: cluster.members, hideUrls: true }));
    const body = await (await app.request('/status')).json();
    expect(body.members).toHaveLength(3);
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
  });

  it('serves no secret path or query of a member URL, in any field', async () => {
    const secret = (url: string) => `${url}/s3cr3t-path/db?key=PRIVATE`;
    const members = cluster.members.map((m) => ({
      ...m,
      url: secret(m.url),
      availability: { ...m.availability, url: secret(m.availability.url) },
    }));
    // The gateway echoes the path in its error ("unknown command 'S3CR3T-PATH'"); a user's
    // probe may put the URL in its error or reason.
    const echoing = createFailoverRedis({ members });
    const probe: CustomProbe = async ({ name, url }) => {
      if (name === 'a') throw new Error(`GET ${url}/healthz answered 503`);
      if (name === 'b') return { healthy: false, reason: `down: ${url}`, configProblem: url };
      return true;
    };
    const custom = createFailoverRedis({ members, health: { probe } });
    for (const client of [echoing, custom]) {
      await client.refreshAll();
      const raw = JSON.stringify(client.snapshot());
      // The leak is there to hide: the raw snapshot holds the path in its key and free text.
      expect(raw).toContain('s3cr3t-path');
      for (const hideUrls of [false, true]) {
        const app = new Hono();
        app.get('/status', statusHandler({ client, hideUrls }));
        const res = await app.request('/status');
        expect(res.status).toBe(200);
        const text = await res.text();
        expect(text.toLowerCase()).not.toContain('s3cr3t');
        expect(text).not.toContain('PRIVATE');
        expect(text).not.toContain('key=');
        if (hideUrls) expect(text).not.toContain('127.0.0.1');
        const body = JSON.parse(text);
        expect(body.key).toMatch(/^redis-edge-failover:health:[0-9a-f]{8}$/);
        expect(body.members.map((m: { url: string }) => m.url)).toEqual(
          hideUrls ? ['', '', ''] : cluster.members.map((m) => new URL(m.url).origin),
        );
        // The text keeps what it says, minus the URL's private parts.
        const a = body.members[0];
        expect(a.status).toBe('unhealthy');
        if (client === custom && !hideUrls) {
          const origin = new URL(cluster.members[0]!.url).origin;
          expect(a.lastError.message).toBe(`custom: GET ${origin} answered 503`);
        }
      }
    }
  });

  it('says what is missing when no client is available', async () => {
    const app = new Hono();
    app.get('/status', statusHandler());
    app.onError((error, c) => c.text(error.message, 500));
    const res = await app.request('/status');
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/no client in c\.var\.redis; mount failover\(\)/);
  });
});
