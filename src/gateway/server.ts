import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Context, Hono } from 'hono';
import { presentedToken, type Role, type TokenAuth } from './auth.js';
import type { BackendPool, Command } from './backend.js';
import type { CommandFlags } from './command-flags.js';
import { encodeReply, jsonText, wantsBase64 } from './encoding.js';
import { badRequest, GatewayError, methodNotAllowed, notFound, unauthorized } from './errors.js';
import { parseJson, pathCommand, readBody, toBatch, toCommand } from './input.js';
import type { CommandPolicy } from './policy.js';
import { openStream } from './sse.js';

/**
 * The Upstash REST surface (design section 6, upstash-rest.md 1.1):
 *
 *   POST|PUT  /                      ["CMD", arg...]          → {"result"} | 400 {"error"}
 *   POST|PUT  /pipeline              [[...], [...]]           → [{"result"}|{"error"}, ...]
 *   POST|PUT  /multi-exec            [[...], [...]]           → same, atomic; discarded → 400
 *   GET|HEAD|POST|PUT /cmd/arg/...   path form (body = last arg, query = trailing args)
 *   GET|POST  /subscribe/<ch...>, /psubscribe/<pat...>, /monitor   → text/event-stream
 *
 * Routing is done by hand on the first path segment: the path form makes every other path a
 * potential command, so reserved names must win and malformed ones must be a clean 404/405.
 */
export interface RestDeps {
  pool: BackendPool;
  policy: CommandPolicy;
  flags: CommandFlags;
  auth: TokenAuth;
  maxBodyBytes: number;
  /** Bytes an event stream may queue for a slow client before it is cut off. */
  maxStreamBufferBytes: number;
  /** Open event streams, ended on shutdown. */
  streams: Set<() => void>;
}

const BODY_METHODS = ['POST', 'PUT'];
const PATH_METHODS = ['GET', 'HEAD', 'POST', 'PUT'];
const STREAM_METHODS = ['GET', 'POST'];
/** Command names: letters first; modules add dots (`JSON.SET`), a few names have `-`/`_`. */
const COMMAND_NAME = /^[A-Za-z_][A-Za-z0-9_.:|-]*$/;
/** First segments the REST API never treats as commands (served elsewhere, or not at all). */
const RESERVED = new Set(['v1', 'admin']);

export function restRoutes(deps: RestDeps): Hono {
  const app = new Hono();
  app.all('*', (c) => dispatch(c, deps));
  return app;
}

function allowMethods(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw methodNotAllowed(allowed);
}

async function dispatch(c: Context, deps: RestDeps): Promise<Response> {
  const url = new URL(c.req.url);
  const method = c.req.method;
  const target = rawTarget(c);
  // Split before decoding, so every segment is one argument as sent: `.`, `..`, `%2e` are
  // values here, not path steps (which `URL` would resolve), and `%2F` stays inside its segment.
  const segments = target.path.split('/').slice(1);
  const first = segments[0] ?? '';
  const rest = segments.slice(1);
  // `/pipeline` and `/pipeline/` are the same endpoint.
  const bare = rest.length === 0 || (rest.length === 1 && rest[0] === '');

  const format = c.req.header('upstash-response-format');
  if (format !== undefined && format.toLowerCase() !== 'json') {
    throw badRequest('Upstash-Response-Format: only "json" is supported by this gateway');
  }
  // Checked before anything runs: refusing it after a write has run would lose its answer.
  if (wantsBase64(c.req.header('upstash-encoding')) === undefined) {
    throw badRequest('Upstash-Encoding: only "base64" is supported by this gateway');
  }

  if (first === '' && segments.length === 1) {
    allowMethods(method, BODY_METHODS);
    const role = authenticate(c, url, deps);
    const command = toCommand(parseJson(await readBody(c.req.raw, deps.maxBodyBytes)));
    return runSingle(c, deps, role, command);
  }
  if (first === 'pipeline' || first === 'multi-exec') {
    if (!bare) throw notFound();
    allowMethods(method, BODY_METHODS);
    const role = authenticate(c, url, deps);
    const commands = toBatch(parseJson(await readBody(c.req.raw, deps.maxBodyBytes)));
    return runBatch(c, deps, role, commands, first === 'multi-exec');
  }
  if (first === 'subscribe' || first === 'psubscribe') {
    // `@upstash/redis` joins channel names into the path without encoding them, so a name
    // that is not valid percent-encoding is taken literally rather than refused.
    const targets = rest.filter((s) => s !== '').map(lenientDecode);
    if (targets.length === 0) throw notFound(`/${first} needs at least one channel or pattern`);
    allowMethods(method, STREAM_METHODS);
    // Listening writes nothing, so the read-only token may subscribe too.
    authenticate(c, url, deps);
    const signal = clientGone(c);
    const connection = await deps.pool.dedicated('subscriber', signal);
    return openStream({
      kind: first,
      targets,
      connection,
      signal,
      registry: deps.streams,
      maxBufferBytes: deps.maxStreamBufferBytes,
      confirmTimeoutMs: deps.pool.timeoutMs,
      disconnectClient: clientDisconnector(c),
    });
  }
  if (first === 'monitor') {
    if (!bare) throw notFound();
    allowMethods(method, STREAM_METHODS);
    const role = authenticate(c, url, deps);
    if (!deps.policy.monitorAllowed) {
      throw new GatewayError(
        403,
        "command 'MONITOR' is not allowed through this gateway: it streams every command of every client",
        'COMMAND_DENIED',
      );
    }
    if (role !== 'full') {
      throw new GatewayError(
        403,
        'this token is read-only; MONITOR needs the full token',
        'READONLY_TOKEN',
      );
    }
    const signal = clientGone(c);
    const connection = await deps.pool.dedicated('monitor', signal);
    return openStream({
      kind: 'monitor',
      targets: [],
      connection,
      signal,
      registry: deps.streams,
      maxBufferBytes: deps.maxStreamBufferBytes,
      disconnectClient: clientDisconnector(c),
    });
  }
  if (RESERVED.has(first) || !COMMAND_NAME.test(lenientDecode(first))) {
    throw notFound(`Unknown path; send commands to POST / or as /<command>/<arg>...`);
  }
  allowMethods(method, PATH_METHODS);
  const role = authenticate(c, url, deps);
  const body =
    method === 'POST' || method === 'PUT'
      ? await readBody(c.req.raw, deps.maxBodyBytes)
      : Buffer.alloc(0);
  return runSingle(c, deps, role, pathCommand(segments, body, target.query));
}

