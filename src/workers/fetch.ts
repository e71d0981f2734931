/**
 * `withFailover(handler, options)`: a module worker `fetch` whose handler gets a
 * request-scoped client as a fourth argument. The client is built from `env` (members JSON plus
 * secret tokens, see `membersFromEnv`) unless you pass members or a client yourself.
 */
import type { FailoverRedis } from '../client.js';
import type { FailoverOptions } from '../config.js';
import type { RequestHints } from '../selector.js';
import {
  ADAPTER_KEYS,
  type AdapterSettings,
  bindRequest,
  type ClientSource,
  clientFor,
  platformHints,
  validateSettings,
  without,
} from '../serverless/adapter.js';
import { type EnvOptions, failoverOptionsFromEnv } from './env.js';
import type { ExecutionContextLike, WorkerFetch } from './types.js';

export interface WorkerSettings<Env> extends AdapterSettings, EnvOptions {
  /** Proximity hints for a request. Default: `request.cf` (colo, latitude, longitude). */
  hints?: (request: Request, env: Env) => RequestHints | undefined;
}

/**
 * Client options: any `FailoverOptions` (members default to `env`, see
 * `failoverOptionsFromEnv`), or `{ client }`, plus the adapter settings.
 */
export type WorkerOptions<Env> = WorkerSettings<Env> &
  (Partial<FailoverOptions> | { client: FailoverRedis });

/** Options, or a function of `env` returning them. */
export type WorkerInput<Env> = WorkerOptions<Env> | ((env: Env) => WorkerOptions<Env>);

export type WorkerHandler<Env> = (
  request: Request,
  env: Env,
  ctx: ExecutionContextLike,
  redis: FailoverRedis,
) => Response | Promise<Response>;

/** Turns worker options into a client source, reading `env` for what they leave out. */
export function workerClientSource<Env>(env: Env, options: WorkerOptions<Env>): ClientSource {
  if ('client' in options && options.client) return { client: options.client };
  const base = without(options as Partial<FailoverOptions>, [
    ...ADAPTER_KEYS,
    'membersVar',
    'tokenPrefix',
    'availabilityPasswordPrefix',
    'allowInlineSecrets',
    'tuningPrefix',
    'healthKv',
    // scheduledRefresh's own, when one options object serves both
    'crons',
    'onRefresh',
    'onPublishError',
  ]);
  return failoverOptionsFromEnv(env, options, base);
}

const NO_OPTIONS: WorkerOptions<unknown> = {};

/**
 * Clients per (`env`, options object): workerd hands the same `env` to every request of an
 * isolate, so this builds one client per isolate and options, and a new one when bindings
 * change (which gives a new `env`). Health is shared either way (it is keyed by member URLs).
 */
const perEnv = new WeakMap<object, WeakMap<object, FailoverRedis>>();

/**
 * The client for `env`: members and tuning from env vars (see `failoverOptionsFromEnv`),
 * everything else from `options`. Cached per `env` and `options` object, so pass a constant.
 *
 * @example Hono
 * ```ts
 * app.use(failover<{ Bindings: Env }>((c) => ({ client: failoverFromEnv(c.env), memberHeader: true })));
 * ```
 */
export function failoverFromEnv<Env>(
  env: Env,
  options: WorkerOptions<Env> = NO_OPTIONS as WorkerOptions<Env>,
): FailoverRedis {
  if (typeof env !== 'object' || env === null) {
    return clientFor(workerClientSource(env, options));
  }
  let byOptions = perEnv.get(env);
  if (!byOptions) {
    byOptions = new WeakMap();
    perEnv.set(env, byOptions);
  }
  let client = byOptions.get(options);
  if (!client) {
    client = clientFor(workerClientSource(env, options));
    byOptions.set(options, client);
  }
  return client;
}

/**
 * @example
 * ```ts
 * export default {
 *   fetch: withFailover(async (request, env, ctx, redis) => Response.json(await redis.get('k')), {
 *     memberHeader: true,
 *   }),
 *   scheduled: scheduledRefresh(),
 * };
 * ```
 */
export function withFailover<Env = Record<string, unknown>>(
  handler: WorkerHandler<Env>,
  options: WorkerInput<Env> = {},
): WorkerFetch<Env> {
  if (typeof options !== 'function') validateSettings(options);
  return async (request, env, ctx) => {
    const resolved = typeof options === 'function' ? options(env) : options;
    if (typeof options === 'function') validateSettings(resolved);
    // Static options: one client per isolate. A function of env: a client per call.
    const client =
      typeof options === 'function'
        ? clientFor(workerClientSource(env, resolved))
        : failoverFromEnv(env, resolved);
    const bound = bindRequest(client, resolved, {
      hints: resolved.hints ? resolved.hints(request, env) : platformHints(request),
      signal: request.signal,
      // Kept as the owner object: `ctx.waitUntil` detached from ctx is an Illegal invocation.
      owner: ctx,
    });
    let response: Response;
    try {
      response = await handler(request, env, ctx, bound.redis);
    } finally {
      // A no-op with a ctx (its waitUntil took the work); awaits when ctx is missing (tests).
      await bound.flush();
    }
    return bound.hold(bound.decorate(response));
  };
}
