import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { devVars } from '../../workers/sample/dev-vars.js';
import { COMPATIBILITY_DATE, WORKERD_BUILD } from '../../workers/sample/miniflare.js';

/**
 * The KV write throttle in real workerd with a real KV binding: two cron triggers of the same
 * minute run `scheduledRefresh()` in one isolate, each building its own options (and so its
 * own `kvHealthCache`) from `env`; the record is written once, because the throttle is kept
 * per binding and workerd hands every invocation the same binding object.
 *
 * The worker counts the writes that reach the binding through a wrapper kept per binding
 * object: a binding that changed between invocations would get a fresh wrapper, and a fresh
 * throttle with it, and the count would show it.
 */
const WORKER = `
import { scheduledRefresh } from ${JSON.stringify(`${process.cwd()}/src/workers/index.ts`)};
const counters = new WeakMap();
const seen = [];
function counted(kv) {
  let wrapper = counters.get(kv);
  if (!wrapper) {
    wrapper = {
      puts: 0,
      get: (key, type) => kv.get(key, type),
      put: (key, value, options) => {
        wrapper.puts += 1;
        return kv.put(key, value, options);
      },
    };
    counters.set(kv, wrapper);
  }
  return wrapper;
}
const refresh = scheduledRefresh({ healthKv: 'COUNTED' });
export default {
  async scheduled(controller, env, ctx) {
    seen.push(env.HEALTH);
    await refresh(controller, { ...env, COUNTED: counted(env.HEALTH) }, ctx);
  },
  async fetch(request, env) {
    return Response.json({
      puts: counted(env.HEALTH).puts,
      runs: seen.length,
      sameBinding: seen.every((kv) => kv === env.HEALTH),
    });
  },
};`;

interface Counts {
  puts: number;
  runs: number;
  sameBinding: boolean;
}

let cluster: LocalCluster;
let mf: Miniflare;

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 2 });
  const bundle = await build({
    ...WORKERD_BUILD,
    stdin: { contents: WORKER, resolveDir: process.cwd(), loader: 'ts' },
  });
  mf = new Miniflare({
    cf: false,
    modules: true,
    script: bundle.outputFiles[0]!.text,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: devVars(cluster.members, { availability: false }),
    kvNamespaces: ['HEALTH'],
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
  await cluster?.stop();
});

it('two crons of one minute write the shared record to KV once per second', async () => {
  const worker = (await mf.getWorker()) as unknown as {
    scheduled(options: { cron: string }): Promise<{ outcome: string }>;
  };
  const counts = async () => (await (await mf.dispatchFetch('http://worker/')).json()) as Counts;

  const results = await Promise.all([
    worker.scheduled({ cron: '* * * * *' }),
    worker.scheduled({ cron: '*/5 * * * *' }),
  ]);
  expect(results.map((r) => r.outcome)).toEqual(['ok', 'ok']);
  expect(await counts()).toEqual({ puts: 1, runs: 2, sameBinding: true });
  const kv = (await mf.getKVNamespace('HEALTH')) as unknown as {
    list(): Promise<{ keys: Array<{ name: string }> }>;
    get(key: string, type: 'json'): Promise<{ active?: string } | null>;
  };
  const { keys } = await kv.list();
  expect(keys).toHaveLength(1);
  expect((await kv.get(keys[0]!.name, 'json'))?.active).toBe('a');

  // A second later the next cron writes again.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect((await worker.scheduled({ cron: '* * * * *' })).outcome).toBe('ok');
  expect(await counts()).toEqual({ puts: 2, runs: 3, sameBinding: true });
});
