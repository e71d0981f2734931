/**
 * Plumbing shared by the three adapters (hono, workers, serverless): turn user options into a
 * client, bind it to one request, keep background work alive (or finish it before the
 * response), and decorate the response. Adapters stay thin (design 3) and agree on behaviour
 * because they all go through here.
 *
 * Edge-clean: no Node built-ins, nothing runs at import time.
 */
import { createFailoverRedis, FailoverRedis, hintsFromCf, type ScopeOptions } from '../client.js';
import type { FailoverOptions } from '../config.js';
import { ConfigError } from '../errors.js';
import type { RequestHints } from '../selector.js';

/** Defaults of every adapter option, in one place. */
export const ADAPTER_DEFAULTS = {
  /** Response header naming the member that served the request, when `memberHeader: true`. */
  memberHeader: 'x-redis-member',
  /** `Server-Timing` metric name, when `serverTiming: true`. */
  serverTimingMetric: 'redis',
  /**
   * Longest a response waits for background checks on runtimes without `waitUntil`. The checks
   * bound themselves with their probe timeout (1 s by default); this is a second fence.
   */
  flushTimeoutMs: 5000,
  /** Keep every command of a request on the member that served the first one. */
  pin: true,
} as const;

/** Where the client comes from: options (a client is built), or a client you built yourself. */
export type ClientSource = FailoverOptions | { client: FailoverRedis };

/** What every adapter accepts besides the client. */
export interface AdapterSettings {
  /**
   * Budget (ms) for all Redis work of one request, across its commands. Each command keeps
   * its own `deadlineMs` too; the earlier of the two wins. Default: no request budget.
   */
  requestDeadlineMs?: number;
  /** Keep all commands of a request on one member unless it fails. Default true. */
  pin?: boolean;
  /** Add `x-redis-member: <member>` (or a header named by the string) to the response. */
  memberHeader?: boolean | string;
  /** Add a `Server-Timing` entry (metric `redis`, or the string given) with Redis time. */
  serverTiming?: boolean | string;
  /**
   * Keeps background work alive after the response, when the platform's one cannot be found
   * on its own: Vercel's `waitUntil` from `@vercel/functions`, Next's `after`, Supabase's
   * `EdgeRuntime.waitUntil`, or a no-op wrapper on a long-running Node server.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** Most time (ms) a response waits for background work where there is no `waitUntil`. */
  flushTimeoutMs?: number;
}

export type AdapterOptions = ClientSource & AdapterSettings;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks the adapter settings; errors name the field, like the client's own validation. */
export function validateSettings(settings: AdapterSettings): void {
  const positive = (field: keyof AdapterSettings) => {
    const value = settings[field];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, 'must be a positive number');
    }
  };
  positive('requestDeadlineMs');
  positive('flushTimeoutMs');
  for (const field of ['memberHeader', 'serverTiming'] as const) {
    const value = settings[field];
    if (value === undefined || typeof value === 'boolean') continue;
    if (typeof value !== 'string' || !TOKEN.test(value)) {
      throw new ConfigError(field, 'must be a boolean or a header/metric name (an HTTP token)');
    }
  }
  if (settings.waitUntil !== undefined && typeof settings.waitUntil !== 'function') {
    throw new ConfigError('waitUntil', 'must be a function');
  }
}

function hasClient(source: ClientSource): source is { client: FailoverRedis } {
  return 'client' in source && source.client instanceof FailoverRedis;
}

/**
 * Clients built from option objects, by object identity: a function of the context that
 * returns the same object (a module-level constant, say) reuses its client and listeners. A
 * fresh object per request builds a fresh client, which is cheap: health lives in a
 * module-scoped store keyed by member URLs, shared by every client of the same members.
 */
const built = new WeakMap<object, FailoverRedis>();

export function clientFor(source: ClientSource): FailoverRedis {
  if (hasClient(source)) return source.client;
  if ('client' in source && source.client !== undefined) {
    throw new ConfigError('client', 'must be a client made by createFailoverRedis');
  }
  let client = built.get(source);
  if (!client) {
    // Hono's `variable` and the status handler's settings ride along too.
    const extra = ['client', 'variable', 'hideUrls', 'cacheControl'];
    const options = without(source as FailoverOptions, [...ADAPTER_KEYS, ...extra]);
    client = createFailoverRedis(options);
    built.set(source, client);
  }
  return client;
}

/**
 * The adapters' own settings (plus `hints`, which every adapter takes): they ride along with
 * client options in one object, and the client refuses keys it does not know.
 */
export const ADAPTER_KEYS = [
  'requestDeadlineMs',
  'pin',
  'memberHeader',
  'serverTiming',
  'waitUntil',
  'flushTimeoutMs',
  'hints',
] as const satisfies readonly (keyof AdapterSettings | 'hints')[];

/** A copy of `source`'s own keys but `keys` (keys that are not part of its type `T`). */
export function without<T extends object>(source: T, keys: readonly string[]): T {
  const rest = { ...source } as Record<string, unknown>;
  for (const key of keys) delete rest[key];
  return rest as unknown as T;
}

