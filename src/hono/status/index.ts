/**
 * `statusHandler()`: a Hono handler answering the client's health snapshot as JSON (active
 * member, each member's status, circuit, lag, latency, last error, recent switches). The
 * snapshot never holds tokens or credentials; URLs are reduced to their origin here as well,
 * so a status route cannot leak a token someone put in a query string.
 */
import type { Context, Env, Handler } from 'hono';
import type { FailoverRedis } from '../../client.js';
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

/** The snapshot as served: URLs reduced to their origin, or removed. */
export function publicSnapshot(snapshot: StoreSnapshot, hideUrls: boolean): StoreSnapshot {
  return {
    ...snapshot,
    // The key is a fingerprint made of member URLs: hide it together with them.
    key: hideUrls ? '' : snapshot.key,
    members: snapshot.members.map((m) => {
      const { url, availabilityUrl, ...rest } = m;
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
