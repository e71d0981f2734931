import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What `npm publish` would ship. The package is built (tsdown, the repository's own config)
 * into a scratch copy of the package, so the test neither needs nor disturbs ./dist, then
 * packed there: the file list, publint and arethetypeswrong are checked on that.
 */
const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');

interface PackageJson {
  exports: Record<string, string | Record<string, string>>;
  bin?: Record<string, string>;
  files: string[];
}

let dir: string;
let files: string[];
let tarball: string;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-edge-pack-'));
  await run(join(BIN, 'tsdown'), ['-d', join(dir, 'dist'), '-l', 'error'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  for (const f of ['package.json', 'README.md', 'LICENSE']) {
    if (existsSync(join(ROOT, f))) copyFileSync(join(ROOT, f), join(dir, f));
  }
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--silent'], {
    cwd: dir,
  });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = info!.files.map((f) => f.path).sort();
  tarball = join(dir, info!.filename);
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function targets(value: string | Record<string, string>): string[] {
  return typeof value === 'string' ? [value] : Object.values(value);
}

describe('npm pack', () => {
  it('contains only the build output, the README, the license and package.json', () => {
    const unexpected = files.filter(
      (f) =>
        !(
          f === 'package.json' ||
          f === 'README.md' ||
          f === 'LICENSE' ||
          /^dist\/.+\.(js|d\.ts)$/.test(f)
        ),
    );
    expect(unexpected).toEqual([]);
    // Nothing from the repository's working material.
    expect(
      files.filter((f) => /^(src|test|bench|scripts|workers|docs|node_modules)\//.test(f)),
    ).toEqual([]);
    expect(files.filter((f) => /\.(map|ts\.map|tsbuildinfo|env|log)$|\.dev\.vars/.test(f))).toEqual(
      [],
    );
  });

  it('ships the license package.json names', () => {
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('contains every file the exports map and bin point to', () => {
    const wanted = [...Object.values(pkg.exports).flatMap(targets), ...Object.values(pkg.bin ?? {})]
      .filter((t) => t !== './package.json')
      .map((t) => t.replace(/^\.\//, ''));
    expect(wanted.length).toBeGreaterThan(0);
    expect(wanted.filter((t) => !files.includes(t))).toEqual([]);
  });

  it('has a types entry for every client export, listed first', () => {
    for (const [subpath, value] of Object.entries(pkg.exports)) {
      if (subpath === './package.json') continue;
      expect(typeof value, subpath).toBe('object');
      expect(Object.keys(value)[0], subpath).toBe('types');
    }
  });
});

describe('types in a strict consumer', () => {
  it('every client entry type-checks with exactOptionalPropertyTypes and skipLibCheck off', async () => {
    // A project of its own next to the packed package: the shipped .d.ts files, not the source.
    // Its dependencies resolve from the package's own folder, as they would once installed.
    const consumer = join(dir, 'consumer');
    mkdirSync(join(consumer, 'node_modules'), { recursive: true });
    symlinkSync(dir, join(consumer, 'node_modules', 'redis-edge-failover'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(consumer, 'package.json'), '{"type":"module"}');
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: [],
          lib: ['ES2022', 'WebWorker'],
          module: 'ESNext',
          moduleResolution: 'bundler',
          target: 'ES2022',
        },
        files: ['app.ts'],
      }),
    );
    writeFileSync(
      join(consumer, 'app.ts'),
      [
        "import { Hono } from 'hono';",
        "import { createFailoverRedis } from 'redis-edge-failover';",
        "import { failover, statusHandler } from 'redis-edge-failover/hono';",
        "import { membersFromEnv, scheduledRefresh, withFailover } from 'redis-edge-failover/workers';",
        "import * as serverless from 'redis-edge-failover/serverless';",
        'type Bindings = { REDIS_MEMBERS: string };',
        "const redis = createFailoverRedis({ members: [{ name: 'a', url: 'https://a.example', token: 't' }] });",
        'const app = new Hono<{ Bindings: Bindings }>().use(',
        '  failover<{ Bindings: Bindings }>((c) => ({ members: membersFromEnv(c.env) })),',
        ');',
        "app.get('/:key', async (c) => c.json(await c.var.redis.get<string>(c.req.param('key'))));",
        "app.get('/status', statusHandler());",
        'export { app, redis, scheduledRefresh, serverless, withFailover };',
      ].join('\n'),
    );
    const result = await run(join(BIN, 'tsc'), ['-p', consumer]).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? 'tsc failed' }),
    );
    expect(result.stdout).toBe('');
  }, 60_000);
});

describe('package linters', () => {
  it('publint (strict) reports nothing', async () => {
    const { messages, pkg: json } = await publint({ pkgDir: dir, strict: true, pack: 'npm' });
    expect(messages.map((m) => `${m.type}: ${formatMessage(m, json)}`)).toEqual([]);
  }, 60_000);

  it('arethetypeswrong: types resolve for every export under node16 (ESM) and bundler', async () => {
    // ESM-only package: the node10 and node16-from-CommonJS resolutions do not apply.
    const result = await run(
      join(BIN, 'attw'),
      [tarball, '--profile', 'esm-only', '--format', 'json', '--no-color'],
      { maxBuffer: 16 * 1024 * 1024 },
    ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
    const report = JSON.parse(result.stdout) as {
      analysis: {
        entrypoints: Record<
          string,
          { resolutions: Record<string, { resolution?: { fileName?: string } }> }
        >;
      };
      problems?: Record<
        string,
        Array<{ kind: string; entrypoint?: string; resolutionKind?: string }>
      >;
    };
    const problems = Object.values(report.problems ?? {})
      .flat()
      .filter((p) => p.resolutionKind !== 'node10' && p.resolutionKind !== 'node16-cjs');
    expect(problems).toEqual([]);
    const entrypoints = report.analysis.entrypoints;
    for (const subpath of Object.keys(pkg.exports)) {
      if (subpath === './package.json') continue;
      for (const kind of ['node16-esm', 'bundler']) {
        const file = entrypoints[subpath]?.resolutions[kind]?.resolution?.fileName;
        expect(file, `${subpath} under ${kind}`).toMatch(/\.d\.ts$/);
      }
    }
  }, 120_000);
});