/** Anything with a `waitUntil` method: Cloudflare's ExecutionContext, Netlify's Context... */
export interface WaitUntilLike {
  waitUntil(promise: Promise<unknown>): void;
}

export function hasWaitUntil(value: unknown): value is WaitUntilLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { waitUntil?: unknown }).waitUntil === 'function'
  );
}

/**
 * Background work of one request. With a platform `waitUntil` it is handed over at once;
 * without one (Node, AWS Lambda, Deno Deploy) it is collected and `flush()` awaits it before
 * the response goes out: Lambda freezes the environment after return and Deno may stop the
 * instance, so work left running could be lost or resume inside a later invocation.
 */
export class Background {
  readonly #platform: ((promise: Promise<unknown>) => void) | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  /** `owner` is kept so `owner.waitUntil(...)` is called as a method (Illegal invocation). */
  constructor(explicit?: (promise: Promise<unknown>) => void, owner?: WaitUntilLike) {
    if (explicit) this.#platform = explicit;
    else if (owner) this.#platform = (promise) => owner.waitUntil(promise);
  }

  /** Whether a platform keeps work alive after the response (nothing to flush). */
  get detached(): boolean {
    return this.#platform !== undefined;
  }

  /** Pass to `scope({ waitUntil })`. Arrow function, so it survives being passed around. */
  readonly waitUntil = (promise: Promise<unknown>): void => {
    // A background check failing must never surface as an unhandled rejection.
    const settled = promise.then(
      () => {},
      () => {},
    );
    if (this.#platform) {
      this.#platform(settled);
      return;
    }
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
  };

