import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StoreSnapshot } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { COMPATIBILITY_DATE, WORKERD_BUILD } from '../../workers/sample/miniflare.js';

/**
 * `cacheApiHealthCache(caches.default)` in real workerd: one isolate publishes with
 * `refreshAll()` (what a cron does), another isolate's first request runs on that record
 * without probing anything.
 */
const WORKER = `
import { cacheApiHealthCache, createFailoverRedis } from ${JSON.stringify(`${process.cwd()}/src/index.ts`)};
export default {
  async fetch(request, env, ctx) {
    const redis = createFailoverRedis({
      members: JSON.parse(env.MEMBERS),
      health: { cache: cacheApiHealthCache(caches.default), intervalMs: 60000 },
    });
    if (new URL(request.url).pathname === '/publish') return Response.json(await redis.refreshAll());
    const scoped = redis.scope({ waitUntil: (p) => ctx.waitUntil(p) });
    await scoped.get('cache-api:key');
    return Response.json({ member: scoped.pinnedMember, snapshot: redis.snapshot() });
  },
};`;

let cluster: LocalCluster;
let mf: Miniflare;

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 3 });
  const bundle = await build({
    ...WORKERD_BUILD,
    stdin: { contents: WORKER, resolveDir: process.cwd(), loader: 'ts' },
  });
  const script = bundle.outputFiles[0]!.text;
  const bindings = { MEMBERS: JSON.stringify(cluster.members) };
  // Two workers: two isolates (separate module state) sharing the data centre's cache.
  mf = new Miniflare({
    cf: false,
    workers: ['cron', 'fresh'].map((name) => ({
      name,
      routes: [`${name}.test/*`],
      modules: true,
      script,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings,
    })),
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
  await cluster?.stop();
});

it('a record published through the Cache API serves a fresh isolate without probes', async () => {
  await cluster.setAvailability('a', { status: 503, errorCode: 'no_quorum' });
  const published = (await (
    await mf.dispatchFetch('http://cron.test/publish')
  ).json()) as StoreSnapshot;
  expect(published.active).toBe('b');

  const first = (await (await mf.dispatchFetch('http://fresh.test/')).json()) as {
    member: string;
    snapshot: StoreSnapshot;
  };
  expect(first.member).toBe('b');
  expect(first.snapshot.stats.sharedHits).toBe(1);
  expect(first.snapshot.stats.probes).toEqual({});
  expect(first.snapshot.members.find((m) => m.name === 'a')?.status).toBe('unhealthy');
});
