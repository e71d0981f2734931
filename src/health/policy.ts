/**
 * Runs a probe several times and decides by policy (design 4.5, as in Jedis and redis-py):
 * `all` probes must pass, a `majority`, or `any` one. Stops as soon as the verdict is certain.
 */
import type { Probe, ProbeContext, ProbeVerdict } from './probes.js';

export type ProbePolicy = 'all' | 'majority' | 'any';

export interface ProbePlan {
  probes: number;
  probeDelayMs: number;
  policy: ProbePolicy;
}

function needed(plan: ProbePlan): number {
  if (plan.policy === 'any') return 1;
  if (plan.policy === 'all') return plan.probes;
  return Math.floor(plan.probes / 2) + 1;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runProbes(
  probe: Probe,
  ctx: ProbeContext,
  plan: ProbePlan,
): Promise<ProbeVerdict> {
  const passesNeeded = needed(plan);
  let passes = 0;
  let fails = 0;
  let lastPass: ProbeVerdict | undefined;
  let lastFail: ProbeVerdict | undefined;
  for (let i = 0; i < plan.probes; i++) {
    if (i > 0 && plan.probeDelayMs > 0) await sleep(plan.probeDelayMs);
    const verdict = await probe(ctx);
    // A misconfigured source gives no verdict; asking again will not change that.
    if (verdict.configProblem || verdict.unreachable) return verdict;
    if (verdict.healthy) {
      passes += 1;
      lastPass = verdict;
    } else {
      fails += 1;
      lastFail = verdict;
    }
    if (passes >= passesNeeded) return lastPass!;
    if (plan.probes - fails < passesNeeded) return lastFail!;
  }
  return lastFail ?? lastPass!;
}
