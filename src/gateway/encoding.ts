import type { RawReply } from './backend.js';

/**
 * An integer reply outside JS' safe range, kept as Redis' digits: written into the JSON as a
 * bare number with exactly those digits (see `jsonText`). A JS number would round it
 * (9007199254740993 → 9007199254740992) for every client, including non-JS ones.
 */
export class ExactInteger {
  constructor(readonly digits: string) {}
}

/** A result as it appears in `{"result": ...}`. */
export type JsonReply = null | number | string | ExactInteger | JsonReply[];

const OK = Buffer.from('OK');
const INTEGER = /^-?\d+$/;

/**
 * Most levels of arrays in a reply the gateway passes on (the outermost array is level 1).
 * No Redis command nests more than a few; a script can (a Lua table of tables), and Redis
 * sends it thousands of levels deep. This code and `jsonText` recurse per level, and the stack
 * ran out here near 2500 levels (a 500, found by fuzzing); the limit keeps a wide margin below
 * that, and a deeper reply gets a clear error instead (the command did run). Deeper still
 * (from ~2700 levels while V8 runs it unoptimized, further once optimized), ioredis' parser
 * itself overflows: see `containParserFailures` in backend.ts.
 */
export const MAX_REPLY_DEPTH = 1000;

/**
 * The command's answer, as JSON: its result, or, for a reply deeper than `MAX_REPLY_DEPTH`, an
 * error in its place. That error belongs to the command (every member would answer the same),
 * so it travels like a Redis error, a command error to clients: a 5xx would make a failover
 * client count it against each member in turn. It says the command ran.
 */
export function encodeReply(
  reply: RawReply,
  base64: boolean,
): { result: JsonReply } | { error: string; code: 'REPLY_TOO_DEEP' } {
  try {
    return { result: toJsonReply(reply, base64) };
  } catch (err) {
    if (!(err instanceof ReplyTooDeep)) throw err;
    return {
      error: `ERR the reply is nested more than ${MAX_REPLY_DEPTH} levels deep, which this gateway does not pass on; the command did run`,
      code: 'REPLY_TOO_DEEP',
    };
  }
}

class ReplyTooDeep extends Error {}

/**
 * Converts a binary-safe ioredis reply into the Upstash REST result shape.
 *
 * With `Upstash-Encoding: base64` every string becomes base64 of its exact bytes, except a
 * result that is the string `OK` (the status reply the protocol exempts). Without it, strings
 * are UTF-8 decoded, as Upstash does. Numbers, null and nesting are kept; integers (digits in
 * a JS string, see `RawReply`) become JS numbers when that is exact, `ExactInteger` otherwise.
 *
 * The exemption applies to the top level only. In buffer mode ioredis cannot tell a status
 * reply from a bulk string, and `@upstash/redis` skips decoding only a top-level `"OK"`: it
 * base64-decodes every string inside an array. So a stored value `OK` inside an MGET answer
 * must be encoded (`T0s=`) to round-trip, while a top-level `OK` is the same either way.
 */
export function toJsonReply(reply: RawReply, base64: boolean, depth = 0): JsonReply {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === 'number') return reply;
  if (typeof reply === 'string' && INTEGER.test(reply)) {
    const value = Number(reply);
    return Number.isSafeInteger(value) ? value : new ExactInteger(reply);
  }
  if (Array.isArray(reply)) {
    if (depth >= MAX_REPLY_DEPTH) throw new ReplyTooDeep();
    return reply.map((item) => toJsonReply(item, base64, depth + 1));
  }
  const nested = depth > 0;
  // An error nested in an array (e.g. a Lua table holding `redis.error_reply`): JSON has no
  // error type inside a result, so it travels as its message text.
  const bytes = Buffer.isBuffer(reply)
    ? reply
    : Buffer.from(reply instanceof Error ? reply.message : reply);
  if (!base64) return bytes.toString('utf8');
  return !nested && bytes.equals(OK) ? 'OK' : bytes.toString('base64');
}

/**
 * Whether the request asked for base64 results, from its `Upstash-Encoding` header; undefined
 * when the value is not one this gateway knows (the caller answers 400: serving plain text to
 * a client that asked for an encoding would hand it undecodable or mis-decoded results).
 *
 * Case-insensitive. A header sent twice reaches us comma-joined (`base64, base64`, the way
 * HTTP merges repeated fields), so each comma-separated value is read and repeats of the same
 * one are the same request; `base64, identity` asks for two things at once and is refused.
 * An empty value is no request for an encoding.
 */
export function wantsBase64(header: string | undefined): boolean | undefined {
  const values = new Set(
    (header ?? '')
      .split(',')
      .map((v) => v.trim().toLowerCase())
      .filter((v) => v !== ''),
  );
  if (values.size === 0) return false;
  if (values.size === 1 && values.has('base64')) return true;
  return undefined;
}

/**
 * JSON text of a response body. Same as `JSON.stringify`, except that an `ExactInteger` is
 * written as a bare number with its exact digits. The common case (none in the body) takes
 * `JSON.stringify` as is; only a body holding one is written piece by piece.
 */
export function jsonText(body: unknown): string {
  return hasExactInteger(body) ? writeExact(body) : JSON.stringify(body);
}

function hasExactInteger(value: unknown): boolean {
  if (value instanceof ExactInteger) return true;
  if (Array.isArray(value)) return value.some(hasExactInteger);
  if (value !== null && typeof value === 'object') {
    return Object.values(value).some(hasExactInteger);
  }
  return false;
}

function writeExact(value: unknown): string {
  if (value instanceof ExactInteger) return value.digits;
  if (Array.isArray(value)) return `[${value.map(writeExact).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${writeExact(v)}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value);
}
