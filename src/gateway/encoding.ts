import type { RawReply } from './backend.js';

/** A result as it appears in `{"result": ...}`. */
export type JsonReply = null | number | string | JsonReply[];

const OK = Buffer.from('OK');

/**
 * Converts a binary-safe ioredis reply into the Upstash REST result shape.
 *
 * With `Upstash-Encoding: base64` every string becomes base64 of its exact bytes, except the
 * string `OK`, which the protocol leaves alone (the client leaves it alone too, so a stored
 * value `OK` still round-trips). Without it, strings are UTF-8 decoded, as Upstash does.
 * Numbers, null and nesting are kept. RESP2 cannot tell a status reply from a bulk string in
 * buffer mode, which is why the `OK` rule is applied to the string, as the spec words it.
 */
export function toJsonReply(reply: RawReply, base64: boolean): JsonReply {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === 'number') return reply;
  if (Array.isArray(reply)) return reply.map((item) => toJsonReply(item, base64));
  // An error nested in an array (e.g. a Lua table holding `redis.error_reply`): JSON has no
  // error type inside a result, so it travels as its message text.
  const bytes = Buffer.isBuffer(reply)
    ? reply
    : Buffer.from(reply instanceof Error ? reply.message : reply);
  if (!base64) return bytes.toString('utf8');
  return bytes.equals(OK) ? 'OK' : bytes.toString('base64');
}

/** True when the request asked for base64 results (header value is case-insensitive). */
export function wantsBase64(header: string | undefined): boolean {
  return header?.trim().toLowerCase() === 'base64';
}
