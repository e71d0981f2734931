/**
 * Bundle sizes with esbuild: minified, then gzipped with node:zlib (level 9). Shared by the
 * benchmark (section c) and the CI budget test (test/unit/bundle-size.test.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The client entries (they must run in workerd and browsers). */
export const CLIENT_ENTRIES = [
  { subpath: '.', file: 'src/index.ts' },
  { subpath: './hono', file: 'src/hono/index.ts' },
  { subpath: './workers', file: 'src/workers/index.ts' },
  { subpath: './serverless', file: 'src/serverless/index.ts' },
] as const;

export const SAMPLE_WORKER = 'workers/sample/index.ts';

/**
 * Budget checked in CI: own code + dependencies other than `@upstash/redis`, for `.`. The design
 * goal is 10 KB; the client is at about 13.7 KB after a pass that cut every module for size
 * (15.0 KB before, 13.6 KB before lazy cancellation; no dependency is left but @upstash/redis). What remains is mostly names and
 * messages: the command names alone are ~0.9 KB gzip, the option names ~0.4 KB, and property
 * names of records and snapshots survive minification. Attributed through the source map, the
 * opt-in features (shared tier ~2.3 KB minified, manual controls ~1.3 KB, proximity ~1.2 KB,
 * hedged reads ~0.9 KB, cold-start initialization ~0.5 KB) are 17 % of the minified bundle,
 * about 2.3 KB gzip: even all of them out would leave ~11.5 KB. This is a regression guard at
 * today's size plus a little, not the goal.
 *
 * Raised from 14.5 to 15.5 KB on 2026-11-26: fixing what the day's code reviews found (the cron
 * starting from the last record, tokens bound to their URL and checked as header values,
 * batches whose writes do not compose, a cold start bounded by the deadline, auto-pipelining's
 * unbound methods, lag and shared-record merge rules, a member suspected after a cut timeout,
 * a forced lock a client cannot reach, ...) took the client from 13.8 to 15.2 KB.
 * Reusing the last selection while its inputs stand (same day, to cut per-command allocation:
 * ~1.7 KB of garbage per GET at 32 in flight) added ~0.2 KB, to 15.4 KB.
 *
 * Raised from 15.5 KB later on 2026-11-26, twice: the fixes of a second round of
 * reviews (batches that read a key before writing it, SETBIT, failover events, failback past a
 * lagging member, half-open circuits under a fresh shared record, shared records read out of
 * order, cron runs in warm isolates, wrong tokens seen by probes, availability API corner
 * cases; then LRU transport eviction, readYourWritesSyncToken, the batch read-then-write rule
 * made precise) took the client from 15.4 to 16.1 KB: raised to 16.5 KB. A third round the
 * same day (hedged reads only to usable members and never hiding the lead's wrong token, the
 * sync token bound to its member's URL, a cleaned error cause, scrubbed custom-probe texts,
 * members kept out by a lock listed in AllMembersFailedError) took it to 16.5 KB: 17 KB.
 * Measured the same day, before those fixes: cutting the shared tier, manual controls,
 * proximity, hedging, initialization and the availability-API probe out of `.` left 10.5 KB
 * (27.1 KB minified), and shortening every message over 30 characters on top of that 10.0 KB.
 * 10 KB is out of reach without moving the design's own features out of `.` and cutting the
 * error messages that name what went wrong.
 *
 * Raised from 17 to 18 KB on 2026-11-26 (session 7): a review against Jedis and redis-py found
 * gaps a migrating user pays for, and closing them took the client from 16.6 to 17.7 KB:
 * unknown option keys refused with a hint at the intended name (+0.5 KB), a grace period for a
 * member left for failing, lag changes as health events and a trial read that lets a half-open
 * member back with health checks off (+0.35 KB), manual switches refused to members known to
 * be out and held over a shared record, subscribe failing loudly (+0.2 KB), and the gateway's
 * reason kept in a 'not sent' failure (+0.1 KB).
 *
 * Raised from 18 to 18.5 KB on 2026-11-26 (session 8): a chaos soak, a fuzz of the client
 * against a hostile member and a review found what took the client from 17.85 to 18.0 KB: a
 * member refusing writes (OOM, READONLY, ...) leaves at once instead of costing every write a
 * round trip, a health check's "down" is no longer undone by a request's success, a batch
 * answered with the wrong number of replies is malformed (it was handed to @upstash/redis,
 * which threw a TypeError or returned too few results), and credentials a server quotes back
 * are masked in command errors, probe reasons and config problems.
 */
export const CORE_BUDGET_GZIP_BYTES = 18.5 * 1024;
export const CORE_GOAL_GZIP_BYTES = 10 * 1024;

export interface BundleSize {
  minified: number;
  gzip: number;
  /** Largest inputs by bytes in the minified output (before gzip). */
  inputs: Array<{ path: string; bytes: number }>;
}

export interface BundleOptions {
  external?: string[];
  /** esbuild platform; `browser` (default) resolves the packages' browser/worker builds. */
  platform?: 'browser' | 'neutral' | 'node';
  conditions?: string[];
  minify?: boolean;
}

export async function bundleSize(entry: string, options: BundleOptions = {}): Promise<BundleSize> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, `file://${ROOT}`))],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    format: 'esm',
    platform: options.platform ?? 'browser',
    target: 'es2022',
    minify: options.minify ?? true,
    metafile: true,
    logLevel: 'silent',
    external: options.external ?? [],
    ...(options.conditions ? { conditions: options.conditions } : {}),
  });
  const output = result.outputFiles[0]!;
  const meta = result.metafile as Metafile;
  const out = Object.values(meta.outputs)[0]!;
  const inputs = Object.entries(out.inputs)
    .map(([path, info]) => ({ path, bytes: info.bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes);
  return {
    minified: output.contents.byteLength,
    gzip: gzipSync(output.contents, { level: 9 }).byteLength,
    inputs,
  };
}

/** Bytes per package (or `own code`) of a bundle, from its metafile inputs. */
export function byPackage(inputs: BundleSize['inputs']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { path, bytes } of inputs) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const key = match ? match[1]! : 'own code';
    out[key] = (out[key] ?? 0) + bytes;
  }
  return out;
}

export interface EntrySizes {
  subpath: string;
  file: string;
  /** Everything bundled. */
  full: BundleSize;
  /** `@upstash/redis` external (the user has it anyway). */
  withoutUpstash: BundleSize;
  /** Every package external: the library's own code only. */
  ownOnly: BundleSize;
}

export async function clientEntrySizes(): Promise<EntrySizes[]> {
  const out: EntrySizes[] = [];
  for (const e of CLIENT_ENTRIES) {
    if (!existsSync(`${ROOT}${e.file}`)) continue;
    out.push({
      subpath: e.subpath,
      file: e.file,
      full: await bundleSize(e.file),
      withoutUpstash: await bundleSize(e.file, { external: ['@upstash/redis'] }),
      ownOnly: await bundleSize(e.file, { external: ['@upstash/redis', 'hono', 'hono/*'] }),
    });
  }
  return out;
}
