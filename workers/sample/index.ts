/**
 * Sample worker: a small key-value API on top of a Redis Active-Active database, with
 * request-scoped failover between its members. `wrangler.toml` at the repository root points
 * here; docs/sample-worker.md shows how to run it against `npm run cluster`.
 *
 * In your own worker, import from `redis-edge-failover/hono` and `redis-edge-failover/workers`;
 * the relative imports below only let this repository run the sample without a build.
 */
import { errors as upstashErrors } from '@upstash/redis';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type FailoverVariables, failover, statusHandler } from '../../src/hono/index.js';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  ConfigError,
  FailoverError,
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
  /** `"false"`: do not pin a request's commands to one member (default: pinned). */
  SAMPLE_PIN?: string;
  /** Shared health, written by the cron trigger. */
  HEALTH?: KVNamespaceLike;
}

type AppEnv = { Bindings: Bindings; Variables: FailoverVariables };

/** Constant, so `failoverFromEnv` builds one client per isolate instead of one per request. */
/**
 * Replies as stored: @upstash/redis parses string replies as JSON by default, so a stored `null`
 * would read as a missing key, `123` as a number and `"x"` without its quotes.
 */
const CLIENT_OPTIONS: WorkerOptions<Bindings> = { automaticDeserialization: false };

const MAX_TRACE_STEPS = 50;
const MAX_TRACE_PAUSE_MS = 2000;
/**
 * Largest value `PUT /kv/:key` takes, in bytes. A body the gateway (or Upstash) refuses for its
 * size can look like a dropped connection, which counts against the member: refused here, it
 * never reaches Redis.
 */
const MAX_VALUE_BYTES = 1024 * 1024;
/** Largest `ttl` (seconds): Redis refuses an expiry whose milliseconds overflow; this stays under. */
const MAX_TTL_SECONDS = Number.MAX_SAFE_INTEGER;

/** A JSON 400 naming the query parameter at fault. */
class BadRequest extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** `ttl` from the query: absent, or a whole number of seconds from 1 to MAX_TTL_SECONDS. */
function ttlOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ttl = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    throw new BadRequest(
      'ttl',
      `ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`,
    );
  }
  return ttl;
}

export const app = new Hono<AppEnv>();

app.use(
  '*',
  failover<AppEnv>((c) => ({
    client: failoverFromEnv(c.env, CLIENT_OPTIONS),
    memberHeader: true,
    serverTiming: true,
    // `SAMPLE_PIN=false` lets each command pick a member, to compare with pinned requests.
    pin: c.env.SAMPLE_PIN !== 'false',
  })),
);

app.get('/', (c) => c.html(statusPage()));

app.get('/status', statusHandler());

app.get('/kv/:key', async (c) => {
  const key = c.req.param('key');
  const value = await c.var.redis.get<string>(key);
  // `servedBy`, not `pinnedMember`: it names the member with pinning off too.
  const member = c.var.redis.servedBy;
  return c.json({ key, value, member }, value === null ? 404 : 200);
});

app.put(
  '/kv/:key',
  // Content-Length first; a body without one is counted as it is read.
  bodyLimit({
    maxSize: MAX_VALUE_BYTES,
    onError: (c) =>
      c.json(
        {
          error: 'payload-too-large',
          message: `the value is larger than ${MAX_VALUE_BYTES} bytes`,
        },
        413,
      ),
  }),
  async (c) => {
    const key = c.req.param('key');
    const ttl = ttlOf(c.req.query('ttl'));
    const value = await c.req.text();
    // SET is idempotent: if a member dies after receiving it, running it again elsewhere is safe.
    if (ttl !== undefined) await c.var.redis.set(key, value, { ex: ttl });
    else await c.var.redis.set(key, value);
    return c.json({ key, stored: true, member: c.var.redis.servedBy });
  },
);

app.delete('/kv/:key', async (c) => {
  const key = c.req.param('key');
  const deleted = await c.var.redis.del(key);
  return c.json({ key, deleted, member: c.var.redis.servedBy });
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
    return c.json({ name, value, member: c.var.redis.servedBy });
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
    steps.push({ value, member: c.var.redis.servedBy, at: Date.now() });
  }
  return c.json({ key, steps });
});

app.onError((error, c) => {
  const body = (status: ContentfulStatusCode, code: string) =>
    c.json({ error: code, message: error.message }, status);
  if (error instanceof BadRequest) {
    return c.json({ error: 'bad-request', field: error.field, message: error.message }, 400);
  }
  // Every member failed (or the deadline ran out): the database is unreachable from here.
  if (error instanceof AllMembersFailedError) return body(503, 'all-members-failed');
  // A member rejected our credentials: a configuration problem, not an outage.
  if (error instanceof MemberConfigError) return body(502, 'member-config');
  // Bad env vars: the message names the variable (never its value).
  if (error instanceof ConfigError) return body(500, 'config');
  // Redis refused the command (WRONGTYPE, "value is not an integer", an INCR overflow): the
  // request asked for something the data does not allow. Its message is Redis' own. This
  // library's errors are FailoverErrors, never UpstashErrors; the check says so anyway.
  if (
    error instanceof upstashErrors.UpstashError &&
    !(error instanceof upstashErrors.UpstashJSONParseError) &&
    !(error instanceof FailoverError)
  ) {
    return body(400, 'redis');
  }
  console.error(error);
  return c.json({ error: 'internal' }, 500);
});

export default {
  fetch: app.fetch,
  // Cron Trigger: probe every member, publish health and the active member to KV (HEALTH).
  scheduled: scheduledRefresh<Bindings>(),
};
