import type { RawReply } from './backend.js';

/** A result as it appears in `{"result": ...}`. */
export type JsonReply = null | number | string | JsonReply[];

const OK = Buffer.from('OK');

/**
 * Converts a binary-safe ioredis reply into the Upstash REST result shape.
 *
 * With `Upstash-Encoding: base64` every string becomes base64 of its exact bytes, except a
 * result that is the string `OK` (the status reply the protocol exempts). Without it, strings
 * are UTF-8 decoded, as Upstash does. Numbers, null and nesting are kept.
 *
 * The exemption applies to the top level only. In buffer mode ioredis cannot tell a status
 * reply from a bulk string, and `@upstash/redis` skips decoding only a top-level `"OK"`: it
 * base64-decodes every string inside an array. So a stored value `OK` inside an MGET answer
 * must be encoded (`T0s=`) to round-trip, while a top-level `OK` is the same either way.
 */
export function toJsonReply(reply: RawReply, base64: boolean, nested = false): JsonReply {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === 'number') return reply;
  if (Array.isArray(reply)) return reply.map((item) => toJsonReply(item, base64, true));
  // An error nested in an array (e.g. a Lua table holding `redis.error_reply`): JSON has no
  // error type inside a result, so it travels as its message text.
  const bytes = Buffer.isBuffer(reply)
    ? reply
    : Buffer.from(reply instanceof Error ? reply.message : reply);
  if (!base64) return bytes.toString('utf8');
  return !nested && bytes.equals(OK) ? 'OK' : bytes.toString('base64');
}

/** True when the request asked for base64 results (header value is case-insensitive). */
export function wantsBase64(header: string | undefined): boolean {
  return header?.trim().toLowerCase() === 'base64';
}
