import { Redis } from '@upstash/redis';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { COMPATIBILITY_DATE, WORKERD_BUILD } from '../../workers/sample/miniflare.js';

/**
 * Cancellation in real workerd, with a client used directly (no adapter, so no request signal):
 * on Cloudflare Workers every attempt carries an AbortSignal by default, because an invocation
 * may have only six connections waiting for headers and abandoned requests would hold them.
 */
const src = JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname);
const WORKER = `import { createFailoverRedis } from ${src};
  let redis;
  const signals = [];
  const recording = (input, init) => {
    if (String(init?.body).includes('cancel:key')) signals.push(init?.signal instanceof AbortSignal);
    return fetch(input, init);
  };
  export default {
    async fetch(request, env) {
      redis ??= createFailoverRedis({
        members: JSON.parse(env.MEMBERS),
        timeoutMs: 500,
        health: { enabled: false },
        fetch: recording,
      });
      const n = Number(new URL(request.url).searchParams.get('n'));
      const values = await Promise.all(Array.from({ length: n }, () => redis.get('cancel:key')));
      return Response.json({ values, signals: signals.splice(0), userAgent: navigator.userAgent });
    },
  };`;

let cluster: LocalCluster;
let mf: Miniflare;

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 3 });
  for (const m of cluster.members) {
    await new Redis({ url: m.url, token: m.token }).set('cancel:key', m.name);
  }
  const bundled = await build({
    stdin: { contents: WORKER, resolveDir: process.cwd(), loader: 'js' },
    ...WORKERD_BUILD,
  });
  mf = new Miniflare({
    modules: true,
    script: bundled.outputFiles[0]!.text,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { MEMBERS: JSON.stringify(cluster.members) },
  });
});
afterAll(async () => {
  await mf?.dispose();
  await cluster?.stop();
});

interface Answer {
  values: string[];
  signals: boolean[];
  userAgent: string;
}

async function reads(n: number): Promise<Answer> {
  return (await (await mf.dispatchFetch(`http://worker/?n=${n}`)).json()) as Answer;
}

it('gives every attempt a signal on Workers, a healthy member included, and fails over parallel reads from a hung member', async () => {
  const healthy = await reads(3);
  expect(healthy.userAgent).toBe('Cloudflare-Workers');
  expect(healthy.values).toEqual(['a', 'a', 'a']);
  expect(healthy.signals).toEqual([true, true, true]);

  await cluster.pause('a');
  try {
    const hung = await reads(10);
    expect(hung.values).toEqual(Array(10).fill('b'));
    // Ten attempts to the hung member and ten to b, every one of them cancellable.
    expect(hung.signals).toEqual(Array(20).fill(true));
  } finally {
    await cluster.resume('a');
  }
});
