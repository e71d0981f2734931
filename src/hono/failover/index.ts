/**
 * `failover()`: Hono middleware that gives every request `c.var.redis`, a client bound to that
 * request (member pinned after its first command, `request.cf` for proximity, the client's
 * disconnect signal, an optional request budget, background checks kept alive by
 * `c.executionCtx.waitUntil`).
 */
import type { Context, Env, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { FailoverRedis } from '../../client.js';
import type { RequestHints } from '../../selector.js';
import {
  type AdapterSettings,
  bindRequest,
  type ClientSource,
  clientFor,
  hasWaitUntil,
  platformHints,
  validateSettings,
  type WaitUntilLike,
} from '../../serverless/adapter.js';

/** The context variables `failover()` sets: `{ redis: FailoverRedis }` by default. */
export type FailoverVariables<K extends string = 'redis'> = { [P in K]: FailoverRedis };

export interface FailoverMiddlewareSettings<E extends Env = Env, K extends string = 'redis'>
  extends AdapterSettings {
  /** Name of the context variable. Default `redis`. */
  variable?: K;
  /**
   * Proximity hints for a request. Default: `request.cf` (Cloudflare) or Netlify's
   * `context.geo` (Hono's Netlify adapter puts the context in `c.env.context`).
   */
  hints?: (c: Context<E>) => RequestHints | undefined;
}

/** Client options (or `{ client }`) plus the middleware's own settings. */
export type FailoverMiddlewareOptions<
  E extends Env = Env,
  K extends string = 'redis',
> = ClientSource & FailoverMiddlewareSettings<E, K>;

/** Options, or a function of the context that returns them (members usually come from `c.env`). */
export type FailoverMiddlewareInput<E extends Env = Env, K extends string = 'redis'> =
  | FailoverMiddlewareOptions<E, K>
  | ((c: Context<E>) => FailoverMiddlewareOptions<E, K>);

/** The middleware's `Env`: yours, plus the variable it sets. */
export type WithFailover<E extends Env, K extends string = 'redis'> = {
  // Not `E['Bindings']`, which may be undefined: under exactOptionalPropertyTypes that is no Env.
  Bindings: E extends { Bindings: infer B extends object } ? B : object;
  Variables: (E['Variables'] extends object ? E['Variables'] : Record<never, never>) &
    FailoverVariables<K>;
};

const DEFAULT_VARIABLE = 'redis';

/** The context's waitUntil owner: Workers' ExecutionContext, or Netlify's context. */
function waitUntilOwner(c: Context): WaitUntilLike | undefined {
  try {
    // Throws "This context has no ExecutionContext" on Node, Vercel, app.request() without ctx.
    const ctx: unknown = c.executionCtx;
    if (hasWaitUntil(ctx)) return ctx;
  } catch {
    // No execution context: fall through to Netlify's, then to awaiting before the response.
  }
  const netlify = (c.env as { context?: unknown } | undefined)?.context;
  return hasWaitUntil(netlify) ? netlify : undefined;
}

/**
 * @example
 * ```ts
 * // Chained, so the app's type has `c.var.redis` (or declare `Variables: FailoverVariables`).
 * const app = new Hono<{ Bindings: Bindings }>().use(
 *   failover<{ Bindings: Bindings }>((c) => ({ members: membersFromEnv(c.env) })),
 * );
 * app.get('/:key', async (c) => c.json(await c.var.redis.get(c.req.param('key'))));
 * ```
 */
export function failover<E extends Env = Env, K extends string = 'redis'>(
  options: FailoverMiddlewareInput<E, K>,
): MiddlewareHandler<WithFailover<E, K>> {
  // Static options: build and check once, so a bad config fails at startup, not per request.
  if (typeof options !== 'function') {
    validateSettings(options);
    clientFor(options);
  }
  return createMiddleware<WithFailover<E, K>>(async (c, next) => {
    const context = c as unknown as Context<E>;
    const resolved = typeof options === 'function' ? options(context) : options;
    if (typeof options === 'function') validateSettings(resolved);
    const client = clientFor(resolved);
    const request = c.req.raw;
    const netlify = (c.env as { context?: unknown } | undefined)?.context;
    const bound = bindRequest(client, resolved, {
      hints: resolved.hints ? resolved.hints(context) : platformHints(request, netlify),
      signal: request.signal,
      owner: waitUntilOwner(c),
    });
    c.set(resolved.variable ?? (DEFAULT_VARIABLE as K), bound.redis as never);
    try {
      await next();
    } finally {
      // Without a platform waitUntil, checks this request started finish before it returns.
      await bound.flush();
    }
    bound.decorate(c.res, (copy) => {
      c.res = copy;
      return c.res;
    });
    // No bound.hold(c.res) here: Hono mostly runs as a long-lived server, where background
    // work outlives the response anyway, and piping every body through a stream cost a Node
    // server ~40 % of its requests per second on small JSON responses (the serverless wrapper,
    // for platforms that freeze after the response, does hold a streamed body).
  });
}
