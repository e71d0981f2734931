import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { describe, expect, it } from 'vitest';
import { COMPATIBILITY_DATE } from './helpers.js';

/**
 * The client entries must load in workerd as they are: no Node built-ins, and nothing at
 * module scope that workerd forbids there (timers, fetch, randomness: "Disallowed operation
 * called within global scope"). Each entry is bundled the way a user's bundler would and
 * imported by a tiny worker.
 */
const ENTRIES = {
  core: '../../src/index.ts',
  hono: '../../src/hono/index.ts',
  workers: '../../src/workers/index.ts',
  serverless: '../../src/serverless/index.ts',
};

async function bundle(entry: string) {
  const path = new URL(entry, import.meta.url).pathname;
  const result = await build({
    stdin: {
      contents: `import * as entry from ${JSON.stringify(path)};
        export default { fetch: () => Response.json(Object.keys(entry).sort()) };`,
      resolveDir: process.cwd(),
      loader: 'ts',
    },
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    logLevel: 'silent',
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

describe('client entries are edge-clean', () => {
  it('bundle without Node built-ins and load in workerd', async () => {
    const bundles = await Promise.all(
      Object.entries(ENTRIES).map(async ([name, entry]) => ({ name, ...(await bundle(entry)) })),
    );
    for (const b of bundles) {
      expect(b.inputs.filter((i) => i.startsWith('node:') || i.includes('src/testing'))).toEqual(
        [],
      );
      expect(b.inputs.filter((i) => i.includes('src/gateway'))).toEqual([]);
    }
    const mf = new Miniflare({
      cf: false,
      workers: bundles.map((b) => ({
        name: b.name,
        routes: [`${b.name}.test/*`],
        modules: true,
        script: b.code,
        compatibilityDate: COMPATIBILITY_DATE,
      })),
    });
    try {
      for (const b of bundles) {
        const res = await mf.dispatchFetch(`http://${b.name}.test/`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as string[]).length).toBeGreaterThan(0);
      }
      const hono = (await (await mf.dispatchFetch('http://hono.test/')).json()) as string[];
      expect(hono).toEqual(expect.arrayContaining(['failover', 'statusHandler']));
      const workers = (await (await mf.dispatchFetch('http://workers.test/')).json()) as string[];
      expect(workers).toEqual(
        expect.arrayContaining(['membersFromEnv', 'withFailover', 'scheduledRefresh']),
      );
    } finally {
      await mf.dispose();
    }
  });
});
