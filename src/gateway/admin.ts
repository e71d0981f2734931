import { type Context, Hono } from 'hono';
import { bearerToken, Secret } from './auth.js';
import { badRequest, unauthorized } from './errors.js';
import { type FaultState, overrideProblem } from './faults.js';
import { parseJson, readBody } from './input.js';

/**
 * Fault-injection endpoints (only mounted when `adminToken` is set): force the availability
 * API's answer and the emulated lag, so failover can be tested without killing processes.
 *
 *   POST /admin/availability  {"status":503,"errorCode"?:"...","description"?:"..."} | null
 *   POST /admin/lag           {"ms": 250}
 *   GET  /admin/state
 */
export interface AdminDeps {
  adminToken: string;
  faults: FaultState;
  /** Extra live facts for `/admin/state` (backend connections, open streams). */
  describe: () => Record<string, unknown>;
}

/** Admin bodies are tiny; a small limit keeps this surface cheap to defend. */
const ADMIN_BODY_LIMIT = 64 * 1024;

export function adminRoutes({ adminToken, faults, describe }: AdminDeps): Hono {
  const app = new Hono();
  const secret = new Secret(adminToken);
  const state = () => ({ availability: faults.availability, lagMs: faults.lagMs, ...describe() });

  app.use('/admin/*', async (c, next) => {
    if (!secret.matches(bearerToken(c.req.header('authorization')))) throw unauthorized();
    await next();
  });

  const jsonBody = async (c: Context): Promise<unknown> =>
    parseJson(await readBody(c.req.raw, ADMIN_BODY_LIMIT));

  app.post('/admin/availability', async (c) => {
    const value = await jsonBody(c);
    const problem = overrideProblem(value);
    if (problem) throw badRequest(problem);
    faults.availability = value as FaultState['availability'];
    return c.json(state(), 200);
  });

  app.post('/admin/lag', async (c) => {
    const value = await jsonBody(c);
    const ms = (value as { ms?: unknown } | null)?.ms;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw badRequest('body must be {"ms": <non-negative number>}');
    }
    faults.lagMs = ms;
    return c.json(state(), 200);
  });

  app.get('/admin/state', (c) => c.json(state(), 200));

  app.all('/admin/*', (c) => {
    const known = ['/admin/availability', '/admin/lag', '/admin/state'];
    if (known.includes(c.req.path)) {
      return c.json({ error: 'Method not allowed', code: 'METHOD_NOT_ALLOWED' }, 405);
    }
    return c.json({ error: 'Not found', code: 'NOT_FOUND' }, 404);
  });

  return app;
}
