/**
 * Section a: happy-path overhead.
 *
 * The same workload through a plain `@upstash/redis` `Redis` and through `createFailoverRedis`,
 * both against the same gateway (member `a`, the failover client's active member), alternating
 * runs so drift (thermal, other processes) hits both equally. The gateways and redis-servers
 * run in a child process, so the client process measures only client work plus loopback I/O.
 *
 * Like with like: the failover client does not auto-pipeline by default, so the plain client
 * is built with `enableAutoPipelining: false` too, and with `enableTelemetry: false` (the
 * failover client's requester sends no telemetry headers). Both use base64 response encoding,
 * read-your-writes and the global `fetch` (undici, keep-alive). Both are built packages: the
 * failover client is loaded from `dist/` (see `builtLibrary`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from '@upstash/redis';
import { build } from 'esbuild';
import type { MemberGroup } from './lib/remote-cluster.js';
import { type LatencySummary, median, rng, round, summarize } from './lib/stats.js';

type Client = Redis;
type Library = typeof import('../src/index.js');

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * The failover client as users install it: the package built with `npm run build`. The plain
 * client is a built package too. Run from source through tsx, every closure created per command
 * is wrapped in a naming helper (esbuild's keepNames): about 1 µs per command here, and a
 * `defineProperty` per closure, that the published build does not have.
 */
