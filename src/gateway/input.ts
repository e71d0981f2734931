import type { Arg, Command } from './backend.js';
import { badRequest, payloadTooLarge } from './errors.js';

/**
 * Reading and validating request input. Everything here rejects by shape, without recursion,
 * so hostile bodies (huge, deeply nested, wrong types) end as a 400/413 and never as a crash.
 */

/**
 * How many bytes past the limit an oversized body is still read, and dropped, before the 413
 * goes out. Answering while the client is still uploading and then closing the socket makes
 * clients (workerd, undici) see a reset or "network connection lost" instead of the 413, and a
 * failover client must count that as a member failure of unknown outcome: a few oversized
 * writes would open every member's circuit. Dropped bytes cost bandwidth and time (bounded by
 * the server's request timeout), never memory. Past this, the gateway stops reading and answers
 * with `connection: close`; such a client may see the connection cut instead of the 413, which
 * is acceptable for a body this far over the limit.
 */
export const OVERSIZE_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * How long an oversized body is drained before the gateway gives up and answers (with
 * `connection: close`): a client trickling a body it knows is too large must not hold the
 * connection until the server's request timeout.
 */
export const OVERSIZE_DRAIN_MS = 5000;

const EXPIRED = Symbol('drain time over');

/** The next chunk, or EXPIRED when `ms` pass first. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array> | typeof EXPIRED> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      reader.read(),
      new Promise<typeof EXPIRED>((resolve) => {
        timer = setTimeout(() => resolve(EXPIRED), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the body, refusing more than `limit` bytes. Empty body: an empty buffer. */
export async function readBody(request: Request, limit: number): Promise<Buffer> {
  const budget = limit + OVERSIZE_DRAIN_BYTES;
  // No header: Number(null) is 0.
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > budget) throw payloadTooLarge(limit, false);
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Once over the limit, the rest is read to the end and dropped (see OVERSIZE_DRAIN_BYTES).
  let over = Number.isFinite(declared) && declared > limit;
  let drainUntil = over ? Date.now() + OVERSIZE_DRAIN_MS : Number.POSITIVE_INFINITY;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array> | typeof EXPIRED;
    try {
      chunk = over ? await readWithin(reader, drainUntil - Date.now()) : await reader.read();
    } catch {
      // The client aborted the upload; nobody will read the answer, but it must not be a 500.
      if (over) throw payloadTooLarge(limit, false);
      throw badRequest('request body could not be read (connection closed while sending)');
    }
    if (chunk === EXPIRED) {
      await reader.cancel().catch(() => {});
      throw payloadTooLarge(limit, false);
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > budget) {
      // Stop reading: a chunked body may be endless.
      await reader.cancel().catch(() => {});
      throw payloadTooLarge(limit, false);
    }
    if (over || size > limit) {
      if (!over) drainUntil = Date.now() + OVERSIZE_DRAIN_MS;
      over = true;
      chunks.length = 0;
    } else {
      chunks.push(value);
    }
  }
  // The whole body was read: the connection is clean and may be kept alive.
  if (over) throw payloadTooLarge(limit, true);
  return Buffer.concat(chunks, size);
}

export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw badRequest('Request body is empty; expected a JSON array');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('Request body is not valid JSON');
  }
}

/**
 * Redis arguments are byte strings. JSON strings, numbers and booleans map onto them the way
 * `@upstash/redis` expects (`set("k", 1)` sends the number 1). Anything else has no obvious
 * meaning and is refused rather than guessed at.
 */
function toArg(value: unknown, position: number, where: string): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      // JSON.parse turns a number beyond double range (1e400) into Infinity, which String()
      // would send to Redis as the word "Infinity".
      if (!Number.isFinite(value)) {
        throw badRequest(
          `${where}element ${position + 1} is a number beyond the range of a double (about ±1.8e308), which the gateway cannot read from a JSON number; send it as a string`,
        );
      }
      // JSON.parse has already rounded an integer beyond 2^53 to the nearest double, so the
      // digits the client sent are gone: refuse rather than run the command with another number.
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        throw badRequest(
          `${where}element ${position + 1} is an integer beyond ±${Number.MAX_SAFE_INTEGER}, which the gateway cannot read exactly from a JSON number; send it as a string`,
        );
      }
      return String(value);
    case 'boolean':
      return String(value);
    default: {
      // JSON leaves only null, arrays and objects here.
      const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
      throw badRequest(
        `${where}element ${position + 1} is ${kind}; only strings, numbers and booleans are allowed`,
      );
    }
  }
}

/** `["SET", "k", "v"]` → a command. `where` prefixes messages inside batches. */
export function toCommand(value: unknown, where = ''): Command {
  if (!Array.isArray(value)) {
    throw badRequest(`${where}a command must be a JSON array like ["SET","key","value"]`);
  }
  if (value.length === 0) throw badRequest(`${where}the command is empty`);
  if (typeof value[0] !== 'string' || value[0].trim() === '') {
    throw badRequest(`${where}the command name must be a non-empty string`);
  }
  const args = value.map((item, i) => toArg(item, i, where));
  return args as Command;
}

/** `[["SET","k","v"],["GET","k"]]` → commands. */
export function toBatch(value: unknown): Command[] {
  if (!Array.isArray(value)) {
    throw badRequest('a batch must be a JSON array of commands like [["SET","k","v"],["GET","k"]]');
  }
  if (value.length === 0) throw badRequest('the batch is empty');
  return value.map((item, i) => toCommand(item, `command ${i + 1} of the batch: `));
}

/**
 * Path form: `/SET/key/value?EX=100`. Each path segment is URL-decoded; a POST body, if any,
 * is the last argument as raw bytes (binary-safe); then each query entry `k=v` adds `k v`
 * (`k` or `k=` adds just `k`), except `_token`, which is a credential.
 */
export function pathCommand(segments: string[], body: Buffer, rawQuery: string): Command {
  const args: Arg[] = segments.map((segment, i) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw badRequest(`path segment ${i + 1} has malformed percent-encoding`);
    }
  });
  if (body.length > 0) args.push(body);
  for (const entry of rawQuery.split('&')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = decodeQuery(eq < 0 ? entry : entry.slice(0, eq));
    const value = eq < 0 ? '' : decodeQuery(entry.slice(eq + 1));
    if (key === '_token') continue;
    args.push(key);
    if (value !== '') args.push(value);
  }
  return args as Command;
}

function decodeQuery(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw badRequest('the query string has malformed percent-encoding');
  }
}
