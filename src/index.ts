/**
 * redis-edge-failover: client-side failover between the members of a Redis Active-Active
 * database, over the Upstash REST protocol, for edge and serverless runtimes.
 */
export { createFailoverRedis, FailoverRedis, hintsFromCf, type ScopeOptions } from './client.js';
export {
  type AvailabilityConfig,
  type CircuitOptions,
  DEFAULTS,
  type FailoverOptions,
  type HealthOptions,
  type MemberConfig,
} from './config.js';
export {
  AllMembersFailedError,
  AmbiguousWriteError,
  ConfigError,
  FailoverError,
  type MemberAttemptFailure,
  MemberConfigError,
  MemberUnavailableError,
} from './errors.js';
export type {
  FailoverEvents,
  FailoverListener,
  FailureEvent,
  HealthEvent,
  HealthStatus,
  SwitchEvent,
  SwitchReason,
} from './events.js';
export type { ProbePolicy } from './health/policy.js';
export type { CustomProbe, ProbeVerdict } from './health/probes.js';
export {
  type CacheApiHealthCacheOptions,
  type CacheLike,
  cacheApiHealthCache,
  type HealthCache,
  type KVNamespaceLike,
  type KvHealthCacheOptions,
  kvHealthCache,
  type SharedHealth,
  type SharedMemberHealth,
} from './health/shared.js';
export { type HealthStats, resetHealthStores, type StoreSnapshot } from './health/store.js';
export type { RequestScope } from './requester.js';
export type { MemberLocation, RequestHints } from './selector.js';
export { classifyCommand, type SafetyClass } from './transport/commands.js';
