/**
 * Test doubles for the adapter suites: a probe slow enough to tell "awaited before the
 * response" from "handed to waitUntil", and execution contexts that behave like the
 * platforms' (workerd's `waitUntil` throws "Illegal invocation" when called detached).
 */
import type { CustomProbe, FailoverOptions } from '../../src/index.js';
import type { LocalMember } from '../../src/testing/index.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A health probe that does not answer until `release()`, and counts the probes that
 * finished: "done before the response" vs "left to waitUntil" without racing the clock.
 */
export function gatedProbe() {
  let finished = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const probe: CustomProbe = async () => {
    await gate;
    finished += 1;
    return true;
  };
  return { probe, release: () => open(), finished: () => finished };
}

/** Settles with `promise`, recording whether it has settled yet. */
export function track<T>(promise: Promise<T>) {
  const state = { settled: false, promise };
  void promise.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

/** Like Workers' ExecutionContext: `waitUntil` only works when called as a method. */
export class StrictExecutionContext {
  readonly promises: Promise<unknown>[] = [];
  waitUntil(promise: Promise<unknown>): void {
    if (!(this instanceof StrictExecutionContext)) throw new TypeError('Illegal invocation');
    this.promises.push(promise);
  }
  passThroughOnException(): void {}
  async settle(): Promise<void> {
    await Promise.allSettled(this.promises);
  }
}

/** Client options for the shared cluster with a slow probe (every request starts cold). */
export function clusterOptions(
  members: LocalMember[],
  probe: CustomProbe,
  extra: Partial<FailoverOptions> = {},
): FailoverOptions {
  return {
    members,
    timeoutMs: 1000,
    ...extra,
    health: { probe, probeTimeoutMs: 5000, intervalMs: 60_000, ...extra.health },
  };
}
