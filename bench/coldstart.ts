/**
 * Section d: cold start in a fresh Miniflare (workerd) per sample.
 *
 * workerd gives a worker no clock that moves during module evaluation (time advances only on
 * I/O), so evaluation cannot be timed from inside. It is measured from outside instead:
 * `new Miniflare()` → `ready` (workerd start-up, script compile, module evaluation), then the
 * first request (for the Redis workers: one GET against a local gateway, including the first
 * connection), then a second, warm request. An empty worker gives the start-up baseline, so
 * "ready − empty ready" is what the bundle costs to load. Samples alternate between workers.
 *
 * The workers (bench/workers/*.ts) are bundled with esbuild the way wrangler does by default
 * (ESM, `workerd`/`worker`/`browser` conditions, not minified).
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import type { LocalMember } from '../src/testing/index.js';
import { median, round } from './lib/stats.js';

const WORKERS = ['empty', 'plain', 'failover'] as const;
type WorkerName = (typeof WORKERS)[number];

export const WORKER_LABEL: Record<WorkerName, string> = {
  empty: 'empty worker (baseline)',
  plain: 'plain @upstash/redis',
  failover: 'redis-edge-failover',
};

export interface ColdStartResult {
  worker: WorkerName;
  bundleBytes: number;
  samples: number;
  readyMs: number[];
  firstRequestMs: number[];
  secondRequestMs: number[];
  readyMedian: number;
  firstRequestMedian: number;
  secondRequestMedian: number;
  /** ready + first request, median. */
  coldTotalMedian: number;
}

async function bundle(name: WorkerName): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`./workers/${name}.ts`, import.meta.url))],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    target: 'es2022',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export async function runColdStart(
  members: LocalMember[],
  options: { samples: number; log: (line: string) => void },
): Promise<ColdStartResult[]> {
  const a = members.find((m) => m.name === 'a')!;
  await fetch(a.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.token}` },
    body: JSON.stringify(['SET', 'bench:cold', 'hello']),
  });
  const scripts = {} as Record<WorkerName, string>;
  for (const w of WORKERS) scripts[w] = await bundle(w);
  const raw = {} as Record<WorkerName, { ready: number[]; first: number[]; second: number[] }>;
  for (const w of WORKERS) raw[w] = { ready: [], first: [], second: [] };

  // One throw-away start so the first measured sample does not pay for loading workerd.
  const warm = new Miniflare({
    modules: true,
    script: scripts.empty,
    compatibilityDate: '2026-04-20',
  });
  await warm.ready;
  await warm.dispose();

  for (let s = 0; s < options.samples; s++) {
    // Rotate the order each round so no worker always runs right after another.
    const order = WORKERS.map((_, i) => WORKERS[(i + s) % WORKERS.length]!);
    for (const w of order) {
      const t0 = performance.now();
      const mf = new Miniflare({
        modules: true,
        script: scripts[w],
        compatibilityDate: '2026-04-20',
        bindings: { URL: a.url, TOKEN: a.token, MEMBERS: JSON.stringify(members) },
      });
      try {
        await mf.ready;
        const t1 = performance.now();
        const first = await mf.dispatchFetch('http://localhost/');
        const text = await first.text();
        const t2 = performance.now();
        if (w !== 'empty' && !text.startsWith('hello')) {
          throw new Error(`cold start ${w}: unexpected answer ${text.slice(0, 200)}`);
        }
        const second = await mf.dispatchFetch('http://localhost/');
        await second.text();
        const t3 = performance.now();
        raw[w].ready.push(t1 - t0);
        raw[w].first.push(t2 - t1);
        raw[w].second.push(t3 - t2);
      } finally {
        await mf.dispose();
      }
    }
  }
  const results = WORKERS.map((w): ColdStartResult => {
    const r = raw[w];
    const total = r.ready.map((v, i) => v + r.first[i]!);
    return {
      worker: w,
      bundleBytes: Buffer.byteLength(scripts[w]),
      samples: r.ready.length,
      readyMs: r.ready.map((v) => round(v)),
      firstRequestMs: r.first.map((v) => round(v)),
      secondRequestMs: r.second.map((v) => round(v)),
      readyMedian: round(median(r.ready)),
      firstRequestMedian: round(median(r.first)),
      secondRequestMedian: round(median(r.second)),
      coldTotalMedian: round(median(total)),
    };
  });
  for (const r of results) {
    options.log(
      `  ${r.worker}: ready ${r.readyMedian} ms, first request ${r.firstRequestMedian} ms, second ${r.secondRequestMedian} ms`,
    );
  }
  return results;
}
