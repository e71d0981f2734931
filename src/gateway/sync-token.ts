import { randomBytes } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

/**
 * `upstash-sync-token` on every 2xx response (upstash-rest.md 1.5). A single RESP backend has
 * no replicas to catch up, so the token only has to be well-formed and increase: `<boot>-<n>`,
 * where the random boot id keeps tokens of a restarted gateway from colliding with old ones.
 */
export function syncTokens(): MiddlewareHandler {
  const boot = randomBytes(6).toString('hex');
  let counter = 0;
  return async (c, next) => {
    await next();
    if (c.res.status >= 200 && c.res.status < 300) {
      counter++;
      c.res.headers.set('upstash-sync-token', `${boot}-${counter}`);
    }
  };
}
