/**
 * Runs the sample worker in real workerd: bundled with esbuild the way wrangler would
 * (ESM, `worker`/`browser` conditions, no Node built-ins), loaded into Miniflare with the
 * members of a local cluster as bindings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import type { LocalMember } from '../../src/testing/index.js';
import { devVars } from '../../workers/sample/dev-vars.js';

export const COMPATIBILITY_DATE = '2026-04-20';
const ENTRY = new URL('../../workers/sample/index.ts', import.meta.url).pathname;

let bundled: Promise<string> | undefined;

/** The sample worker as one ES module (built once per test file). */
export function bundleSample(): Promise<string> {
  bundled ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    target: 'es2022',
    logLevel: 'silent',
  }).then((result) => {
    const [file] = result.outputFiles;
    if (!file) throw new Error('esbuild produced no output');
    return file.text;
  });
  return bundled;
}

export interface SampleOptions {
  members: LocalMember[];
  /** Extra vars (tuning): `REDIS_GRACE_PERIOD_MS`, `REDIS_PROXIMITY`... */
  vars?: Record<string, string>;
  /** Directory for KV state, to share it between instances (fresh isolates). */
  kvPersist?: string;
  /** Use the availability API of the local gateways (default true). */
  availability?: boolean;
}

/** A Miniflare running the sample worker. `dispose()` it. */
export async function startSample(options: SampleOptions): Promise<Miniflare> {
  const script = await bundleSample();
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
    // The fallback `cf` object; never fetch the real one (tests run offline).
    cf: false,
  });
  await mf.ready;
  return mf;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
