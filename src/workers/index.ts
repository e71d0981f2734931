/**
 * `redis-edge-failover/workers`: Cloudflare module-worker helpers. Build the client from
 * `env` (`membersFromEnv`, `failoverOptionsFromEnv`), wrap `fetch` (`withFailover`), and
 * publish shared health from a Cron Trigger (`scheduledRefresh`).
 */

export type { KVNamespaceLike } from '../health/shared.js';
export { ADAPTER_DEFAULTS, type AdapterSettings } from '../serverless/adapter.js';
export {
  ENV_DEFAULTS,
  type EnvOptions,
  envSuffix,
  failoverOptionsFromEnv,
  healthKvFromEnv,
  membersFromEnv,
} from './env.js';
export {
  failoverFromEnv,
  type WorkerHandler,
  type WorkerInput,
  type WorkerOptions,
  type WorkerSettings,
  withFailover,
  workerClientSource,
} from './fetch.js';
export {
  type ScheduledRefreshHooks,
  type ScheduledRefreshInput,
  type ScheduledRefreshOptions,
  scheduledRefresh,
} from './scheduled.js';
export type {
  ExecutionContextLike,
  ScheduledControllerLike,
  WorkerFetch,
  WorkerScheduled,
} from './types.js';
