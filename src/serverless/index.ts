/**
 * `redis-edge-failover/serverless`: `withFailover(handler, options)` for Web-standard
 * `(request, context?) => Response` handlers: Vercel (Edge or Node), Netlify Functions and
 * Edge Functions, Deno Deploy, Supabase, AWS Lambda behind a Request adapter, Cloudflare.
 *
 * Background work (health checks the client starts while serving) goes to the platform's
 * `waitUntil` when there is one, found in this order:
 *   1. `options.waitUntil` (Vercel's `waitUntil` from `@vercel/functions`, Next's `after`,
 *      Supabase's `EdgeRuntime.waitUntil`);
 *   2. the first argument after the request with a `waitUntil` method: Netlify's `context`,
 *      Vercel Edge's `context`, Cloudflare's `ctx` (for `(request, env, ctx)`), called as a
 *      method because a detached `ctx.waitUntil` throws "Illegal invocation" in workerd;
 *   3. none (AWS Lambda, Deno Deploy, plain Node): the work is collected and awaited
 *      (bounded by `flushTimeoutMs`) before the response is returned, because Lambda freezes
 *      the environment once the handler returns and Deno may stop an idle instance.
 */
import type { FailoverRedis } from '../client.js';
import type { RequestHints } from '../selector.js';
import {
  type AdapterSettings,
  bindRequest,
  type ClientSource,
  clientFor,
  hasWaitUntil,
  platformHints,
  validateSettings,
} from './adapter.js';

export {
  ADAPTER_DEFAULTS,
  type AdapterSettings,
  Background,
  type ClientSource,
  platformHints,
  type WaitUntilLike,
} from './adapter.js';

export interface ServerlessSettings<C = unknown> extends AdapterSettings {
  /**
   * Proximity hints for a request. Default: Cloudflare's `request.cf`, Netlify's
   * `context.geo`. On Vercel pass `(req) => { const g = geolocation(req); ... }`; on Lambda or
   * Deno Deploy, the function's own region is the better hint (it is where Redis calls start).
   */
  hints?: (request: Request, context: C | undefined) => RequestHints | undefined;
}

export type ServerlessOptions<C = unknown> = ClientSource & ServerlessSettings<C>;

/** Options, or a function of the request (and platform context) that returns them. */
export type ServerlessInput<C = unknown> =
  | ServerlessOptions<C>
  | ((request: Request, context: C | undefined) => ServerlessOptions<C>);

/** Your handler: the platform's arguments, plus the request-scoped client. */
export type ServerlessHandler<C = unknown> = (
  request: Request,
  context: C,
  redis: FailoverRedis,
) => Response | Promise<Response>;

/**
 * The wrapped handler: same shape as yours, minus `redis`. The context is optional when your
 * handler accepts `undefined` there (Deno, Lambda); extra platform arguments (Cloudflare's
 * `ctx` after `env`) are accepted and searched for `waitUntil`.
 */
export type WrappedHandler<C = unknown> = (
  request: Request,
  ...rest: undefined extends C
    ? [context?: C, ...platform: unknown[]]
    : [context: C, ...platform: unknown[]]
) => Promise<Response>;

/**
 * @example Netlify
 * ```ts
 * export default withFailover(async (req, context: Context, redis) =>
 *   Response.json(await redis.get('greeting')),
 *   (req) => ({ members: JSON.parse(Netlify.env.get('REDIS_MEMBERS')!) }));
 * ```
 */
export function withFailover<C = unknown>(
  handler: ServerlessHandler<C>,
  options: ServerlessInput<C>,
): WrappedHandler<C> {
  if (typeof options !== 'function') {
    validateSettings(options);
    clientFor(options);
  }
  return async (request: Request, ...rest: unknown[]): Promise<Response> => {
    const context = rest[0] as C | undefined;
    const resolved = typeof options === 'function' ? options(request, context) : options;
    if (typeof options === 'function') validateSettings(resolved);
    const client = clientFor(resolved);
    const owner = rest.find(hasWaitUntil);
    const bound = bindRequest(client, resolved, {
      hints: resolved.hints ? resolved.hints(request, context) : platformHints(request, context),
      signal: request.signal,
      owner,
    });
    let response: Response;
    try {
      response = await handler(request, context as C, bound.redis);
    } finally {
      await bound.flush();
    }
    return bound.hold(bound.decorate(response));
  };
}
