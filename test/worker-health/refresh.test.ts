import type { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreSnapshot } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { bundleSampleWorker, startSampleWorker } from '../../workers/sample/miniflare.js';

/**
 * Stale-while-revalidate health refresh in real workerd (design section 2): one refresh per
 * isolate and interval however many requests arrive at once, and a refresh started by a request
 * that has already answered never holds up a later request.
 */
let cluster: LocalCluster;
let script: string;
const running: Miniflare[] = [];

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 3 });
  script = await bundleSampleWorker();
});
afterAll(async () => {
  await Promise.all(running.map((mf) => mf.dispose()));
  await cluster?.stop();
});

async function worker(vars: Record<string, string>, availability = true): Promise<Miniflare> {
  const mf = await startSampleWorker({ members: cluster.members, script, vars, availability });
  running.push(mf);
  return mf;
}

async function status(mf: Miniflare): Promise<StoreSnapshot> {
  return (await (await mf.dispatchFetch('http://worker/status')).json()) as StoreSnapshot;
}

describe('health refresh in workerd', () => {
  it('concurrent requests start at most one refresh per interval', async () => {
    const mf = await worker({ REDIS_HEALTH_INTERVAL_MS: '60000' });
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => mf.dispatchFetch(`http://worker/kv/refresh-${i}`)),
    );
    for (const r of responses) {
      expect([200, 404]).toContain(r.status);
      await r.arrayBuffer();
    }
    // Let the refresh (handed to waitUntil) finish, then look.
    await new Promise((r) => setTimeout(r, 500));
    const snap = await status(mf);
    expect(snap.stats.refreshes).toBe(1);
    for (const m of cluster.members) expect(snap.stats.probes[m.name]).toBe(1);
    expect(snap.members.every((m) => m.status === 'healthy')).toBe(true);
  });

  it('a refresh started by a finished request never blocks later requests', async () => {
    const mf = await worker(
      {
        REDIS_HEALTH_INTERVAL_MS: '100',
        REDIS_HEALTH_PROBE_TIMEOUT_MS: '3000',
        REDIS_TIMEOUT_MS: '500',
      },
      false, // REST PING probes: a paused member makes its probe hang for the whole timeout
    );
    await (await mf.dispatchFetch('http://worker/kv/warm')).arrayBuffer();
    await cluster.pause('c');
    try {
      await new Promise((r) => setTimeout(r, 150));
      // This request starts a refresh that will hang ~3 s on c's probe; it answers at once.
      let started = performance.now();
      const first = await mf.dispatchFetch('http://worker/kv/x');
      await first.arrayBuffer();
      expect(performance.now() - started).toBeLessThan(1000);
      // Later requests, while that refresh is still hanging, are not held up by it.
      const later: number[] = [];
      for (let i = 0; i < 10; i++) {
        started = performance.now();
        const res = await mf.dispatchFetch(`http://worker/kv/y${i}`);
        await res.arrayBuffer();
        expect([200, 404]).toContain(res.status);
        later.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(Math.max(...later)).toBeLessThan(1000);
      // ...and the refresh did not restart while one was running.
      expect((await status(mf)).stats.refreshes).toBe(2);
    } finally {
      await cluster.resume('c');
    }
  });
});
