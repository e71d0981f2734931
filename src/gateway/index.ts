/**
 * `redis-edge-failover/gateway` (Node only): an Upstash-REST-compatible HTTP gateway in front
 * of a RESP Redis, with an emulation of the Redis Software availability API.
 */

export { NOT_SENT_HEADER, REFUSED_HEADER } from '../transport/types.js';
export { type ParsedCli, parseCli, USAGE } from './cli-args.js';
export { type RunningGateway, startGateway } from './gateway.js';
export { DEFAULTS, GatewayConfigError } from './options.js';
export { backendAclRules } from './policy.js';
export type {
  AvailabilityEmulationOptions,
  AvailabilityOverride,
  GatewayHandle,
  GatewayOptions,
} from './types.js';