/**
 * Path and query of the request target exactly as the client sent them (`@hono/node-server`
 * passes the raw `IncomingMessage`; `c.req.url` has been through URL parsing, which resolves
 * dot segments and turns `\` into `/`). Absolute-form targets (`http://host/p`) lose their
 * origin; a target without a path (`*`) is `/`.
 */
function rawTarget(c: Context): { path: string; query: string } {
  const raw = nodeBindings(c).incoming?.url ?? c.req.url;
  let rest = raw.startsWith('/') ? raw : raw.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return { path: path.startsWith('/') ? path : '/', query: q < 0 ? '' : rest.slice(q + 1) };
}

function authenticate(c: Context, url: URL, deps: RestDeps): Role {
  const role = deps.auth.role(presentedToken(c.req.header('authorization'), url));
  if (!role) throw unauthorized();
  return role;
}

/** Deny-list and read-only checks, both before anything reaches Redis. */
async function authorize(deps: RestDeps, role: Role, commands: Command[], batch: boolean) {
  deps.policy.check(commands, batch);
  if (role === 'readonly') await deps.policy.checkReadOnly(commands, batch, deps.flags);
}

async function runSingle(c: Context, deps: RestDeps, role: Role, command: Command) {
  await authorize(deps, role, [command], false);
  const answer = await deps.pool.call(command);
  if (answer.kind === 'redis-error') return c.json({ error: answer.message }, 400);
  const encoded = encodeReply(answer.reply, base64(c));
  return 'error' in encoded ? c.json(encoded, 400) : json(c, encoded);
}

async function runBatch(
  c: Context,
  deps: RestDeps,
  role: Role,
  commands: Command[],
  atomic: boolean,
): Promise<Response> {
  await authorize(deps, role, commands, true);
  const answer = await deps.pool.batch(commands, atomic);
  // A discarded transaction is one error object, sent as 400 (a 2xx would crash clients
  // that expect an array: upstash-rest.md 1.7).
  if (!Array.isArray(answer)) return c.json({ error: answer.message }, 400);
  const encode = base64(c);
  return json(
    c,
    answer.map((item) =>
      item.kind === 'ok' ? encodeReply(item.reply, encode) : { error: item.message },
    ),
  );
}

/** A 200 JSON answer carrying replies: like `c.json`, but integers keep Redis' exact digits. */
function json(c: Context, body: unknown): Response {
  return c.body(jsonText(body), 200, { 'content-type': 'application/json' });
}

/** The Node request and response under Hono (`@hono/node-server` passes them as `c.env`). */
function nodeBindings(c: Context): { incoming?: IncomingMessage; outgoing?: ServerResponse } {
  return (c.env ?? {}) as { incoming?: IncomingMessage; outgoing?: ServerResponse };
}

/**
 * Aborts when the HTTP client goes away. Must be called before the handler awaits anything:
 * `@hono/node-server` creates the request's AbortController only when `c.req.raw.signal` is
 * first read, and aborts it when the response closes only if it exists by then. A signal first
 * read after an await (opening the stream's Redis connection) misses a client that left
 * meanwhile and never aborts: its stream, and the dedicated connection, stayed open for good.
 * A response already closed when this runs (should a middleware await before the handler)
 * counts as gone.
 */
function clientGone(c: Context): AbortSignal {
  const signal = c.req.raw.signal;
  const { outgoing } = nodeBindings(c);
  if (!signal.aborted && (outgoing?.destroyed || outgoing?.socket?.destroyed)) {
    return AbortSignal.abort();
  }
  return signal;
}

/** Cuts the client's connection (for an event stream it does not keep up with). */
function clientDisconnector(c: Context): (() => void) | undefined {
  const { outgoing } = nodeBindings(c);
  return outgoing ? () => outgoing.destroy() : undefined;
}

/** Validated in `dispatch` before anything runs. */
function base64(c: Context): boolean {
  return wantsBase64(c.req.header('upstash-encoding')) === true;
}

function lenientDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
