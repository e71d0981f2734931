import { NOT_SENT_HEADER, REFUSED_HEADER } from '../transport/types.js';

/**
 * Every non-Redis failure the gateway can answer with. Handlers throw these; one place turns
 * them into JSON responses, so no error path can produce HTML, an empty body or a crash.
 *
 * `code` is a machine-readable marker for clients other than `@upstash/redis` (which only
 * reads `error`). Redis' own command errors are not `GatewayError`s: they go out as a plain
 * `{"error"}` with the message unchanged (design 4.4: `@upstash/redis` matches on `NOSCRIPT`).
 */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  body(): { error: string; code?: string } {
    return this.code ? { error: this.message, code: this.code } : { error: this.message };
  }
}

/** 400: the request itself is malformed (not a Redis error). */
export const badRequest = (message: string): GatewayError =>
  new GatewayError(400, message, 'INVALID_REQUEST');

/**
 * A command the gateway will not run: 400 with an `ERR ...` message, the way Redis and Upstash
 * refuse a command (design 6), so clients see a command error. 401/403 would say the request's
 * credentials were rejected, which a failover client rightly treats as a configuration error
 * of the member rather than as this command's answer.
 */
export const commandRefused = (message: string, code: string): GatewayError =>
  new GatewayError(400, `ERR ${message}`, code);

/** 401 with exactly the body Upstash and `mna/upstashdis` send. */
export const unauthorized = (): GatewayError => new GatewayError(401, 'Unauthorized');

export const notFound = (message = 'Not found'): GatewayError =>
  new GatewayError(404, message, 'NOT_FOUND');

export const methodNotAllowed = (allowed: string[]): GatewayError =>
  new GatewayError(405, 'Method not allowed', 'METHOD_NOT_ALLOWED', {
    allow: allowed.join(', '),
  });

/**
 * 413. `bodyRead`: the whole oversized body was read (and dropped), so the connection may be
 * kept alive; otherwise `connection: close`, since the rest of the body was never read.
 */
export const payloadTooLarge = (limit: number, bodyRead: boolean): GatewayError =>
  new GatewayError(
    413,
    `Request body exceeds ${limit} bytes`,
    'PAYLOAD_TOO_LARGE',
    bodyRead ? {} : { connection: 'close' },
  );

/**
 * 503 + `x-redis-edge-sent: 0`: the command provably never reached Redis, so a failover
 * client may retry it elsewhere even if it is a non-idempotent write. Only raise this when
 * nothing was written to the backend socket.
 */
export const backendUnavailable = (): GatewayError =>
  new GatewayError(503, 'backend unavailable', 'BACKEND_UNAVAILABLE', { [NOT_SENT_HEADER]: '0' });

/**
 * 503 + the not-sent marker, like `backendUnavailable`: the command did reach Redis, but Redis
 * refused it before running it (`-BUSY`, `-LOADING`, ... see `NOT_RUN_CODES` in
 * backend.ts), so as far as the data is concerned it was never sent and another member may run
 * it. Only Redis' error code is named: its message is a fixed server text today, but the code
 * is all the caller needs, and nothing of the request can end up in the answer.
 */
export const backendRefused = (redisCode: string, why: string): GatewayError =>
  new GatewayError(
    503,
    `backend refused the command without running it (${redisCode}: ${why}); it was not executed`,
    'BACKEND_REFUSED',
    { [NOT_SENT_HEADER]: '0', [REFUSED_HEADER]: redisCode },
  );

/** 502 without the marker: the connection broke after the command was written. */
export const backendConnectionLost = (): GatewayError =>
  new GatewayError(
    502,
    'backend connection lost; the command may or may not have run',
    'BACKEND_CONNECTION_LOST',
  );

/** 504 without the marker: the command was written but Redis did not answer in time. */
export const backendTimeout = (ms: number): GatewayError =>
  new GatewayError(
    504,
    `backend did not answer within ${ms} ms; the command may or may not have run`,
    'BACKEND_TIMEOUT',
  );

/**
 * Hono `onError`: the single place errors become responses. `GatewayError`s map to their
 * status; anything else is a bug, answered with a JSON 500 (no marker: the outcome is unknown)
 * and logged by class and message only, never with the request's data.
 */
export function errorResponse(err: Error, log: (line: string) => void): Response {
  if (err instanceof GatewayError) {
    return Response.json(err.body(), { status: err.status, headers: err.headers });
  }
  log(`unexpected error while handling a request: ${err.name}: ${err.message.slice(0, 200)}`);
  return Response.json({ error: 'internal gateway error', code: 'INTERNAL' }, { status: 500 });
}
