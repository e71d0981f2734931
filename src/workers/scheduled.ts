/**
 * `scheduledRefresh(options)`: a Cron Trigger handler that probes every member once
 * (`refreshAll()`), picks the active member and publishes both to KV, so request paths read
 * one shared decision instead of probing from thousands of isolates (design 4.5).
 *
 * A failed publish (KV answering 429, say) does not fail the cron: the verdicts are already
 * applied in this isolate, the record in KV stays the previous one until the next run, and the
 * error goes to `onPublishError` (default: `console.error`). Failing the invocation would only
 * make Cloudflare count it as an error, and a retry would probe every member again.
 */

import { ConfigError } from '../errors.js';
import type { StoreSnapshot } from '../health/store.js';
import { clientFor } from '../serverless/adapter.js';
import { ENV_DEFAULTS } from './env.js';
import { type WorkerOptions, workerClientSource } from './fetch.js';
import type { ScheduledControllerLike, WorkerScheduled } from './types.js';

export interface ScheduledRefreshHooks<Env> {
  /** Only refresh for these cron expressions (a worker may have several crons). Default: all. */
  crons?: string[];
  /** Called with the snapshot after publishing (logging, metrics). */
  onRefresh?: (
    snapshot: StoreSnapshot,
    env: Env,
    controller: ScheduledControllerLike,
  ) => void | Promise<void>;
  /**
   * Called when publishing to the shared tier failed (KV rejected the write). The refresh
   * still counts: its verdicts apply here and `onRefresh` runs after this. Default: logs the
   * error with `console.error`. Throw from it to fail the invocation anyway.
   */
  onPublishError?: (
    error: unknown,
    env: Env,
    controller: ScheduledControllerLike,
  ) => void | Promise<void>;
}

export type ScheduledRefreshOptions<Env> = WorkerOptions<Env> & ScheduledRefreshHooks<Env>;

/** Options, or a function of `env` returning them. */
export type ScheduledRefreshInput<Env> =
  | ScheduledRefreshOptions<Env>
  | ((env: Env) => ScheduledRefreshOptions<Env>);

/**
 * @example
 * ```ts
 * export default { fetch: app.fetch, scheduled: scheduledRefresh() };
 * // wrangler.toml: [triggers] crons = ["* * * * *"], and a KV binding HEALTH
 * ```
 */
export function scheduledRefresh<Env = Record<string, unknown>>(
  options: ScheduledRefreshInput<Env> = {},
): WorkerScheduled<Env> {
  return async (controller, env) => {
    const resolved = typeof options === 'function' ? options(env) : options;
    if (resolved.crons && !resolved.crons.includes(controller.cron)) return;
    // A hook of this handler, not a client option.
    const { onPublishError = logPublishError, ...clientOptions } = resolved;
    const source = workerClientSource(env, clientOptions as WorkerOptions<Env>);
    if ('client' in source && !clientFor(source).sharesHealth) {
      // Publishing would silently do nothing every run.
      throw new ConfigError('client', 'has no health.cache: scheduledRefresh publishes there');
    }
    if (!('client' in source) && source.health?.cache === undefined) {
      const binding =
        resolved.healthKv === false ? undefined : (resolved.healthKv ?? ENV_DEFAULTS.healthKv);
      throw new ConfigError(
        binding ? `env.${binding}` : 'health.cache',
        binding
          ? `is not bound; scheduledRefresh publishes shared health to this KV namespace (add a [[kv_namespaces]] binding "${binding}")`
          : 'is required: scheduledRefresh publishes shared health there',
      );
    }
    // Published to the shared tier by refreshAll itself; the cron's own promise keeps it alive.
    const client = clientFor(source);
    let snapshot: StoreSnapshot;
    try {
      snapshot = await client.refreshAll();
    } catch (error) {
      // refreshAll probes (a probe never throws: a failure is a verdict), selects, and then
      // publishes, so what rejects is the publish, after the verdicts were applied.
      await onPublishError(error, env, controller);
      snapshot = client.snapshot();
    }
    await resolved.onRefresh?.(snapshot, env, controller);
  };
}

function logPublishError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`scheduledRefresh: publishing shared health failed (${message}); next run retries`);
}