  /** Number of collected tasks still running (always 0 when detached). */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Waits for collected work, including work that finishing work starts, at most
   * `timeoutMs`. Never rejects. A no-op when a platform `waitUntil` took the work.
   */
  async flush(timeoutMs: number = ADAPTER_DEFAULTS.flushTimeoutMs): Promise<void> {
    if (this.#pending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), timeoutMs);
    });
    try {
      while (this.#pending.size > 0) {
        const outcome = await Promise.race([Promise.all([...this.#pending]), expired]);
        if (outcome === 'expired') return;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Redis time of one request, measured around each call of its scoped client. */
export interface RedisTiming {
  calls: number;
  durationMs: number;
}

/**
 * Measures the Redis time of a scoped client. `use()` is `@upstash/redis`' public middleware
 * hook; it wraps only this scope's requester, so other requests are not affected.
 */
export function measure(redis: FailoverRedis): RedisTiming {
  const timing: RedisTiming = { calls: 0, durationMs: 0 };
  redis.use(async (req, next) => {
    const started = performance.now();
    try {
      return await next(req);
    } finally {
      timing.calls += 1;
      timing.durationMs += performance.now() - started;
    }
  });
  return timing;
}

/** A quoted-string for a header parameter (RFC 9110 5.6.4). */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * A member name as a header value: printable ASCII stays as it is; `%`, anything else
 * (non-ASCII, control characters) and spaces at either end (which `Headers` would trim) are
 * percent-encoded as UTF-8, so `decodeURIComponent` gives the name back. Member names are
 * free-form, and `Headers.set` throws on a value that is not a ByteString ("東京") or holds
 * CR, LF or NUL. A lone surrogate becomes U+FFFD.
 */
export function headerSafe(text: string): string {
  return text
    .replace(/[^\x20-\x24\x26-\x7e]+/gu, (run) => {
      let out = '';
      for (const byte of new TextEncoder().encode(run)) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      }
      return out;
    })
    .replace(/^ +| +$/g, (spaces) => '%20'.repeat(spaces.length));
}

export function serverTimingEntry(
  metric: string,
  timing: RedisTiming,
  member: string | undefined,
): string {
  const calls = `${timing.calls} call${timing.calls === 1 ? '' : 's'}`;
  const desc = member === undefined ? calls : `${headerSafe(member)}, ${calls}`;
  return `${metric};dur=${timing.durationMs.toFixed(1)};desc=${quoted(desc)}`;
}

export function headerName(setting: boolean | string | undefined, fallback: string) {
  if (setting === undefined || setting === false) return undefined;
  return setting === true ? fallback : setting;
}

/** What the adapters add to a response once the handler is done. */
export interface ResponseHeaders {
  memberHeader: string | undefined;
  serverTiming: string | undefined;
}

export function responseHeaders(settings: AdapterSettings): ResponseHeaders {
  return {
    memberHeader: headerName(settings.memberHeader, ADAPTER_DEFAULTS.memberHeader),
    serverTiming: headerName(settings.serverTiming, ADAPTER_DEFAULTS.serverTimingMetric),
  };
}

type HeaderEdit = [name: string, value: string, how: 'set' | 'append'];

function headerEdits(
  headers: ResponseHeaders,
  redis: FailoverRedis,
  timing: RedisTiming | undefined,
): HeaderEdit[] {
  // Not `pinnedMember`: with `pin: false` nothing is pinned, yet a member served the request.
  const member = redis.servedBy;
  const edits: HeaderEdit[] = [];
  if (headers.memberHeader && member !== undefined) {
    edits.push([headers.memberHeader, headerSafe(member), 'set']);
  }
  if (headers.serverTiming && timing && timing.calls > 0) {
    // Appended: other middleware (Hono's timing(), a framework) may have entries too.
    edits.push([
      'server-timing',
      serverTimingEntry(headers.serverTiming, timing, member),
      'append',
    ]);
  }
  return edits;
}

function applyEdit(target: Headers, [name, value, how]: HeaderEdit): boolean {
  try {
    target[how](name, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds the member and timing headers to `response`. Responses from `fetch` (or
 * `Response.redirect`) have immutable headers; those are copied into a new Response first.
 * `replace` lets a framework install the copy its own way (Hono's `c.res` setter).
 *
 * Never throws: the handler's work (writes included) is done, so a header that cannot be set
 * is left out rather than turning the response into an error.
 */
export function decorate(
  response: Response,
  headers: ResponseHeaders,
  redis: FailoverRedis,
  timing: RedisTiming | undefined,
  replace: (copy: Response) => Response = (copy) => copy,
): Response {
  try {
    const edits = headerEdits(headers, redis, timing);
    let target = response;
    let applied = 0;
    for (const edit of edits) {
      if (applyEdit(target.headers, edit)) {
        applied += 1;
        continue;
      }
      // The first header failing on the handler's response: its headers are immutable.
      // Copy it once and go on there; a header failing anyway is skipped.
      if (target !== response || applied > 0) continue;
      try {
        target = replace(new Response(response.body, response));
      } catch {
        return response;
      }
      if (applyEdit(target.headers, edit)) applied += 1;
    }
    return target;
  } catch {
    return response;
  }
}

/**
 * Proximity hints a platform gives with the request: Cloudflare's `request.cf`, Netlify's
 * `context.geo`. Headers (such as Vercel's `x-vercel-ip-latitude`) are not read, since off
 * that platform any client could send them; pass `hints` for those.
 */
export function platformHints(request: Request, context?: unknown): RequestHints | undefined {
  const fromCf = hintsFromCf((request as { cf?: ScopeOptions['cf'] }).cf);
  if (fromCf) return fromCf;
  const geo = (context as { geo?: { latitude?: unknown; longitude?: unknown } } | undefined)?.geo;
  if (geo && typeof geo === 'object') {
    // Numbers or their text only: Number(null) and Number('') are 0, which would pass for a place.
    const coordinate = (v: unknown) =>
      typeof v === 'number' || (typeof v === 'string' && v.trim() !== '') ? Number(v) : Number.NaN;
    const lat = coordinate(geo.latitude);
    const lon = coordinate(geo.longitude);
    // Netlify reports 0/0 when it does not know; that is a point in the Atlantic, not a hint.
    if (Number.isFinite(lat) && Number.isFinite(lon) && (lat !== 0 || lon !== 0)) {
      return { lat, lon };
    }
  }
  return undefined;
}

/** One request's view of the client, and what the adapter does around the handler. */
export interface BoundRequest {
  /** The request-scoped client handed to user code. */
  redis: FailoverRedis;
  background: Background;
  timing: RedisTiming | undefined;
  headers: ResponseHeaders;
  /** Adds the configured headers to the handler's response (see `decorate`). */
  decorate(response: Response, replace?: (copy: Response) => Response): Response;
  /** Awaits collected background work where the platform has no `waitUntil`. */
  flush(): Promise<void>;
  /**
   * The response, its body ending only once background work is flushed, where the platform has
   * no `waitUntil`: a streamed body (SSE, `hono/streaming`, Lambda response streaming) may send
   * commands, and start health checks, after the handler returned and `flush` ran. The same
   * response when there is nothing to hold.
   */
  hold(response: Response): Response;
}

export interface BindInit {
  hints?: RequestHints | undefined;
  signal?: AbortSignal | undefined;
  /** The platform object whose `waitUntil` keeps work alive (Cloudflare ctx, Netlify context). */
  owner?: WaitUntilLike | undefined;
}

/** Binds `client` to one request: hints, signal, deadline, pinning and background work. */
export function bindRequest(
  client: FailoverRedis,
  settings: AdapterSettings,
  init: BindInit,
): BoundRequest {
  const background = new Background(settings.waitUntil, init.owner);
  const scope: ScopeOptions = {
    waitUntil: background.waitUntil,
    pin: settings.pin ?? ADAPTER_DEFAULTS.pin,
  };
  if (init.hints) scope.hints = init.hints;
  if (init.signal) scope.signal = init.signal;
  if (settings.requestDeadlineMs !== undefined) scope.deadlineMs = settings.requestDeadlineMs;
  const redis = client.scope(scope);
  const flush = () => background.flush(settings.flushTimeoutMs ?? ADAPTER_DEFAULTS.flushTimeoutMs);
  const headers = responseHeaders(settings);
  const timing = headers.serverTiming ? measure(redis) : undefined;
  return {
    redis,
    background,
    timing,
    headers,
    decorate: (response, replace) => decorate(response, headers, redis, timing, replace),
    flush,
    hold: (response) =>
      background.detached || !response.body
        ? response
        : new Response(response.body.pipeThrough(new TransformStream({ flush })), response),
  };
}
