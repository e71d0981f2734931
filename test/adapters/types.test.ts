import { Hono } from 'hono';
import { describe, expectTypeOf, it } from 'vitest';
import {
  type FailoverVariables,
  failover,
  statusHandler,
  type WithFailover,
} from '../../src/hono/index.js';
import type { FailoverRedis, MemberConfig } from '../../src/index.js';
import { withFailover as serverless } from '../../src/serverless/index.js';
import {
  type ExecutionContextLike,
  membersFromEnv,
  scheduledRefresh,
  withFailover as worker,
} from '../../src/workers/index.js';

/**
 * Type tests, checked by `tsc --noEmit` (this file is in the project) and run by vitest as
 * no-ops: a user's Hono app sees `c.var.redis` as a `FailoverRedis` without casts.
 */
type Bindings = { REDIS_MEMBERS: string; REDIS_TOKEN_A: string; LABEL: string };
const members: MemberConfig[] = [{ name: 'a', url: 'http://127.0.0.1:1', token: 't' }];

describe('types', () => {
  it('c.var.redis is a FailoverRedis in a chained app, with c.env still typed', () => {
    new Hono<{ Bindings: Bindings }>()
      .use(failover<{ Bindings: Bindings }>((c) => ({ members: membersFromEnv(c.env) })))
      .get('/', async (c) => {
        expectTypeOf(c.var.redis).toEqualTypeOf<FailoverRedis>();
        expectTypeOf(c.get('redis')).toEqualTypeOf<FailoverRedis>();
        expectTypeOf(c.env.LABEL).toEqualTypeOf<string>();
        expectTypeOf(c.var.redis.get<number>('k')).resolves.toEqualTypeOf<number | null>();
        expectTypeOf(c.var.redis.pinnedMember).toEqualTypeOf<string | undefined>();
        return c.text('ok');
      });
  });

  it('the options function sees typed bindings', () => {
    failover<{ Bindings: Bindings }>((c) => {
      expectTypeOf(c.env.REDIS_TOKEN_A).toEqualTypeOf<string>();
      // @ts-expect-error not a binding
      c.env.NOPE;
      return { members };
    });
  });

  it('an app that declares FailoverVariables (non-chained app.use)', () => {
    const app = new Hono<{ Bindings: Bindings; Variables: FailoverVariables }>();
    app.use(failover({ members }));
    app.get('/', (c) => {
      expectTypeOf(c.var.redis).toEqualTypeOf<FailoverRedis>();
      return c.text('ok');
    });
    app.get('/status', statusHandler());
  });

  it('per-route middleware types the route handler', () => {
    new Hono().get('/r', failover({ members }), (c) => {
      expectTypeOf(c.var.redis).toEqualTypeOf<FailoverRedis>();
      return c.text('ok');
    });
  });

  it('a custom variable name', () => {
    new Hono()
      .use(failover<{ Bindings: Bindings }, 'db'>({ members, variable: 'db' }))
      .get('/', (c) => {
        expectTypeOf(c.var.db).toEqualTypeOf<FailoverRedis>();
        // @ts-expect-error the variable is called db here
        c.var.redis;
        return c.text('ok');
      });
    // @ts-expect-error variable must match the declared name
    failover<{ Bindings: Bindings }, 'db'>({ members, variable: 'redis' });
  });

  it('without the middleware there is no c.var.redis', () => {
    new Hono().get('/', (c) => {
      // @ts-expect-error failover() is not mounted
      c.var.redis;
      return c.text('ok');
    });
  });

  it('keeps variables other middleware declared', () => {
    type Mine = { Bindings: Bindings; Variables: { user: string } };
    expectTypeOf<WithFailover<Mine>['Variables']>().toEqualTypeOf<
      { user: string } & FailoverVariables
    >();
  });

  it('serverless: the wrapper keeps the platform handler shapes', () => {
    // Deno.serve: (request, info) => Response | Promise<Response>
    const deno: (request: Request, info: { remoteAddr: unknown }) => Promise<Response> = serverless(
      async (_req, _ctx, redis) => Response.json(await redis.get('k')),
      { members },
    );
    // Calls below are only type-checked, never run.
    const typeOnly = (run: () => unknown) => void run;
    // Lambda-style callers pass only a Request.
    typeOnly(() => serverless(async () => new Response(), { members })(new Request('http://x/')));
    // Netlify: the context is required and typed.
    type NetlifyContext = { waitUntil(p: Promise<unknown>): void; geo: { city?: string } };
    const netlify = serverless(
      async (_req, context: NetlifyContext, redis) => {
        expectTypeOf(redis).toEqualTypeOf<FailoverRedis>();
        return new Response(context.geo.city);
      },
      { members },
    );
    // @ts-expect-error Netlify always passes its context
    typeOnly(() => netlify(new Request('http://x/')));
    void deno;
  });

  it('workers: fetch and scheduled fit a module worker', () => {
    const handler = {
      fetch: worker<Bindings>(async (_req, env, ctx, redis) => {
        expectTypeOf(env.LABEL).toEqualTypeOf<string>();
        expectTypeOf(ctx).toEqualTypeOf<ExecutionContextLike>();
        expectTypeOf(redis).toEqualTypeOf<FailoverRedis>();
        return new Response();
      }),
      scheduled: scheduledRefresh<Bindings>(),
    };
    expectTypeOf(handler.fetch).parameter(1).toEqualTypeOf<Bindings>();
  });
});
