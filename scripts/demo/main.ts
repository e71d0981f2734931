/**
 * `npm run demo`: watch a failover and a failback happen.
 *
 * Starts a local Active-Active cluster (real redis-server processes behind REST gateways),
 * runs the sample worker in real workerd (Miniflare), drives steady mixed traffic through it,
 * breaks the active member, brings it back, and shows what happens as it happens. Writes
 * `demo-output/timeline.svg` and `demo-output/summary.json`. Exits 0 only if no read failed
 * (and, with a fault, traffic moved). Leaves nothing running, also on Ctrl-C.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from '@upstash/redis';
import type { Miniflare } from 'miniflare';
import type { StoreSnapshot, SwitchEvent } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { startSampleWorker } from '../../workers/sample/miniflare.js';
import { type Operation, Recorder, type Summary, summarize } from './recorder.js';
import { timelineSvg } from './timeline-svg.js';
import { LiveView, type ViewState } from './view.js';

const FAULTS = ['kill', 'hang', '503', 'lag', 'none'] as const;
type Fault = (typeof FAULTS)[number];

const HELP = `npm run demo -- [options]

  --members N       members in the local cluster (2..6, default 3)
  --duration S      length of the run in seconds (default 40, at least 12)
  --fault KIND      what happens to the active member (default kill):
                      kill   SIGKILL its redis-server and gateway, restart it later
                      hang   SIGSTOP its redis-server, SIGCONT it later
                      503    its availability API answers 503 no_quorum, then 200 again
                      lag    503, then back but lagging 10 s behind, then in sync
                      none   no fault (a baseline)
  --concurrency N   simultaneous virtual users (default 4)
  --out DIR         where to write timeline.svg and summary.json (default demo-output)
  --help            this text`;

interface Plan {
  members: number;
  durationMs: number;
  fault: Fault;
  concurrency: number;
  out: string;
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${HELP}\n`);
  process.exit(2);
}

function parsePlan(argv: string[]): Plan {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        members: { type: 'string', default: '3' },
        duration: { type: 'string', default: '40' },
        fault: { type: 'string', default: 'kill' },
        concurrency: { type: 'string', default: '4' },
        out: { type: 'string', default: 'demo-output' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const int = (name: string, min: number, max: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max)
      fail(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const fault = String(values.fault) as Fault;
  if (!FAULTS.includes(fault)) fail(`--fault must be one of ${FAULTS.join(', ')}`);
  return {
    members: int('members', 2, 6),
    durationMs: int('duration', 12, 3600) * 1000,
    fault,
    concurrency: int('concurrency', 1, 64),
    out: String(values.out),
  };
}

/** When each step happens, as fractions of the run. */
function schedule(plan: Plan) {
  const at = (f: number) => Math.round(plan.durationMs * f);
  if (plan.fault === 'lag') return { fault: at(0.2), restore: at(0.4), sync: at(0.6) };
  return { fault: at(0.25), restore: at(0.5), sync: undefined };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const plan = parsePlan(process.argv.slice(2));
  const steps = schedule(plan);
  // Short enough that failback fits in the run, long enough to show the grace period.
  const graceMs = Math.min(10_000, Math.max(2000, Math.round(plan.durationMs * 0.1)));

  let cluster: LocalCluster | undefined;
  let mf: Miniflare | undefined;
  let stopping = false;
  const cleanup = async () => {
    stopping = true;
    await mf?.dispose().catch(() => {});
    await cluster?.stop().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\ndemo: ${signal}, cleaning up\n`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    process.stdout.write(
      `Starting a ${plan.members}-member local cluster and the sample worker in workerd...\n`,
    );
    cluster = await startLocalCluster({ members: plan.members });
    const names = cluster.members.map((m) => m.name);
    // Local members are independent redis-servers (no replication): seed every one, so reads
    // find their keys wherever they are served.
    await Promise.all(
      cluster.members.map(async (m) => {
        const r = new Redis({ url: m.url, token: m.token, enableAutoPipelining: false });
        const p = r.pipeline();
        for (let i = 0; i < 50; i++) p.set(`demo:key:${i}`, `value-${i}`);
        await p.exec();
      }),
    );
    mf = await startSampleWorker({
      members: cluster.members,
      vars: {
        REDIS_TIMEOUT_MS: '500',
        REDIS_GRACE_PERIOD_MS: String(graceMs),
        REDIS_HEALTH_INTERVAL_MS: '500',
        REDIS_HEALTH_PROBE_TIMEOUT_MS: '400',
      },
    });
    const worker = mf;
    const activeCluster = cluster;

    const startedAt = Date.now();
    const recorder = new Recorder(startedAt, names);
    const view = new LiveView(process.stdout, recorder, names);
    const state: ViewState = { phase: 'steady traffic', snapshot: undefined, events: [] };
    const switches: SwitchEvent[] = [];
    const event = (line: string) => {
      const stamped = `t=${((Date.now() - startedAt) / 1000).toFixed(1)}s ${line}`;
      state.events.push(stamped);
      view.event(stamped);
    };
    process.stdout.write(
      `Traffic: ${plan.concurrency} users, 70% GET /kv, 20% PUT /kv, 10% POST /counter (INCR). Fault: ${plan.fault}. Grace period ${graceMs} ms.\n\n`,
    );

    const endAt = startedAt + plan.durationMs;
    const user = async () => {
      let i = 0;
      while (!stopping && Date.now() < endAt) {
        i += 1;
        const roll = Math.random();
        const op: Operation = roll < 0.7 ? 'read' : roll < 0.9 ? 'write' : 'counter';
        const key = `demo:key:${Math.floor(Math.random() * 50)}`;
        const began = performance.now();
        let status = 0;
        let member: string | undefined;
        try {
          const res =
            op === 'read'
              ? await worker.dispatchFetch(`http://demo.local/kv/${key}`)
              : op === 'write'
                ? await worker.dispatchFetch(`http://demo.local/kv/${key}`, {
                    method: 'PUT',
                    body: `value-${i}`,
                  })
                : await worker.dispatchFetch('http://demo.local/counter/demo', { method: 'POST' });
          status = res.status;
          member = res.headers.get('x-redis-member') ?? undefined;
          await res.arrayBuffer();
        } catch {
          status = 0;
        }
        recorder.add({ at: Date.now(), op, status, member, latencyMs: performance.now() - began });
      }
    };

    const watch = async () => {
      let seen = 0;
      while (!stopping && Date.now() < endAt) {
        try {
          const res = await worker.dispatchFetch('http://demo.local/status');
          const snap = (await res.json()) as StoreSnapshot;
          state.snapshot = snap;
          for (const s of snap.switches.slice(seen)) {
            switches.push(s);
            recorder.mark({
              at: s.at,
              label: `${s.from ?? '-'}→${s.to} (${s.reason})`,
              kind: 'switch',
            });
            event(`switch ${s.from ?? '-'} → ${s.to} (${s.reason})`);
          }
          seen = snap.switches.length;
        } catch {
          // the status route itself failing shows up as errors in the traffic
        }
        view.render(state, Date.now());
        await sleep(250);
      }
    };

    const faults = async () => {
      if (plan.fault === 'none') return;
      await sleep(steps.fault);
      const victim = state.snapshot?.active ?? names[0]!;
      const faultLabel: Record<Exclude<Fault, 'none'>, string> = {
        kill: `kill -9 ${victim}`,
        hang: `SIGSTOP ${victim}`,
        '503': `${victim}: availability 503 no_quorum`,
        lag: `${victim}: availability 503 no_quorum`,
      };
      // Marked when the fault starts: the worker may switch before the kill call returns.
      const faultAt = Date.now();
      if (plan.fault === 'kill') await activeCluster.kill(victim);
      else if (plan.fault === 'hang') await activeCluster.pause(victim);
      else await activeCluster.setAvailability(victim, { status: 503, errorCode: 'no_quorum' });
      recorder.mark({ at: faultAt, label: faultLabel[plan.fault], kind: 'fault' });
      state.phase = `fault: ${faultLabel[plan.fault]}`;
      event(`fault injected: ${faultLabel[plan.fault]}`);

      await sleep(startedAt + steps.restore - Date.now());
      const restoreAt = Date.now();
      if (plan.fault === 'kill') await activeCluster.restart(victim);
      else if (plan.fault === 'hang') await activeCluster.resume(victim);
      else if (plan.fault === 'lag') {
        await activeCluster.setLag(victim, 10_000);
        await activeCluster.setAvailability(victim, null);
      } else await activeCluster.setAvailability(victim, null);
      const restoreLabel =
        plan.fault === 'lag' ? `${victim} back, lagging 10 s` : `${victim} restored`;
      recorder.mark({ at: restoreAt, label: restoreLabel, kind: 'restore' });
      state.phase = `${restoreLabel}; failback after ${graceMs} ms healthy${plan.fault === 'lag' ? ' and in sync' : ''}`;
      event(restoreLabel);

      if (steps.sync !== undefined) {
        await sleep(startedAt + steps.sync - Date.now());
        await activeCluster.setLag(victim, 0);
        recorder.mark({ at: Date.now(), label: `${victim} in sync`, kind: 'restore' });
        state.phase = `${victim} in sync; failback after ${graceMs} ms`;
        event(`${victim} in sync again`);
      }
    };

    await Promise.all([...Array.from({ length: plan.concurrency }, user), watch(), faults()]);
    view.render(state, Date.now());

    const summary = summarize(recorder, switches);
    printSummary(summary, plan);
    mkdirSync(plan.out, { recursive: true });
    writeFileSync(
      `${plan.out}/timeline.svg`,
      timelineSvg(
        recorder.buckets,
        names,
        recorder.markers,
        startedAt,
        `redis-edge-failover demo: fault "${plan.fault}" on the active member`,
      ),
    );
    writeFileSync(
      `${plan.out}/summary.json`,
      `${JSON.stringify({ plan, summary, switches }, null, 2)}\n`,
    );
    process.stdout.write(`\nWrote ${plan.out}/timeline.svg and ${plan.out}/summary.json\n`);

    const moved = plan.fault === 'none' || summary.failovers > 0;
    if (summary.failedReads > 0) process.stdout.write('FAIL: some reads failed\n');
    if (!moved) process.stdout.write('FAIL: traffic never moved off the broken member\n');
    return summary.failedReads === 0 && moved ? 0 : 1;
  } finally {
    await cleanup();
  }
}

function printSummary(s: Summary, plan: Plan): void {
  const ms = (v: number | undefined) =>
    v === undefined ? 'n/a' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
  const rows: Array<[string, string]> = [
    ['requests', String(s.requests)],
    ['reads / failed reads', `${s.reads} / ${s.failedReads}`],
    ['failed writes', String(s.failedWrites)],
    ['ambiguous writes refused (INCR not retried)', String(s.ambiguousWritesRefused)],
    ['failovers / failbacks', `${s.failovers} / ${s.failbacks}`],
    ['time to fail over (fault → switch)', plan.fault === 'none' ? 'n/a' : ms(s.timeToFailOverMs)],
    [
      'time to fail back (restore → failback)',
      plan.fault === 'none' ? 'n/a' : ms(s.timeToFailBackMs),
    ],
    ['latency p50 / p99', `${s.p50Ms.toFixed(1)} ms / ${s.p99Ms.toFixed(1)} ms`],
    [
      'served by',
      Object.entries(s.servedBy)
        .map(([m, n]) => `${m}: ${n}`)
        .join(', '),
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write('\nSummary\n');
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`demo failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
