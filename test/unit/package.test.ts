import { execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
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
import { freePort, RedisProcess } from '../gateway/redis-process.js';

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
  // The docs the README links to, and whatever else docs/ holds, so the test sees it.
  cpSync(join(ROOT, 'docs'), join(dir, 'docs'), { recursive: true });
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
  it('contains only the build output, the README and the docs it links to, the license and package.json', () => {
    const unexpected = files.filter(
      (f) =>
        !(
          f === 'package.json' ||
          f === 'README.md' ||
          f === 'LICENSE' ||
          /^dist\/.+\.(js|d\.ts)$/.test(f) ||
          /^docs\/[^/]+\.md$/.test(f)
        ),
    );
    expect(unexpected).toEqual([]);
    // The README's links to docs/*.md resolve in the installed package.
    const linked = [
      ...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/\]\((docs\/[^)#]+\.md)/g),
    ].map((m) => m[1]!);
    expect(linked.length).toBeGreaterThan(0);
    expect(linked.filter((f) => !files.includes(f))).toEqual([]);
    // Nothing from the repository's working material.
    expect(files.filter((f) => /^(src|test|bench|scripts|workers|node_modules)\//.test(f))).toEqual(
      [],
    );
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
        "app.get('/status', statusHandler());",
        "app.get('/:key', async (c) => c.json(await c.var.redis.get<string>(c.req.param('key'))));",
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

describe('installed from the tarball into an app', () => {
  // npm resolves from its cache, which `npm ci` filled with these exact versions.
  const install = (app: string, specs: string[]) =>
    run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...specs],
      { cwd: app, maxBuffer: 16 * 1024 * 1024 },
    );
  let app: string;

  beforeAll(async () => {
    // Not under `dir`: the consumer test above links the repository's node_modules there,
    // where Node's resolution would find the gateway's packages.
    app = mkdtempSync(join(tmpdir(), 'redis-edge-app-'));
    writeFileSync(join(app, 'package.json'), '{"name":"app","private":true,"type":"module"}');
    await install(app, [tarball]);
  }, 180_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it("brings the client's peers and not the gateway's Node-only packages", () => {
    const installed = (name: string) => existsSync(join(app, 'node_modules', name, 'package.json'));
    expect(installed('@upstash/redis')).toBe(true);
    expect(installed('hono')).toBe(true);
    expect(installed('ioredis')).toBe(false);
    expect(installed('@hono/node-server')).toBe(false);
    // One copy of each peer: the app's own, not one nested under the library.
    expect(existsSync(join(app, 'node_modules', 'redis-edge-failover', 'node_modules'))).toBe(
      false,
    );
  });

  it('the gateway CLI says which packages to install, then runs once they are', async () => {
    const cli = join(app, 'node_modules', '.bin', 'redis-edge-gateway');
    const env = { ...process.env, REDIS_EDGE_TOKEN: 'installed-token' };
    const redis = await RedisProcess.start();
    const port = await freePort();
    const args = ['--redis-url', redis.url, '--port', String(port)];
    try {
      const refused = await run(cli, args, { env, timeout: 20_000 }).catch(
        (error: { code?: number; stderr?: string }) => error,
      );
      expect('code' in refused && refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'needs ioredis, @hono/node-server installed next to redis-edge-failover: npm install ioredis @hono/node-server',
      );

      const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { version: string }>;
      };
      const pinned = (name: string) => `${name}@${lock.packages[`node_modules/${name}`]!.version}`;
      await install(app, [pinned('ioredis'), pinned('@hono/node-server')]);

      const gateway = spawn(cli, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          gateway.stdout.on('data', (chunk: Buffer) => {
            out += chunk;
            const match = /listening on (http:\/\/\S+)/.exec(out);
            if (match) resolve(match[1]!);
          });
          gateway.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
          setTimeout(() => reject(new Error(`no ready line: ${out}`)), 20_000).unref();
        });
        // The app's code, run by Node from the app's folder: the installed package, not src/.
        const script = [
          "import { Redis } from '@upstash/redis';",
          "import { createFailoverRedis } from 'redis-edge-failover';",
          `const redis = createFailoverRedis({ members: [{ name: 'a', url: ${JSON.stringify(url)}, token: 'installed-token' }] });`,
          "await redis.set('installed', 'yes');",
          "console.log(JSON.stringify({ same: redis instanceof Redis, got: await redis.get('installed') }));",
        ].join('\n');
        const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
          cwd: app,
          timeout: 20_000,
        });
        expect(JSON.parse(stdout)).toEqual({ same: true, got: 'yes' });
      } finally {
        gateway.kill('SIGKILL');
      }
    } finally {
      await redis.stop();
    }
  }, 180_000);
});
