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

/** How many of `n` must agree: `all` of them, a `majority`, otherwise (`any`, `one`) one. */
export const quorum = (policy: string, n: number): number =>
  policy === 'all' ? n : policy === 'majority' ? Math.floor(n / 2) + 1 : 1;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runProbes(
  probe: Probe,
  ctx: ProbeContext,
  plan: ProbePlan,
): Promise<ProbeVerdict> {
  const needed = quorum(plan.policy, plan.probes);
  let passes = 0;
  let fails = 0;
  let verdict: ProbeVerdict | undefined;
  // What a failed plan reports: a real answer from the source rather than its being unreachable
  // (an unreachable source makes the checker fall back to PING).
  let failed: ProbeVerdict | undefined;
  for (let i = 0; i < plan.probes; i++) {
    if (i > 0 && plan.probeDelayMs > 0) await sleep(plan.probeDelayMs);
    verdict = await probe(ctx);
    // A misconfigured source gives no verdict; asking again will not change that. An unreachable
    // one is one failed probe: a blip must not decide a plan of several (Jedis counts it so).
    if (verdict.configProblem) return verdict;
    if (!verdict.healthy && (failed === undefined || failed.unreachable)) failed = verdict;
    // Each probe can only settle the side it counted for.
    if (verdict.healthy ? ++passes >= needed : plan.probes - ++fails < needed) {
      return verdict.healthy ? verdict : failed!;
    }
  }
  return verdict!;
}
