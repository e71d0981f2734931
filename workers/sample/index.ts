/**
 * Sample worker: a small key-value API on top of a Redis Active-Active database, with
 * request-scoped failover between its members. `wrangler.toml` at the repository root points
 * here; docs/sample-worker.md shows how to run it against `npm run cluster`.
 *
 * In your own worker, import from `redis-edge-failover/hono` and `redis-edge-failover/workers`;
 * the relative imports below only let this repository run the sample without a build.
 */
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type FailoverVariables, failover, statusHandler } from '../../src/hono/index.js';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  ConfigError,
  MemberConfigError,
} from '../../src/index.js';
import {
  failoverFromEnv,
  type KVNamespaceLike,
  scheduledRefresh,
  type WorkerOptions,
} from '../../src/workers/index.js';
import { statusPage } from './page.js';

/** Bindings from wrangler.toml `[vars]`, `.dev.vars` / secrets, and the KV namespace. */
export interface Bindings {
  /** JSON array of members: name, url, weight, location. Tokens are separate secrets. */
  REDIS_MEMBERS: string;
  /** `REDIS_TOKEN_<NAME>` per member, tuning vars (`REDIS_GRACE_PERIOD_MS`...). */
  [variable: string]: unknown;
  /** Shared health, written by the cron trigger. */
  HEALTH?: KVNamespaceLike;
}

type AppEnv = { Bindings: Bindings; Variables: FailoverVariables };

/** Constant, so `failoverFromEnv` builds one client per isolate instead of one per request. */
const CLIENT_OPTIONS: WorkerOptions<Bindings> = {};

const MAX_TRACE_STEPS = 50;
const MAX_TRACE_PAUSE_MS = 2000;

export const app = new Hono<AppEnv>();

app.use(
  '*',
  failover<AppEnv>((c) => ({
    client: failoverFromEnv(c.env, CLIENT_OPTIONS),
    memberHeader: true,
    serverTiming: true,
  })),
);

app.get('/', (c) => c.html(statusPage()));

app.get('/status', statusHandler());

app.get('/kv/:key', async (c) => {
  const key = c.req.param('key');
  const value = await c.var.redis.get<unknown>(key);
  const member = c.var.redis.pinnedMember;
  return c.json({ key, value, member }, value === null ? 404 : 200);
});

app.put('/kv/:key', async (c) => {
  const key = c.req.param('key');
  const value = await c.req.text();
  const ttl = Number(c.req.query('ttl'));
  // SET is idempotent: if a member dies after receiving it, running it again elsewhere is safe.
  if (Number.isInteger(ttl) && ttl > 0) await c.var.redis.set(key, value, { ex: ttl });
  else await c.var.redis.set(key, value);
  return c.json({ key, stored: true, member: c.var.redis.pinnedMember });
});

app.delete('/kv/:key', async (c) => {
  const key = c.req.param('key');
  const deleted = await c.var.redis.del(key);
  return c.json({ key, deleted, member: c.var.redis.pinnedMember });
});

/**
 * INCR is not idempotent. When a member may have run it before failing (timeout, connection
 * lost mid-request), the client refuses to run it again on another member, because the counter
 * could be incremented twice. The route says so instead of guessing.
 */
app.post('/counter/:name', async (c) => {
  const name = c.req.param('name');
  try {
    const value = await c.var.redis.incr(`counter:${name}`);
    return c.json({ name, value, member: c.var.redis.pinnedMember });
  } catch (error) {
    if (!(error instanceof AmbiguousWriteError)) throw error;
    return c.json(
      {
        error: 'ambiguous-write',
        name,
        member: error.member,
        command: error.command,
        retried: false,
        message:
          `INCR may or may not have been applied on member "${error.member}" before it failed. ` +
          'It was not retried on another member, because that could count twice. ' +
          'Read the counter before deciding whether to send the request again.',
      },
      409,
    );
  }
});

/**
 * Runs `count` GETs of one key, pausing between them, and reports which member served each.
 * All of them go to one member (the request is pinned) unless that member fails mid-request.
 */
app.get('/trace/:key', async (c) => {
  const key = c.req.param('key');
  const count = Math.min(MAX_TRACE_STEPS, Math.max(1, Number(c.req.query('count') ?? 3) || 3));
  const pauseMs = Math.min(MAX_TRACE_PAUSE_MS, Math.max(0, Number(c.req.query('pauseMs')) || 0));
  const steps: Array<{ value: unknown; member: string | undefined; at: number }> = [];
  for (let i = 0; i < count; i++) {
    if (i > 0 && pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const value = await c.var.redis.get<unknown>(key);
    steps.push({ value, member: c.var.redis.pinnedMember, at: Date.now() });
  }
  return c.json({ key, steps });
});

app.onError((error, c) => {
  const body = (status: ContentfulStatusCode, code: string) =>
    c.json({ error: code, message: error.message }, status);
  // Every member failed (or the deadline ran out): the database is unreachable from here.
  if (error instanceof AllMembersFailedError) return body(503, 'all-members-failed');
  // A member rejected our credentials: a configuration problem, not an outage.
  if (error instanceof MemberConfigError) return body(502, 'member-config');
  // Bad env vars: the message names the variable (never its value).
  if (error instanceof ConfigError) return body(500, 'config');
  console.error(error);
  return c.json({ error: 'internal' }, 500);
});

export default {
  fetch: app.fetch,
  // Cron Trigger: probe every member, publish health and the active member to KV (HEALTH).
  scheduled: scheduledRefresh<Bindings>(),
};
