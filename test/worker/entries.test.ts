import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { expect, it } from 'vitest';
import { COMPATIBILITY_DATE, WORKERD_BUILD } from '../../workers/sample/miniflare.js';

/**
 * The client entries must load in workerd as they are: no Node built-ins, and nothing at
 * module scope that workerd forbids there (timers, fetch, randomness: "Disallowed operation
 * called within global scope" stops the worker from starting). Each entry is bundled the way
 * a user's bundler would, and imported by a tiny worker.
 */
const src = (path: string) =>
  JSON.stringify(new URL(`../../src/${path}`, import.meta.url).pathname);

const WORKERS = {
  core: `import * as entry from ${src('index.ts')};
    export default { fetch: () => Response.json(Object.keys(entry).sort()) };`,
  hono: `import * as entry from ${src('hono/index.ts')};
    export default { fetch: () => Response.json(Object.keys(entry).sort()) };`,
  workers: `import * as entry from ${src('workers/index.ts')};
    export default { fetch: () => Response.json(Object.keys(entry).sort()) };`,
  serverless: `import * as entry from ${src('serverless/index.ts')};
    export default { fetch: () => Response.json(Object.keys(entry).sort()) };`,
  // Static options build their client when the adapter is created: here, at module scope.
  'module-scope': `import { failover } from ${src('hono/index.ts')};
    import { withFailover } from ${src('serverless/index.ts')};
    const members = [{ name: 'a', url: 'http://127.0.0.1:9', token: 't' }];
    export const middleware = failover({ members });
    const handler = withFailover(async () => Response.json(['built']), { members });
    export default { fetch: (request) => handler(request) };`,
};

async function bundle(contents: string) {
  const result = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' },
    ...WORKERD_BUILD,
    metafile: true,
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

it('client entries bundle without Node built-ins and load in workerd, clients included', async () => {
  const bundles = await Promise.all(
    Object.entries(WORKERS).map(async ([name, contents]) => ({
      name,
      ...(await bundle(contents)),
    })),
  );
  for (const b of bundles) {
    const nodeOnly = b.inputs.filter(
      (i) => i.startsWith('node:') || i.includes('src/testing') || i.includes('src/gateway'),
    );
    expect({ entry: b.name, nodeOnly }).toEqual({ entry: b.name, nodeOnly: [] });
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
    const exported: Record<string, string[]> = {};
    for (const b of bundles) {
      const res = await mf.dispatchFetch(`http://${b.name}.test/`);
      expect(res.status).toBe(200);
      exported[b.name] = (await res.json()) as string[];
    }
    expect(exported.hono).toEqual(expect.arrayContaining(['failover', 'statusHandler']));
    expect(exported.workers).toEqual(
      expect.arrayContaining(['membersFromEnv', 'withFailover', 'scheduledRefresh']),
    );
    expect(exported.serverless).toEqual(expect.arrayContaining(['withFailover']));
    expect(exported['module-scope']).toEqual(['built']);
  } finally {
    await mf.dispose();
  }
});
