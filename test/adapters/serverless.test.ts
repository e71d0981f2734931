import { beforeEach, describe, expect, inject, it } from 'vitest';
import { ConfigError, type FailoverRedis, resetHealthStores } from '../../src/index.js';
import { withFailover } from '../../src/serverless/index.js';
import { clusterOptions, gatedProbe, StrictExecutionContext, sleep, track } from './support.js';

/**
 * The serverless wrapper under plain `Request` handlers in Node, with each platform's way of
 * keeping background work alive (or none). Uses the shared cluster.
 */
const cluster = inject('cluster');

beforeEach(() => {
  resetHealthStores();
});

const handler = async (_request: Request, _context: unknown, redis: FailoverRedis) => {
  await redis.set('adapters:serverless', 'v');
  return Response.json({
    value: await redis.get('adapters:serverless'),
    member: redis.pinnedMember,
  });
};

describe('withFailover (serverless)', () => {
  it('no waitUntil anywhere (Lambda, Deno): background work finishes before the response', async () => {
    const probe = gatedProbe();
    const fetchHandler = withFailover(handler, {
      ...clusterOptions(cluster.members, probe.probe),
      memberHeader: true,
    });
    const pending = track(fetchHandler(new Request('http://fn.test/')));
    await sleep(300);
    expect(pending.settled).toBe(false);
    probe.release();
    const res = await pending.promise;
    expect(probe.finished()).toBe(3);
    expect(await res.json()).toEqual({ value: 'v', member: 'a' });
    expect(res.headers.get('x-redis-member')).toBe('a');
  });

  it('no waitUntil: a streamed body ends only after the checks its commands started', async () => {
    const probe = gatedProbe();
    const streaming = withFailover(
      async (_req, _ctx, redis) => {
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            await sleep(20); // the first event of a stream, after the handler returned
            const value = await redis.get('adapters:stream');
            controller.enqueue(new TextEncoder().encode(`data: ${value}\n\n`));
            controller.close();
          },
        });
        return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
      },
      clusterOptions(cluster.members, probe.probe),
    );
    const res = await streaming(new Request('http://fn.test/'));
    const text = track(res.text());
    await sleep(300);
    expect(text.settled).toBe(false); // the invocation is not over while its check runs
    probe.release();
    expect(await text.promise).toBe('data: null\n\n');
    expect(probe.finished()).toBe(3);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
  });

  it('a handler that throws still finishes background work, then rethrows', async () => {
    const probe = gatedProbe();
    const failing = withFailover(
      async (_req, _ctx, redis) => {
        await redis.ping();
        throw new Error('boom');
      },
      clusterOptions(cluster.members, probe.probe),
    );
    const pending = track(failing(new Request('http://fn.test/')));
    await sleep(300);
    expect(pending.settled).toBe(false);
    probe.release();
    await expect(pending.promise).rejects.toThrow('boom');
    expect(probe.finished()).toBe(3);
  });

  it('Netlify / Vercel Edge: context.waitUntil takes the work, called as a method', async () => {
    const probe = gatedProbe();
    const fetchHandler = withFailover<StrictExecutionContext>(
      handler,
      clusterOptions(cluster.members, probe.probe),
    );
    const context = new StrictExecutionContext();
    const res = await fetchHandler(new Request('http://fn.test/'), context);
    expect(res.status).toBe(200);
    expect(probe.finished()).toBe(0);
    probe.release();
    await context.settle();
    expect(probe.finished()).toBe(3);
  });

  it('Vercel (Node): the waitUntil passed in options wins', async () => {
    const probe = gatedProbe();
    const handedOver: Promise<unknown>[] = [];
    const fetchHandler = withFailover(handler, {
      ...clusterOptions(cluster.members, probe.probe),
      waitUntil: (p) => handedOver.push(p),
    });
    const res = await fetchHandler(new Request('http://fn.test/'));
    expect(res.status).toBe(200);
    expect(probe.finished()).toBe(0);
    expect(handedOver.length).toBeGreaterThan(0);
    probe.release();
    await Promise.all(handedOver);
    expect(probe.finished()).toBe(3);
  });

  it('Cloudflare (request, env, ctx): finds ctx after env and calls ctx.waitUntil as a method', async () => {
    const probe = gatedProbe();
    const env = { MEMBERS: JSON.stringify(cluster.members) };
    const fetchHandler = withFailover<typeof env>(handler, (_request, e) =>
      clusterOptions(JSON.parse(e!.MEMBERS), probe.probe),
    );
    const ctx = new StrictExecutionContext();
    const res = await fetchHandler(new Request('http://fn.test/'), env, ctx);
    expect(res.status).toBe(200);
    expect(probe.finished()).toBe(0);
    probe.release();
    await ctx.settle();
    expect(probe.finished()).toBe(3);
  });

  it("Netlify's context.geo is a proximity hint", async () => {
    const members = cluster.members.map((m, i) => ({
      ...m,
      location: [
        { lat: 50.11, lon: 8.68 },
        { lat: 38.95, lon: -77.45 },
        { lat: 1.35, lon: 103.99 },
      ][i]!,
    }));
    const fetchHandler = withFailover(handler, { members, proximity: true, memberHeader: true });
    const res = await fetchHandler(new Request('http://fn.test/'), {
      geo: { latitude: 1.29, longitude: 103.85 },
    });
    expect(res.headers.get('x-redis-member')).toBe('c');
    // A coordinate it does not know (null) is no coordinate: no hint, not latitude 0.
    resetHealthStores();
    const fresh = withFailover(handler, { members, proximity: true, memberHeader: true });
    const unknown = await fresh(new Request('http://fn.test/'), {
      geo: { latitude: null, longitude: 103.85 },
    });
    expect(unknown.headers.get('x-redis-member')).toBe('a');
  });

  it('adds headers to responses with immutable headers', async () => {
    const fetchHandler = withFailover(
      async (_req, _ctx, redis) => {
        await redis.ping();
        return Response.redirect('https://example.com/', 307);
      },
      { members: cluster.members, memberHeader: true, serverTiming: 'kv' },
    );
    const res = await fetchHandler(new Request('http://fn.test/'));
    expect(res.status).toBe(307);
    expect(res.headers.get('x-redis-member')).toBe('a');
    expect(res.headers.get('server-timing')).toMatch(/^kv;dur=[\d.]+;desc="a, 1 call"$/);
  });

  it('names the member with pinning off, encoding a name that is not a header value', async () => {
    const key = `adapters:serverless:tokyo:${Date.now()}`;
    const fetchHandler = withFailover(
      async (_req, _ctx, redis) => Response.json({ n: await redis.incr(key) }),
      {
        members: [{ ...cluster.members[0]!, name: '東京' }],
        health: { enabled: false },
        memberHeader: true,
        serverTiming: true,
        pin: false,
      },
    );
    const res = await fetchHandler(new Request('http://fn.test/'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ n: 1 });
    expect(decodeURIComponent(res.headers.get('x-redis-member')!)).toBe('東京');
    expect(res.headers.get('server-timing')).toMatch(
      /^redis;dur=[\d.]+;desc="%E6%9D%B1%E4%BA%AC, 1 call"$/,
    );
  });

  it('rejects bad static options at wrap time', () => {
    expect(() => withFailover(handler, { members: [] })).toThrow(ConfigError);
    expect(() => withFailover(handler, { members: cluster.members, flushTimeoutMs: 0 })).toThrow(
      /flushTimeoutMs/,
    );
  });
});
