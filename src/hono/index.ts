/**
 * `redis-edge-failover/hono`: Hono middleware for request-scoped failover (`failover()`) and
 * a health status route (`statusHandler()`). Runs wherever Hono runs: Workers, Vercel,
 * Netlify, Deno, Lambda, Node.
 */

export {
  ADAPTER_DEFAULTS,
  type AdapterSettings,
  type ClientSource,
} from '../serverless/adapter.js';
export {
  type FailoverMiddlewareInput,
  type FailoverMiddlewareOptions,
  type FailoverMiddlewareSettings,
  type FailoverVariables,
  failover,
  type WithFailover,
} from './failover/index.js';
export {
  publicSnapshot,
  STATUS_DEFAULTS,
  type StatusHandlerInput,
  type StatusHandlerOptions,
  type StatusHandlerSettings,
  statusHandler,
} from './status/index.js';
