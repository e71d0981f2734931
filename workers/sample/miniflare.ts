/**
 * The sample worker in real workerd, for the demo and the tests (Node only, not part of the
 * worker): bundled with esbuild the way wrangler would (ESM, `workerd`/`worker`/`browser`
 * conditions, no Node built-ins) and loaded into Miniflare with a local cluster's members as
 * bindings.
 */
import { type BuildOptions, build } from 'esbuild';
import { Miniflare } from 'miniflare';
import type { LocalMember } from '../../src/testing/index.js';
import { devVars } from './dev-vars.js';

/** Newest date the workerd shipped for Node 20 accepts comfortably. */
export const COMPATIBILITY_DATE = '2026-04-20';
const ENTRY = new URL('./index.ts', import.meta.url).pathname;

/** esbuild settings that resolve packages the way wrangler does for workerd. */
export const WORKERD_BUILD = {
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['browser', 'module', 'main'],
  target: 'es2022',
  logLevel: 'silent',
} as const satisfies BuildOptions;

export async function bundleSampleWorker(): Promise<string> {
  const result = await build({ ...WORKERD_BUILD, entryPoints: [ENTRY] });
  const [file] = result.outputFiles;
  if (!file) throw new Error('esbuild produced no output for the sample worker');
  return file.text;
}

export interface SampleWorkerOptions {
  members: LocalMember[];
  /** Tuning vars such as `REDIS_GRACE_PERIOD_MS`. */
  vars?: Record<string, string>;
  /** Directory for KV state, to share it between instances (fresh isolates). */
  kvPersist?: string;
  /** Use the gateways' availability API for health (default true). */
  availability?: boolean;
  /** A bundle made earlier by `bundleSampleWorker`, to skip rebuilding it. */
  script?: string;
  /** Also serve it over HTTP on a free loopback port (for a browser); `await mf.ready` is its URL. */
  listen?: boolean;
}

/** A Miniflare running the sample worker; `dispose()` it when done. */
export async function startSampleWorker(options: SampleWorkerOptions): Promise<Miniflare> {
  const script = options.script ?? (await bundleSampleWorker());
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: {
      ...devVars(options.members, { availability: options.availability !== false }),
      ...options.vars,
    },
    kvNamespaces: ['HEALTH'],
    ...(options.kvPersist ? { kvPersist: options.kvPersist } : {}),
    // Never fetch Cloudflare's real `cf` object: everything runs offline.
    cf: false,
    ...(options.listen ? { host: '127.0.0.1', port: 0 } : {}),
  });
  await mf.ready;
  return mf;
}
