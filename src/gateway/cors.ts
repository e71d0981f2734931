import type { MiddlewareHandler } from 'hono';
import { NOT_SENT_HEADER, REFUSED_HEADER } from '../transport/types.js';

/**
 * CORS for browser clients of the REST API. Only origins in the list (exact match, or `*` for
 * any) get `Access-Control-*` headers; for any other origin the response carries none, so the
 * browser refuses to hand it to the page.
 *
 * Allowed request headers: what `@upstash/redis` sends from a browser. Besides the protocol
 * headers it adds telemetry headers (unless disabled) and `Cache-Control` on subscriptions; a
 * preflight that omitted them would make the official client fail in browsers.
 */
const ALLOW_HEADERS = [
  'Authorization',
  'Content-Type',
  'Upstash-Encoding',
  'upstash-sync-token',
  'Upstash-Telemetry-Sdk',
  'Upstash-Telemetry-Platform',
  'Upstash-Telemetry-Runtime',
  'Upstash-Telemetry-Retry',
  'Cache-Control',
].join(', ');
const ALLOW_METHODS = 'GET, HEAD, POST, PUT';
/**
 * Response headers a page may read. `x-redis-edge-sent: 0` on a 503 is how a browser client
 * knows the command never reached Redis; unexposed it reads as null, and a safe failover
 * would become an ambiguous write. `x-redis-edge-refused` names why (OOM, LOADING, ...).
 */
const EXPOSE_HEADERS = ['upstash-sync-token', NOT_SENT_HEADER, REFUSED_HEADER].join(', ');

export function cors(origins: string[]): MiddlewareHandler {
  const anyOrigin = origins.includes('*');
  const listed = new Set(origins);
  return async (c, next) => {
    const origin = c.req.header('origin');
    const allowOrigin =
      origin === undefined ? undefined : anyOrigin ? '*' : listed.has(origin) ? origin : undefined;
    if (c.req.method === 'OPTIONS') {
      // Preflight (or a bare OPTIONS): answered here, never reaches auth or Redis.
      const headers = new Headers({ vary: 'Origin' });
      if (allowOrigin) {
        headers.set('access-control-allow-origin', allowOrigin);
        headers.set('access-control-allow-methods', ALLOW_METHODS);
        headers.set('access-control-allow-headers', ALLOW_HEADERS);
        headers.set('access-control-max-age', '600');
      }
      return new Response(null, { status: 204, headers });
    }
    await next();
    c.res.headers.append('vary', 'Origin');
    if (allowOrigin) {
      c.res.headers.set('access-control-allow-origin', allowOrigin);
      c.res.headers.set('access-control-expose-headers', EXPOSE_HEADERS);
    }
  };
}
