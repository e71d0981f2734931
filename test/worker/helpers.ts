/**
 * Runs the sample worker in real workerd, several isolates in one workerd process, loaded into
 * Miniflare with the members of a local cluster as bindings (bundling: workers/sample/miniflare.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import type { LocalMember } from '../../src/testing/index.js';
import { devVars } from '../../workers/sample/dev-vars.js';
import { bundleSampleWorker, COMPATIBILITY_DATE } from '../../workers/sample/miniflare.js';

export interface SampleOptions {
  members: LocalMember[];
  /**
   * One worker per entry, each its own isolate (fresh module state), reached at
   * `http://<name>.test/...`; the value holds extra vars (`REDIS_GRACE_PERIOD_MS`,
   * `REDIS_PROXIMITY`...). One workerd process serves them all, which is much cheaper than one
   * Miniflare per isolate.
   */
  variants: Record<string, Record<string, string>>;
  /** Directory for KV state, to share it between Miniflare instances. */
  kvPersist?: string;
  /** Use the availability API of the local gateways (default true). */
  availability?: boolean;
}

/** A Miniflare running the sample worker once per variant. `dispose()` it. */
export async function startSample(options: SampleOptions): Promise<Miniflare> {
  const script = await bundleSampleWorker();
  const base = devVars(options.members, { availability: options.availability !== false });
  const mf = new Miniflare({
    // The fallback `cf` object; never fetch the real one (tests run offline).
    cf: false,
    ...(options.kvPersist ? { kvPersist: options.kvPersist } : {}),
    workers: Object.entries(options.variants).map(([name, vars]) => ({
      name,
      routes: [`${name}.test/*`],
      modules: true,
      script,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: { ...base, ...vars },
      kvNamespaces: ['HEALTH'],
    })),
  });
  await mf.ready;
  return mf;
}

/**
 * Miniflare types its bindings with `@cloudflare/workers-types`, which this project does not
 * install (the library types what it uses structurally); these are the calls the tests make.
 */
export interface TestWorker {
  scheduled(options: { cron: string; scheduledTime?: Date }): Promise<{ outcome: string }>;
}
export interface TestKv {
  list(): Promise<{ keys: Array<{ name: string }> }>;
  get(key: string, type: 'json'): Promise<unknown>;
}

export async function workerOf(mf: Miniflare, name: string): Promise<TestWorker> {
  return (await mf.getWorker(name)) as unknown as TestWorker;
}

export async function kvOf(mf: Miniflare, binding: string, worker: string): Promise<TestKv> {
  return (await mf.getKVNamespace(binding, worker)) as unknown as TestKv;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
