/** Turns the benchmark results into bench/RESULTS.md and the SVG charts. */
import type { ColdStartResult } from './coldstart.js';
import { CORE_BUDGET_GZIP_BYTES, CORE_GOAL_GZIP_BYTES } from './lib/bundle.js';
import type { Machine } from './lib/machine.js';
import { fmt, medianInterval, pct, round } from './lib/stats.js';
import { barChart, type Chart } from './lib/svg.js';
import { type OutageScenario, type OutageSide, outageCharts } from './outage.js';
import type { GatewayThroughput, MicroResult, OverheadCase } from './overhead.js';
import { fleetLoad, ISOLATE_COUNTS, type ProbeLoadResult, probeLoadChart } from './probe-load.js';

interface Size {
  minified: number;
  gzip: number;
}

export interface BenchResults {
  machine: Machine;
  loadAverage: { start: number[]; end: number[] };
  quick: boolean;
  durationSeconds?: number;
  micro?: MicroResult[];
  gateway?: GatewayThroughput[];
  overhead?: OverheadCase[];
  outage?: Array<OutageScenario & { trial: number }>;
  bundle?: {
    entries: Array<{
      subpath: string;
      file: string;
      full: Size;
      withoutUpstash: Size;
      ownOnly: Size;
    }>;
    coreByPackage: Record<string, number>;
    coreLargestInputs: Array<{ path: string; bytes: number }>;
    budgetGzipBytes: number;
    sampleWorker: { file: string; minified: number; gzip: number } | { error: string };
  };
  coldStart?: ColdStartResult[];
  probeLoad?: ProbeLoadResult[];
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

export function renderCharts(r: BenchResults): Record<string, Chart[]> {
  const charts: Record<string, Chart[]> = {};
  if (r.overhead) {
    const categories = r.overhead.map((c) => `${c.workload}, c=${c.concurrency}`);
    charts['overhead.svg'] = [
      barChart({
        title: 'Happy path: throughput (median of rounds)',
        yLabel: 'operations / s',
        categories,
        groups: [
          { name: 'plain @upstash/redis', values: r.overhead.map((c) => c.plain.throughputMedian) },
          {
            name: 'redis-edge-failover',
            values: r.overhead.map((c) => c.failover.throughputMedian),
          },
        ],
        legendWidth: 190,
      }),
      barChart({
        title: 'Happy path: p50 and p99 latency',
        yLabel: 'ms',
        categories,
        groups: [
          { name: 'plain p50', values: r.overhead.map((c) => c.plain.latency.p50) },
          { name: 'failover p50', values: r.overhead.map((c) => c.failover.latency.p50) },
          { name: 'plain p99', values: r.overhead.map((c) => c.plain.latency.p99) },
          { name: 'failover p99', values: r.overhead.map((c) => c.failover.latency.p99) },
        ],
        legendWidth: 190,
      }),
    ];
  }
  for (const scenario of r.outage ?? []) {
    if (scenario.trial !== 1) continue;
    charts[`outage-${scenario.fault}.svg`] = outageCharts(scenario);
  }
  if (r.probeLoad) charts['probe-load.svg'] = [probeLoadChart(r.probeLoad)];
  if (r.bundle) {
    const entries = r.bundle.entries;
    charts['bundle-size.svg'] = [
      barChart({
        title: 'Client entries, minified + gzip (level 9)',
        yLabel: 'KB',
        categories: entries.map((e) => e.subpath),
        groups: [
          { name: 'all bundled', values: entries.map((e) => round(e.full.gzip / 1024)) },
          {
            name: '@upstash/redis external',
            values: entries.map((e) => round(e.withoutUpstash.gzip / 1024)),
          },
          { name: 'own code only', values: entries.map((e) => round(e.ownOnly.gzip / 1024)) },
        ],
        legendWidth: 200,
      }),
    ];
  }
  if (r.coldStart) {
    charts['cold-start.svg'] = [
      barChart({
        title: 'Cold start in a fresh Miniflare, medians',
        yLabel: 'ms',
        categories: r.coldStart.map((c) => c.worker),
        groups: [
          { name: 'new Miniflare → ready', values: r.coldStart.map((c) => c.readyMedian) },
          { name: 'first request', values: r.coldStart.map((c) => c.firstRequestMedian) },
          { name: 'second request', values: r.coldStart.map((c) => c.secondRequestMedian) },
        ],
        legendWidth: 200,
      }),
    ];
  }
  return charts;
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function side(s: OutageScenario, mode: OutageSide['mode']): OutageSide {
  return s.sides.find((x) => x.mode === mode)!;
}

function outageRows(scenarios: NonNullable<BenchResults['outage']>): Array<Array<string | number>> {
  const rows: Array<Array<string | number>> = [];
  for (const s of scenarios) {
    for (const mode of ['ours', 'anchor'] as const) {
      const x = side(s, mode);
      const sw = x.switches[0];
      const l = x.outageLatency;
      rows.push([
        `${s.fault === 'kill' ? 'kill -9' : 'SIGSTOP'} #${s.trial} (at ${s.preFaultMs / 1000} s)`,
        mode === 'ours' ? '**this library**' : 'anchor-style',
        x.undrained > 0 ? `${x.requests} (${x.undrained} not drained)` : x.requests,
        x.failedReads,
        `${x.failedWrites} (${x.ambiguousWrites} ambiguous)`,
        `${(l.windowMs / 1000).toFixed(1)} s`,
        `${l.p50} / ${l.p99}`,
        `${l.okP99} (${l.failed} failed)`,
        healthyText(x.timeToHealthyMs),
        sw ? `${sw.afterFaultMs} ms → ${sw.to} (${sw.reason})` : '—',
        `${x.duplicatesCounted} / ${x.duplicatesPossible}`,
        x.ackedWritesMissing,
      ]);
    }
  }
  return rows;
}

function healthyText(ms: number | null): string {
  return ms === null ? 'never (still on a at the end)' : `${ms}`;
}

/** The worst time to healthy over the trials: `never` if any trial never got there. */
function worstHealthy(
  scenarios: NonNullable<BenchResults['outage']>,
  mode: OutageSide['mode'],
): string {
  const all = scenarios.map((s) => side(s, mode).timeToHealthyMs);
  return all.some((ms) => ms === null)
    ? 'never (still on a at the end)'
    : `${Math.max(...(all as number[]))} ms`;
}

function worst(
  scenarios: NonNullable<BenchResults['outage']>,
  mode: OutageSide['mode'],
  pick: (s: OutageSide) => number,
): number {
  return Math.max(...scenarios.map((s) => pick(side(s, mode))));
}

/** `+3` / `-2`: a difference with its sign. */
function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

/** The per-round paired throughput ratios, from the per-round throughputs the results keep. */
function throughputInterval(c: OverheadCase): [number, number] {
  const ratios = c.failover.throughput.map((t, i) => t / c.plain.throughput[i]!);
  return medianInterval(ratios);
}

function intervalText([lo, hi]: [number, number]): string {
  return `[${pct(lo)}, ${pct(hi)}]`;
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`# Benchmark results

Produced by \`npm run bench\` (bench/run.ts) on **${m.date.slice(0, 10)}** (${m.date}).

| machine | |
|---|---|
| CPU (\`os.cpus()[0].model\`) | ${m.cpuModel} |
| cores (\`os.cpus().length\`) / \`nproc\` | ${m.cores} / ${m.nproc ?? 'n/a'} |
| memory | ${m.memoryGiB} GiB |
| Node | ${m.node} (${m.platform}) |
| load average at start / end (1, 5, 15 min) | ${r.loadAverage.start.join(', ')} / ${r.loadAverage.end.join(', ')} |
| run time | ${r.durationSeconds ?? '?'} s${r.quick ? ' (--quick: shortened, not for committing)' : ''} |

All traffic is loopback: redis-server 7.0 processes behind this project's gateway, each member
in its own child process (its own event loop, as separate machines would be), clients in
further processes. Raw numbers: [results.json](results.json).

**Read the absolute numbers with care.** This machine is a shared sandbox VM: loopback TCP and
system calls are slow here${r.gateway ? ` (the gateway's own throughput below: ${r.gateway.map((g) => `${g.requestsPerSecond} requests/s for ${g.name}`).join(', ')})` : ''},
and other jobs may have been running on the same two cores (see the load average). What the run is designed for is *comparisons measured side by side in the same
conditions*: plain client vs this library in alternating rounds, this library vs its
anchor-style configuration under the same fault at the same instant.`);

  // Summary
  const summary: Array<[string, string, string]> = [];
  if (r.overhead) {
    const ratios = r.overhead.map((c) => c.throughputRatio);
    const p50 = r.overhead.map((c) => c.p50Ratio);
    // Undecided when a case is past the goal but its interval still reaches back inside it.
    const clearlyOut = r.overhead.some((c) => throughputInterval(c)[1] < 0.95);
    summary.push([
      'a. happy path, throughput failover / plain (95 % interval of the paired median)',
      `${r.overhead.map((c) => `${c.workload} c=${c.concurrency}: ${pct(c.throughputRatio)} ${intervalText(throughputInterval(c))}`).join('; ')}`,
      `within 5 %: ${
        ratios.every((x) => x >= 0.95)
          ? 'met'
          : `**not met** (worst ${pct(Math.min(...ratios))}${clearlyOut ? '' : '; every interval reaches back inside 5 %'})`
      }`,
    ]);
    summary.push([
      'a. happy path, p50 latency failover / plain (paired rounds)',
      r.overhead.map((c) => `${c.workload} c=${c.concurrency}: ${pct(c.p50Ratio)}`).join('; '),
      `within 5 %: ${p50.every((x) => x <= 1.05) ? 'met' : `**not met** (worst ${pct(Math.max(...p50))})`}`,
    ]);
  }
  if (r.micro) {
    const get = r.micro.find((x) => x.name === 'classifyCommand GET');
    const sel = r.micro.find((x) => x.name === 'store.select, 3 members');
    if (get && sel) {
      const total = (get.nsPerOp + sel.nsPerOp) / 1000;
      summary.push([
        'a. selection + classification per command',
        `${fmt(total)} µs (classify ${get.nsPerOp} ns + select ${sel.nsPerOp} ns)`,
        `a few µs at most: ${total <= 5 ? 'met' : '**not met**'}`,
      ]);
    }
  }
  if (r.outage && r.outage.length > 0) {
    const o = r.outage;
    summary.push([
      'b. outage, failed reads (worst trial)',
      `this library ${worst(o, 'ours', (s) => s.failedReads)}, anchor-style ${worst(o, 'anchor', (s) => s.failedReads)}`,
      `zero for ours: ${worst(o, 'ours', (s) => s.failedReads) === 0 ? 'met' : '**not met**'}`,
    ]);
    summary.push([
      'b. outage, duplicated writes (counted / possible, worst trial)',
      `this library ${worst(o, 'ours', (s) => s.duplicatesCounted)} / ${worst(o, 'ours', (s) => s.duplicatesPossible)}, anchor-style ${worst(o, 'anchor', (s) => s.duplicatesCounted)} / ${worst(o, 'anchor', (s) => s.duplicatesPossible)}`,
      `zero: ${worst(o, 'ours', (s) => Math.max(s.duplicatesCounted, s.duplicatesPossible)) === 0 ? 'met' : '**not met**'}`,
    ]);
    summary.push([
      'b. outage, time until all traffic is on a healthy member (worst trial)',
      `this library ${worstHealthy(o, 'ours')}, anchor-style ${worstHealthy(o, 'anchor')}`,
      '—',
    ]);
  }
  if (r.bundle) {
    const core = r.bundle.entries.find((e) => e.subpath === '.');
    if (core) {
      const gzip = core.withoutUpstash.gzip;
      summary.push([
        'c. `.` minified + gzip, without @upstash/redis',
        kb(gzip),
        `design goal ${kb(CORE_GOAL_GZIP_BYTES)}: ${gzip <= CORE_GOAL_GZIP_BYTES ? 'met' : `**not met** (${kb(gzip)})`}; CI regression budget ${kb(CORE_BUDGET_GZIP_BYTES)}: ${gzip <= CORE_BUDGET_GZIP_BYTES ? 'within' : '**over**'}`,
      ]);
    }
  }
  if (r.coldStart) {
    const plain = r.coldStart.find((c) => c.worker === 'plain');
    const ours = r.coldStart.find((c) => c.worker === 'failover');
    if (plain && ours) {
      summary.push([
        'd. cold start, ready + first request (median)',
        `this library ${ours.coldTotalMedian} ms, plain ${plain.coldTotalMedian} ms (${ours.coldTotalMedian >= plain.coldTotalMedian ? '+' : ''}${round(ours.coldTotalMedian - plain.coldTotalMedian)} ms)`,
        '—',
      ]);
    }
  }
  if (r.probeLoad) {
    const d = r.probeLoad.find((p) => !p.shared && !p.name.startsWith('anchors'));
    const kv = r.probeLoad.find((p) => p.shared && !p.name.startsWith('anchors'));
    if (d && kv) {
      summary.push([
        'e. availability calls / member / minute / isolate',
        `${d.isolateAvailabilityCallsPerMemberMinute} without the shared tier; ${kv.isolateAvailabilityCallsPerMemberMinute} with KV + cron (the cron itself: ${kv.cronAvailabilityCallsPerMemberMinute} per member per minute for the whole fleet)`,
        `request path probes with the cron helper: ${kv.isolateProbesPerMemberMinute === 0 ? 'zero' : kv.isolateProbesPerMemberMinute}`,
      ]);
    }
  }
  parts.push(`## Summary\n\n${table(['measure', 'result', 'goal'], summary)}`);

  if (r.overhead) {
    parts.push(`## a. Happy-path overhead

The same workload through a plain \`@upstash/redis\` \`Redis\` and through
\`createFailoverRedis\` (3 members, defaults: availability-API health checks every 5 s run in
the background of the same process), both against member \`a\`'s gateway. Alternating rounds
(ABBA order), ${r.overhead[0]!.rounds} rounds of ${r.overhead[0]!.durationMs} ms per client and case,
after a warm-up. Workloads: \`mix\` = 80 % GET / 20 % SET over 1 000 keys with 100-byte values;
\`pipeline\` = one pipeline of 5 SET + 5 GET. \`c\` = operations in flight.

Like with like: the failover client does not auto-pipeline by default
(\`enableAutoPipelining: false\`), so the plain client is built with
\`enableAutoPipelining: false\` as well, and with \`enableTelemetry: false\` (the failover
client's requester sends no telemetry headers). Both use base64 responses, read-your-writes and
the global \`fetch\`. The failover client is the built package (\`npm run build\`), as users
install it, like the plain one. Throughput and p50 ratios = median of the per-round (paired) ratios:
the two runs of a round saw the same machine, so their ratio cancels the drift between rounds
(the pooled p50 ratio, over all rounds at once, is shown too); in brackets, the 95 % bootstrap
interval of the throughput median (2 000 resamples of the rounds); p99 over all rounds pooled
(one round has too few samples for its own p99); client CPU = \`process.cpuUsage()\` of the client process per
operation (includes undici's work for the HTTP exchange).

${table(
  [
    'workload',
    'c',
    'plain ops/s',
    'failover ops/s',
    'throughput',
    'p50 plain / failover (ms)',
    'p50 (paired / pooled)',
    'p99 plain / failover (ms)',
    'p99',
    'client CPU µs/op plain / failover',
  ],
  r.overhead.map((c) => [
    c.workload,
    c.concurrency,
    c.plain.throughputMedian,
    c.failover.throughputMedian,
    `${pct(c.throughputRatio)} ${intervalText(throughputInterval(c))}`,
    `${c.plain.latency.p50} / ${c.failover.latency.p50}`,
    `${pct(c.p50Ratio)} / ${pct(c.p50RatioPooled ?? c.p50Ratio)}`,
    `${c.plain.latency.p99} / ${c.failover.latency.p99}`,
    pct(c.p99Ratio),
    `${c.plain.cpuUsPerOp} / ${c.failover.cpuUsPerOp} (${pct(c.cpuRatio)})`,
  ]),
)}

![happy path](overhead.svg)`);
  }
  if (r.overhead && r.micro) {
    const plainStub = r.micro.find((x) => x.name.startsWith('plain Redis GET'));
    const oursStub = r.micro.find((x) => x.name.startsWith('failover GET'));
    const cls = r.micro.find((x) => x.name === 'classifyCommand GET');
    const sel = r.micro.find((x) => x.name === 'store.select, 3 members');
    const extraCpu = r.overhead.map(
      (c) =>
        `${c.workload} c=${c.concurrency}: ${signed(round(c.failover.cpuUsPerOp - c.plain.cpuUsPerOp))} µs`,
    );
    // What this run measured, per case, instead of a claim about how the overhead shows.
    const atOne = r.overhead
      .filter((c) => c.concurrency === 1)
      .map((c) => {
        const extra = c.failover.cpuUsPerOp - c.plain.cpuUsPerOp;
        const share = (extra / (c.plain.latency.p50 * 1000)) * 100;
        return `${c.workload}: p50 ${c.plain.latency.p50} → ${c.failover.latency.p50} ms (${pct(c.p50Ratio)} paired), ${signed(round(extra))} µs client CPU per operation (${share >= 0 ? '' : '−'}${Math.abs(share).toFixed(1)} % of the plain p50)`;
      });
    const atMore = r.overhead
      .filter((c) => c.concurrency > 1)
      .map(
        (c) =>
          `${c.workload} c=${c.concurrency}: throughput ${pct(c.throughputRatio)} ${intervalText(throughputInterval(c))}, client CPU per operation ${pct(c.cpuRatio)}`,
      );
    const measured = [
      atOne.length > 0 ? `at concurrency 1: ${atOne.join('; ')}.` : '',
      atMore.length > 0
        ? `With more in flight, the client process shares the ${m.cores} cores with the gateways and redis-servers: ${atMore.join('; ')}.`
        : '',
    ]
      .filter((x) => x !== '')
      .join(' ');
    if (plainStub && oursStub && cls && sel) {
      parts.push(`**Where the difference comes from.** Selection plus classification cost
${round((cls.nsPerOp + sel.nsPerOp) / 1000)} µs per command (table below): not the issue. With
\`fetch\` stubbed out, a GET costs ${round(plainStub.nsPerOp / 1000)} µs of CPU through the plain
client and ${round(oursStub.nsPerOp / 1000)} µs through the failover client; over the network the
client process spends ${extraCpu.join(', ')} CPU per operation (failover minus plain).
Cancellation is lazy: an attempt to a member that has not timed out or dropped a connection in
the last 5 minutes gets a timer but no \`AbortSignal\`, because Node 20's undici pays for any
signal a request carries (a follower \`AbortController\`, a \`WeakRef\`, a
\`FinalizationRegistry\` entry: ~25 µs of CPU per request in an interleaved A/B over this
gateway, which was most of the gap when every attempt carried one). After a timeout, that
member's attempts carry a signal for 5 minutes, so a hanging member is really cancelled; the
requests in flight when it hung are left to the runtime's own limit (README, "Choices"). A
signal shared between requests would not help: undici leaves one listener per request on it
until garbage collection. The rest is the requester and the health-store bookkeeping.
Measured in this run: ${measured}`);
    }
  }
  if (r.micro) {
    parts.push(`### Per-command work of the failover layer (no I/O)

Median of 7 timed batches, after JIT warm-up. The classification and selection rows time the
library's internals (\`classifyCommand\`, \`classifyBatch\`, the health store's \`select\`)
bundled by esbuild like the published build (ES2022 ESM, no keepNames), not the source run
through tsx, whose name-keeping wrapper would inflate every closure. The last three rows run the
whole client, the built package, with \`fetch\` replaced by a stub that returns a canned reply,
so they show the CPU each client spends per command outside the network.

${table(
  ['operation', 'ns per op'],
  r.micro.map((x) => [x.name, x.nsPerOp]),
)}`);
  }
  if (r.gateway) {
    parts.push(`### The gateway's own throughput

Raw HTTP/1.1 keep-alive requests (node:http, 64 in flight) against one member's gateway; the
load generator shares the machine, so this is a lower bound of what the gateway can do here.

${table(
  ['request', 'in flight', 'requests/s', 'p50 ms', 'p99 ms'],
  r.gateway.map((g) => [g.name, g.concurrency, g.requestsPerSecond, g.p50Ms, g.p99Ms]),
)}`);
  }
  if (r.outage && r.outage.length > 0) {
    const o = r.outage[0]!;
    parts.push(`## b. Outage: kill -9 and SIGSTOP of the active member

Two clients under the same steady traffic (${o.ratePerSecond} requests/s each, every request its
own request scope: 80 % GET of a seeded key, 20 % INCR of a key used exactly once), running at
the same time against the same three members, each in its own process (own health store, like
separate isolates). After ${o.preFaultMs / 1000} s of traffic (later in further trials, so the fault
lands at a different phase of the anchor-style client's 5 s health-check cycle) member \`a\`
(the active one) is either killed: its redis-server gets SIGKILL, then its gateway is closed
cleanly (it stops accepting connections and closes idle ones, a request it already holds is
answered, with an error now that its Redis is gone, and from then on the port refuses
connections); or frozen: its redis-server gets SIGSTOP (the gateway stays up, accepts requests
and waits on Redis). Traffic continues for ${o.postFaultMs / 1000} s.

- **this library**: \`createFailoverRedis({ members })\`, defaults (attempt timeout 1.5 s,
  circuit after 3 consecutive failures, request-scoped failover, availability-API checks every
  5 s with 1 probe).
- **anchor-style**: the same library configured like the Jedis / redis-py / Lettuce failover
  clients: \`requestFailover: false\` (a call tries the active member only),
  \`health: { intervalMs: 5000, probes: 3, probeDelayMs: 500 }\`,
  \`circuit: { consecutiveFailures: false, failureRate: { threshold: 0.1, minimumFailures: 1000, windowMs: 2000 } }\`,
  \`gracePeriodMs: 60000\`.

Columns: *all traffic healthy after* = time from the fault until the client's last workload
attempt on \`a\` settled as the client saw it (its failure event, which for a frozen member
is when the attempt timeout fires, or its answer): from then on no request waits on \`a\`;
*never* if the client was still sending its traffic to \`a\` when the traffic stopped.
*Window* = the outage window, the same for both clients of a trial: from the fault to the
slower client's *healthy after* plus one attempt timeout (${o.attemptTimeoutMs / 1000} s), or to the end of the
traffic if a client never got there. *Latency* = p50 / p99 of the requests started in the
window, **a failed request counted as taking the whole deadline (${o.deadlineMs / 1000} s)**, so failing fast does
not pass for a good latency; next to it the p99 of the window's successful requests alone and
the window's failed requests. Requests still unsettled when the drain window after the traffic
ends runs out count as failed (\`NotDrained\`; shown as *not drained* next to the requests).
*Duplicates* = writes found executed on more than one member (counted by reading every readable member; after SIGSTOP the
member is resumed and read too) / writes that were attempted with a possibly-executed outcome
(anything but connection refused or the gateway's not-sent 503) on two or more members;
*acked missing* = acknowledged writes found nowhere (excluding those acknowledged by the killed
member, whose data dies with it). Failed writes are INCRs whose outcome was unknown
(\`AmbiguousWriteError\`: the member may have run it, so it is not retried), those not
drained and, for the anchor-style client, any failure.

${table(
  [
    'fault',
    'client',
    'requests',
    'failed reads',
    'failed writes',
    'window',
    'latency p50 / p99, failed = deadline (ms)',
    'p99 of successes (ms)',
    'all traffic healthy after (ms)',
    'first switch',
    'duplicates counted / possible',
    'acked missing',
  ],
  outageRows(r.outage),
)}

![kill -9 timeline](outage-kill.svg)

![SIGSTOP timeline](outage-sigstop.svg)

Failed attempts seen by each client after the fault (first trial; every attempt, including
those that were retried elsewhere and succeeded):

${r.outage
  .filter((s) => s.trial === 1)
  .flatMap((s) =>
    s.sides.map(
      (x) =>
        `- ${s.fault === 'kill' ? 'kill -9' : 'SIGSTOP'}, ${x.mode === 'ours' ? 'this library' : 'anchor-style'}: ${
          Object.entries(x.attemptFailures)
            .map(([k, v]) => `${v} × ${k}`)
            .join('; ') || 'none'
        }`,
    ),
  )
  .join('\n')}`);
  }
  if (r.bundle) {
    const b = r.bundle;
    const core = b.entries.find((e) => e.subpath === '.');
    const sample =
      'error' in b.sampleWorker
        ? `could not be bundled: ${b.sampleWorker.error}`
        : `${kb(b.sampleWorker.minified)} minified, **${kb(b.sampleWorker.gzip)}** gzip`;
    parts.push(`## c. Bundle size

esbuild (ESM, platform \`browser\`, minified), then gzip level 9 (node:zlib). *own code only*
marks every package external (\`@upstash/redis\`, \`hono\`).

${table(
  ['entry', 'all bundled', '@upstash/redis external', 'own code only'],
  b.entries.map((e) => [
    `\`${e.subpath}\` (${e.file})`,
    `${kb(e.full.minified)} / **${kb(e.full.gzip)}**`,
    `${kb(e.withoutUpstash.minified)} / **${kb(e.withoutUpstash.gzip)}**`,
    `${kb(e.ownOnly.minified)} / **${kb(e.ownOnly.gzip)}**`,
  ]),
)}

(minified / gzip)

Sample worker (\`${'file' in b.sampleWorker ? b.sampleWorker.file : 'workers/sample/index.ts'}\`, everything bundled, hono included): ${sample}.

Design goal: \`.\` without \`@upstash/redis\` at most ${kb(CORE_GOAL_GZIP_BYTES)} gzip —
${core && core.withoutUpstash.gzip <= CORE_GOAL_GZIP_BYTES ? 'met' : '**not met**'}. Regression budget checked in CI
(test/unit/bundle-size.test.ts): ${kb(b.budgetGzipBytes)}. Measured: ${core ? kb(core.withoutUpstash.gzip) : 'n/a'}
(${core && core.withoutUpstash.gzip <= b.budgetGzipBytes ? 'within budget' : '**over budget**'}).
Where the minified bytes of \`.\` (without \`@upstash/redis\`) come from:

${table(
  ['package', 'minified bytes'],
  Object.entries(b.coreByPackage)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => [k, v]),
)}

Largest inputs: ${b.coreLargestInputs.map((i) => `${i.path} ${i.bytes}`).join(', ')}.

![bundle sizes](bundle-size.svg)`);
  }
  if (r.coldStart) {
    const base = r.coldStart.find((c) => c.worker === 'empty');
    parts.push(`## d. Cold start (fresh Miniflare per sample)

workerd's clock does not move while a module evaluates, so evaluation is measured from
outside: \`new Miniflare()\` → \`ready\` (workerd start-up + compile + module evaluation), then
the first request (the Redis workers do one GET against a local gateway), then a second (warm)
request. A new Miniflare per sample, ${r.coldStart[0]!.samples} samples per worker, rotating order.
Workers: bench/workers/*.ts, bundled like wrangler's default (ESM, not minified). The failover
worker's first request also starts the isolate's first health refresh (availability probes to
every member, handed to \`waitUntil\`, not awaited), which competes with the GET for the
isolate's connections; the second request does not.

${table(
  [
    'worker',
    'bundle',
    'ready (median ms)',
    'ready − empty',
    'first request',
    'second request',
    'ready + first',
  ],
  r.coldStart.map((c) => [
    c.worker,
    kb(c.bundleBytes),
    c.readyMedian,
    base ? round(c.readyMedian - base.readyMedian) : 'n/a',
    c.firstRequestMedian,
    c.secondRequestMedian,
    c.coldTotalMedian,
  ]),
)}

Samples (ms, ready): ${r.coldStart.map((c) => `${c.worker} [${c.readyMs.join(', ')}]`).join('; ')}.

![cold start](cold-start.svg)`);
  }
  if (r.probeLoad) {
    parts.push(`## e. Health-check load

One busy isolate (a request every 200 ms) over ${r.probeLoad[0]!.simulatedMinutes} simulated
minutes (the client's \`now\` option), real probes against the gateways' availability-API
emulation, every HTTP call counted by a \`fetch\` wrapper, next to the library's own
\`snapshot().stats\`. Refreshes are traffic-driven (stale-while-revalidate), so a quieter isolate
probes less: these are per-isolate upper bounds. The shared tier is an in-memory KV namespace
behind \`kvHealthCache\` (\`minWriteIntervalMs: 0\` because simulated minutes pass in
milliseconds), fed by a separate isolate's \`refreshAll()\` once a simulated minute (the cron
helper). \`probeDelayMs\` is 0 in this simulation (it changes how long a check takes, not how
many calls it makes).

${table(
  [
    'configuration',
    'availability calls / member / min (isolate)',
    '`stats.probes` / member / min',
    'refreshes / min',
    'KV reads / min',
    'cron: calls / member / min',
    'KV writes / min',
  ],
  r.probeLoad.map((p) => [
    p.name,
    p.isolateAvailabilityCallsPerMemberMinute,
    p.isolateProbesPerMemberMinute,
    p.isolateRefreshesPerMinute,
    p.isolateKvReadsPerMinute,
    p.cronAvailabilityCallsPerMemberMinute,
    p.kvWritesPerMinute,
  ]),
)}

For a fleet of N such isolates (availability calls per member per minute; the shared tier's
cost does not grow with N):

${table(
  ['configuration', ...ISOLATE_COUNTS.map((n) => `N = ${n}`)],
  r.probeLoad.map((p) => [p.name, ...ISOLATE_COUNTS.map((n) => round(fleetLoad(p, n)))]),
)}

![health-check load](probe-load.svg)`);
  }
  parts.push(`## Charts

The SVGs are drawn by bench/lib/svg.ts, a ~250-line helper written for this (line and grouped
bar charts only). No charting dependency: the two chart kinds needed are simple, the output is
deterministic text that diffs well in git, and the usual libraries either need a DOM or canvas
(Chart.js, Vega) or bring a dependency tree larger than this project.

## Reproduce

\`\`\`sh
npm run bench            # ~3-6 minutes; rewrites bench/RESULTS.md, results.json, *.svg
npm run bench -- --quick # shorter rounds, for trying changes (do not commit its output)
npm run bench -- --only=b # some sections only (a-e); prints JSON, writes no files
\`\`\`
`);
  return `${parts.join('\n\n')}\n`;
}
