/**
 * `scheduledRefresh(options)`: a Cron Trigger handler that probes every member once
 * (`refreshAll()`), picks the active member and publishes both to KV, so request paths read
 * one shared decision instead of probing from thousands of isolates (design 4.5).
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
    const source = workerClientSource(env, resolved);
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
    const snapshot = await clientFor(source).refreshAll();
    await resolved.onRefresh?.(snapshot, env, controller);
  };
}