export async function builtLibrary(): Promise<Library> {
  execFileSync('npm', ['run', 'build', '--silent'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return (await import(new URL('dist/index.js', `file://${ROOT}`).href)) as Library;
}

/** The internals the per-command rows time; the package does not export them all. */
type Internals = Pick<
  typeof import('../src/transport/commands.js'),
  'classifyCommand' | 'classifyBatch'
> &
  Pick<typeof import('../src/health/store.js'), 'healthStoreFor' | 'resetHealthStores'> &
  Pick<typeof import('../src/config.js'), 'resolveOptions'>;

/**
 * The per-command internals built like the published package (ES2022 ESM, no keepNames), not
 * run from source through tsx, whose keepNames wrapping would inflate every closure they
 * create (see `builtLibrary`). `dist/` does not export `healthStoreFor` or `resolveOptions`,
 * so esbuild bundles the three source modules into bench/.tmp (git-ignored) and that is
 * imported. The module has its own health-store registry: the rows use its
 * `resetHealthStores`.
 */
export async function builtInternals(): Promise<Internals> {
  const dir = join(ROOT, 'bench', '.tmp');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `internals-${process.pid}-${Date.now()}.mjs`);
  await build({
    stdin: {
      contents: [
        "export { classifyBatch, classifyCommand } from './src/transport/commands.ts';",
        "export { healthStoreFor, resetHealthStores } from './src/health/store.ts';",
        "export { resolveOptions } from './src/config.ts';",
      ].join('\n'),
      resolveDir: ROOT,
      sourcefile: 'bench-internals.ts',
      loader: 'ts',
    },
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    keepNames: false,
    minify: false,
    outfile,
    logLevel: 'error',
  });
  try {
    return (await import(pathToFileURL(outfile).href)) as Internals;
  } finally {
    rmSync(outfile, { force: true });
  }
}
type Workload = 'mix' | 'pipeline';

const KEYS = 1000;
const VALUE = 'v'.repeat(100);

async function op(client: Client, workload: Workload, rand: () => number): Promise<void> {
  if (workload === 'mix') {
    // 80 % GET, 20 % SET over 1000 keys.
    const key = `bench:k:${Math.floor(rand() * KEYS)}`;
    if (rand() < 0.8) await client.get(key);
    else await client.set(key, VALUE);
    return;
  }
  // A pipeline of 10: 5 SET then 5 GET.
  const p = client.pipeline();
  for (let i = 0; i < 5; i++) p.set(`bench:k:${Math.floor(rand() * KEYS)}`, VALUE);
  for (let i = 0; i < 5; i++) p.get(`bench:k:${Math.floor(rand() * KEYS)}`);
  await p.exec();
}

interface RunResult {
  ops: number;
  elapsedMs: number;
  latencies: number[];
  cpuUsPerOp: number;
}

async function runFor(
  client: Client,
  workload: Workload,
  concurrency: number,
  durationMs: number,
  seed: number,
): Promise<RunResult> {
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      const rand = rng(seed * 1000 + w + 1);
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(client, workload, rand);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return {
    ops: latencies.length,
    elapsedMs,
    latencies,
    cpuUsPerOp: (cpu.user + cpu.system) / Math.max(1, latencies.length),
  };
}

export interface ClientSide {
  throughput: number[];
  throughputMedian: number;
  latency: LatencySummary;
  cpuUsPerOp: number;
}

export interface OverheadCase {
  workload: Workload;
  concurrency: number;
  rounds: number;
  durationMs: number;
  plain: ClientSide;
  failover: ClientSide;
  /** failover / plain, median of the per-round (paired) throughput ratios. */
  throughputRatio: number;
  /** failover / plain, median of the per-round (paired) p50 ratios. */
  p50Ratio: number;
  /** failover / plain p50 over all rounds pooled (drift between rounds shows up here). */
  p50RatioPooled: number;
  p99Ratio: number;
  cpuRatio: number;
}

function side(runs: RunResult[]): ClientSide {
  const throughput = runs.map((r) => (r.ops / r.elapsedMs) * 1000);
  const latency = summarize(runs.flatMap((r) => r.latencies));
  return {
    throughput: throughput.map((t) => round(t)),
    throughputMedian: round(median(throughput)),
    latency: {
      n: latency.n,
      p50: round(latency.p50),
      p99: round(latency.p99),
      mean: round(latency.mean),
      max: round(latency.max),
    },
    cpuUsPerOp: round(median(runs.map((r) => r.cpuUsPerOp))),
  };
}

export interface OverheadOptions {
  rounds: number;
  durationMs: number;
  warmupMs: number;
  log: (line: string) => void;
}

/**
 * The plain client, configured like with like: the failover client does not auto-pipeline by
 * default and its requester sends no telemetry headers, so neither does this one.
 */
function plainLikeOurs(member: { url: string; token: string }): Redis {
  return new Redis({
    url: member.url,
    token: member.token,
    enableAutoPipelining: false,
    enableTelemetry: false,
  });
}

export async function runOverhead(
  cluster: MemberGroup,
  library: Library,
  options: OverheadOptions,
): Promise<OverheadCase[]> {
  const a = cluster.member('a');
  const plain = plainLikeOurs(a);
  library.resetHealthStores();
  const failover = library.createFailoverRedis({ members: cluster.members });

  // Seed every key on every member (the failover client reads from `a`, but be safe).
  for (const m of cluster.members) {
    const seeder = new Redis({ url: m.url, token: m.token, enableTelemetry: false });
    const p = seeder.pipeline();
    for (let i = 0; i < KEYS; i++) p.set(`bench:k:${i}`, VALUE);
    await p.exec();
  }
  await failover.get('bench:k:0');
  // Both clients must talk to the same gateway, or the comparison is not like with like: checked
  // before the first case and after every case (a member may have looked unhealthy meanwhile).
  const requireOnA = (when: string) => {
    const active = failover.activeMember();
    if (active !== 'a')
      throw new Error(
        `happy-path overhead: the failover client is on member ${active ?? '(none)'}, not a, ${when}; ` +
          'the plain client measures a, so this comparison would not be like with like',
      );
  };
  requireOnA('before the first case');

  const cases: OverheadCase[] = [];
  for (const workload of ['mix', 'pipeline'] as const) {
    for (const concurrency of [1, 32]) {
      await runFor(plain, workload, concurrency, options.warmupMs, 1);
      await runFor(failover, workload, concurrency, options.warmupMs, 1);
      const plainRuns: RunResult[] = [];
      const failoverRuns: RunResult[] = [];
      for (let round = 0; round < options.rounds; round++) {
        // ABBA order: each client goes first in half of the rounds.
        const order: Array<['plain' | 'failover', Client]> =
          round % 2 === 0
            ? [
                ['plain', plain],
                ['failover', failover],
              ]
            : [
                ['failover', failover],
                ['plain', plain],
              ];
        for (const [name, client] of order) {
          const run = await runFor(client, workload, concurrency, options.durationMs, round + 2);
          (name === 'plain' ? plainRuns : failoverRuns).push(run);
        }
      }
      const p = side(plainRuns);
      const f = side(failoverRuns);
      const pairedRatios = plainRuns.map(
        (run, i) => failoverRuns[i]!.ops / failoverRuns[i]!.elapsedMs / (run.ops / run.elapsedMs),
      );
      // Paired like throughput: each round's two runs saw the same machine state, so their ratio
      // cancels drift that pooling all rounds would mix in (this VM's load swings by tens of %).
      const pairedP50 = plainRuns.map(
        (run, i) => summarize(failoverRuns[i]!.latencies).p50 / summarize(run.latencies).p50,
      );
      const c: OverheadCase = {
        workload,
        concurrency,
        rounds: options.rounds,
        durationMs: options.durationMs,
        plain: p,
        failover: f,
        throughputRatio: round(median(pairedRatios), 4),
        p50Ratio: round(median(pairedP50), 4),
        p50RatioPooled: round(f.latency.p50 / p.latency.p50, 4),
        p99Ratio: round(f.latency.p99 / p.latency.p99, 4),
        cpuRatio: round(f.cpuUsPerOp / p.cpuUsPerOp, 4),
      };
      requireOnA(`after the case ${workload} c=${concurrency}`);
      options.log(
        `  ${workload} c=${concurrency}: plain ${p.throughputMedian} ops/s p50 ${p.latency.p50} ms, ` +
          `failover ${f.throughputMedian} ops/s p50 ${f.latency.p50} ms (throughput ratio ${c.throughputRatio}, ` +
          `p50 ratio ${c.p50Ratio} paired, ${c.p50RatioPooled} pooled)`,
      );
      cases.push(c);
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Micro-benchmarks: the per-command work the failover layer adds, without any I/O.

export interface MicroResult {
  name: string;
  nsPerOp: number;
}

function timeIt(name: string, iterations: number, fn: (i: number) => unknown): MicroResult {
  const samples: number[] = [];
  let sink = 0;
  for (let s = 0; s < 7; s++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) if (fn(i)) sink++;
    samples.push(((performance.now() - t0) * 1e6) / iterations);
  }
  if (sink < 0) throw new Error('unreachable');
  // The first samples include JIT warm-up; the median of 7 ignores them.
  return { name, nsPerOp: round(median(samples)) };
}

async function timeAsync(
  name: string,
  iterations: number,
  fn: () => Promise<unknown>,
): Promise<MicroResult> {
  const samples: number[] = [];
  for (let s = 0; s < 7; s++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) await fn();
    samples.push(((performance.now() - t0) * 1e6) / iterations);
  }
  return { name, nsPerOp: round(median(samples)) };
}

export async function runMicro(
  members: MemberGroup['members'],
  library: Library,
): Promise<MicroResult[]> {
  const { classifyBatch, classifyCommand, healthStoreFor, resetHealthStores, resolveOptions } =
    await builtInternals();
  const results: MicroResult[] = [];
  const get = ['get', 'bench:k:1'];
  const setNx = ['set', 'bench:k:1', 'v', 'nx'];
  const incr = ['incr', 'counter'];
  const batch = [
    ['set', 'a', '1'],
    ['get', 'a'],
    ['hset', 'h', 'f', 'v'],
    ['expire', 'a', '10'],
    ['get', 'b'],
    ['mget', 'a', 'b'],
    ['sadd', 's', 'm'],
    ['zadd', 'z', '1', 'm'],
    ['del', 'x'],
    ['get', 'c'],
  ];
  results.push(timeIt('classifyCommand GET', 1_000_000, () => classifyCommand(get)));
  results.push(
    timeIt('classifyCommand SET NX (argument rule)', 1_000_000, () => classifyCommand(setNx)),
  );
  results.push(timeIt('classifyCommand INCR', 1_000_000, () => classifyCommand(incr)));
  results.push(
    timeIt('classifyBatch (10 commands)', 200_000, () => classifyBatch(batch, 'pipeline')),
  );

  resetHealthStores();
  const resolved = resolveOptions({ members });
  const store = healthStoreFor(resolved.members);
  const now = Date.now();
  store.select(undefined, false, 60_000, now);
  results.push(
    timeIt('store.select, 3 members', 200_000, (i) =>
      store.select(undefined, false, 60_000, now + i),
    ),
  );
  const withLocation = resolveOptions({
    members: members.map((m, i) => ({ ...m, location: { lat: 10 * i, lon: 20 * i } })),
    proximity: true,
  });
  resetHealthStores();
  const geoStore = healthStoreFor(withLocation.members);
  const hints = { lat: 48.1, lon: 11.6 };
  results.push(
    timeIt('store.select, 3 members, proximity', 200_000, (i) =>
      geoStore.select(hints, true, 60_000, now + i),
    ),
  );

  // Whole client path with fetch stubbed out (no I/O): what each client costs per GET.
  const realFetch = globalThis.fetch;
  const body = JSON.stringify({ result: btoa(VALUE) });
  globalThis.fetch = (async () =>
    new Response(body, {
      status: 200,
      headers: { 'content-type': 'application/json', 'upstash-sync-token': 't-1' },
    })) as typeof fetch;
  try {
    const a = members.find((m) => m.name === 'a')!;
    const plain = plainLikeOurs(a);
    library.resetHealthStores();
    const failover = library.createFailoverRedis({ members, health: { enabled: false } });
    results.push(await timeAsync('plain Redis GET, stubbed fetch', 20_000, () => plain.get('k')));
    results.push(
      await timeAsync('failover GET, stubbed fetch (health off)', 20_000, () => failover.get('k')),
    );
    results.push(
      await timeAsync('failover scope() + GET, stubbed fetch', 20_000, () =>
        failover.scope().get('k'),
      ),
    );
  } finally {
    globalThis.fetch = realFetch;
  }
  resetHealthStores();
  library.resetHealthStores();
  return results;
}

// ---------------------------------------------------------------------------------------------
// The gateway's own throughput: raw HTTP against one member, keep-alive, many in flight.

export interface GatewayThroughput {
  name: string;
  concurrency: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export async function runGatewayThroughput(
  member: MemberGroup['members'][number],
  durationMs: number,
): Promise<GatewayThroughput[]> {
  const url = new URL(member.url);
  const cases: Array<{ name: string; path: string; body: string }> = [
    { name: 'PING', path: '/', body: '["PING"]' },
    { name: 'GET (100 B value)', path: '/', body: '["GET","bench:k:1"]' },
    {
      name: 'pipeline of 10 GET',
      path: '/pipeline',
      body: JSON.stringify(Array.from({ length: 10 }, (_, i) => ['GET', `bench:k:${i}`])),
    },
  ];
  const concurrency = 64;
  const out: GatewayThroughput[] = [];
  for (const c of cases) {
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const send = () =>
      new Promise<void>((resolve, reject) => {
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: c.path,
            method: 'POST',
            agent,
            headers: {
              authorization: `Bearer ${member.token}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(c.body),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(c.body);
      });
    // Warm up (sockets, JIT) for a while before measuring.
    const warmUntil = performance.now() + Math.min(1000, durationMs / 2);
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < warmUntil) await send();
      }),
    );
    const latencies: number[] = [];
    const started = performance.now();
    const deadline = started + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          await send();
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = performance.now() - started;
    agent.destroy();
    const s = summarize(latencies);
    out.push({
      name: c.name,
      concurrency,
      requestsPerSecond: round((latencies.length / elapsed) * 1000),
      p50Ms: round(s.p50),
      p99Ms: round(s.p99),
    });
  }
  return out;
}
