/**
 * `statusHandler()`: a Hono handler answering the client's health snapshot as JSON (active
 * member, each member's status, circuit, lag, latency, last error, recent switches). The
 * snapshot never holds tokens or credentials; URLs are reduced to their origin here as well,
 * so a status route cannot leak a token someone put in a query string or a secret path. That
 * covers the free text too (a probe's reason, an error message) and the snapshot's `key`, which
 * is made of the full member URLs and is served as a short fingerprint instead.
 */
import type { Context, Env, Handler } from 'hono';
import type { FailoverRedis } from '../../client.js';
import { cacheKeyFor } from '../../health/shared.js';
import type { StoreSnapshot } from '../../health/store.js';
import { type ClientSource, clientFor } from '../../serverless/adapter.js';

export interface StatusHandlerSettings<K extends string = 'redis'> {
  /**
   * Variable set by `failover()` to read the client from when no client source is given.
   * Default `redis`.
   */
  variable?: K;
  /** Leave member URLs out of the JSON (they name your infrastructure). Default false. */
  hideUrls?: boolean;
  /** `Cache-Control` of the answer. Default `no-store`: health changes by the second. */
  cacheControl?: string;
}

/** Where the status comes from: the `failover()` variable (default), options or a client. */
export type StatusHandlerOptions<K extends string = 'redis'> = StatusHandlerSettings<K> &
  (ClientSource | Record<never, never>);

export type StatusHandlerInput<E extends Env = Env, K extends string = 'redis'> =
  | StatusHandlerOptions<K>
  | ((c: Context<E>) => StatusHandlerOptions<K>);

export const STATUS_DEFAULTS = {
  variable: 'redis',
  hideUrls: false,
  cacheControl: 'no-store',
} as const;

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

/** Anything URL-like in free text: a scheme, `://`, and up to the next space or quote. */
const URL_IN_TEXT = /[a-z][a-z\d+.-]*:\/\/[^\s"'<>`]*/gi;

/** What free text shows instead of a member URL's path, query or (with `hideUrls`) host. */
const HIDDEN = '[hidden]';

/**
 * Parts of a member URL no one should see beside its origin: path segments and query names
 * and values, raw and decoded (a server may echo them in an error, like an unknown command
 * named after a path segment), and the host too when URLs are hidden altogether. Parts
 * shorter than 4 characters (`v1`, `db`) are left: they hide nothing and would garble the text.
 */
function privateParts(url: string, hideUrls: boolean): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url];
  }
  const parts = [url, `${parsed.pathname}${parsed.search}`, parsed.search, parsed.hash];
  for (const segment of parsed.pathname.split('/')) parts.push(segment);
  for (const [name, value] of parsed.searchParams) parts.push(name, value);
  if (hideUrls) parts.push(parsed.host, parsed.hostname);
  const decoded = parts.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return [...new Set([...parts, ...decoded])].filter((p) => p.length >= 4);
}

/**
 * Reduces URLs in free text to their origin (or hides them) and removes the private parts,
 * in any case: Redis upper-cases a command name, and the REST path form makes the first path
 * segment one (`ERR unknown command 'S3CR3T'`).
 */
function scrubber(urls: string[], hideUrls: boolean): (text: string) => string {
  // Longest first, so a whole path goes before one of its segments.
  const parts = [...new Set(urls.flatMap((u) => privateParts(u, hideUrls)))]
    .sort((a, b) => b.length - a.length)
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const secret = parts.length > 0 ? new RegExp(parts.join('|'), 'gi') : undefined;
  return (text) => {
    const out = text.replace(URL_IN_TEXT, (found) => {
      if (hideUrls) return HIDDEN;
      const origin = originOf(found);
      return origin && origin !== 'null' ? origin : HIDDEN;
    });
    return secret ? out.replace(secret, HIDDEN) : out;
  };
}

/**
 * The snapshot as served: URLs reduced to their origin, or removed, in the member fields and
 * in every free-text field; `key` (made of the full URLs) as its short FNV-1a fingerprint, the
 * same one that names the shared-health record in KV.
 */
export function publicSnapshot(snapshot: StoreSnapshot, hideUrls: boolean): StoreSnapshot {
  const scrub = scrubber(
    snapshot.members.flatMap((m) =>
      m.availabilityUrl === undefined ? [m.url] : [m.url, m.availabilityUrl],
    ),
    hideUrls,
  );
  return {
    ...snapshot,
    key: cacheKeyFor(snapshot.key),
    members: snapshot.members.map((m) => {
      const { url, availabilityUrl, ...rest } = m;
      if (rest.statusReason !== undefined) rest.statusReason = scrub(rest.statusReason);
      if (rest.configProblem !== undefined) rest.configProblem = scrub(rest.configProblem);
      if (rest.lastError)
        rest.lastError = { ...rest.lastError, message: scrub(rest.lastError.message) };
      if (hideUrls) return { ...rest, url: '' };
      const out: StoreSnapshot['members'][number] = { ...rest, url: originOf(url) };
      if (availabilityUrl !== undefined) out.availabilityUrl = originOf(availabilityUrl);
      return out;
    }),
  };
}

function isClientSource(options: object): options is ClientSource {
  return 'client' in options || 'members' in options;
}

/**
 * @example
 * ```ts
 * app.use(failover(...));
 * app.get('/status', statusHandler());
 * ```
 */
export function statusHandler<E extends Env = Env, K extends string = 'redis'>(
  options: StatusHandlerInput<E, K> = {},
): Handler<E> {
  return (c) => {
    const resolved = typeof options === 'function' ? options(c as Context<E>) : options;
    let client: FailoverRedis | undefined;
    if (isClientSource(resolved)) {
      client = clientFor(resolved);
    } else {
      const name = resolved.variable ?? STATUS_DEFAULTS.variable;
      client = (c as Context).get(name) as FailoverRedis | undefined;
      if (!client) {
        throw new Error(
          `statusHandler: no client in c.var.${name}; mount failover() before it or pass client options`,
        );
      }
    }
    const body = publicSnapshot(client.snapshot(), resolved.hideUrls ?? STATUS_DEFAULTS.hideUrls);
    return c.json(body, 200, {
      'cache-control': resolved.cacheControl ?? STATUS_DEFAULTS.cacheControl,
    });
  };
}
