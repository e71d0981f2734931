import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BasicAuth } from './auth.js';
import type { FaultState } from './faults.js';
import type { AvailabilityEmulationOptions } from './types.js';

/**
 * Emulation of the Redis Software database availability API (design section 5), so the
 * failover client's availability health checks can run against local clusters and tests.
 * "Available" means the backend answers PING; lag and forced answers come from `FaultState`.
 */

/** Redis Software's default when the query gives no tolerance. */
const DEFAULT_LAG_TOLERANCE_MS = 100;
/** A PING slower than this counts as unavailable: a health check must answer quickly. */
const PING_TIMEOUT_MS = 500;

export interface AvailabilityBackend {
  ping(timeoutMs: number): Promise<boolean>;
  readonly host: string;
  readonly port: number;
}

export interface AvailabilityDeps {
  options: AvailabilityEmulationOptions;
  backend: AvailabilityBackend;
  faults: FaultState;
}

type Variant = { code: string; description: string };
const WHOLE_DB: Variant = { code: 'bdb_unavailable', description: 'Database is not available' };
const LOCAL_ENDPOINT: Variant = {
  code: 'bdb_endpoint_unavailable',
  description: 'Database endpoint is not available',
};

function apiError(c: Context, status: number, code: string, description: string): Response {
  return c.json({ error_code: code, description }, status as ContentfulStatusCode);
}

export function availabilityRoutes({ options, backend, faults }: AvailabilityDeps): Hono {
  const app = new Hono();
  const auth = new BasicAuth(options.username, options.password);
  const bdbUid = options.bdbUid ?? 1;

  app.use('/v1/*', async (c, next) => {
    if (!auth.check(c.req.header('authorization'))) {
      c.header('www-authenticate', 'Basic realm="redis-edge-gateway availability"');
      return apiError(c, 401, 'unauthorized', 'Authentication with valid credentials is required');
    }
    await next();
  });

  const check = async (c: Context, variant: Variant): Promise<Response> => {
    const uid = c.req.param('uid') ?? '';
    if (uid !== String(bdbUid)) {
      return apiError(c, 404, 'db_not_found', `Database ${uid.slice(0, 32)} does not exist`);
    }
    const extend = c.req.query('extend_check');
    if (extend !== undefined && extend !== 'lag') {
      return apiError(c, 400, 'invalid_schema', "extend_check must be 'lag'");
    }
    const toleranceText = c.req.query('availability_lag_tolerance_ms');
    if (toleranceText !== undefined && !/^\d{1,10}$/.test(toleranceText)) {
      return apiError(
        c,
        400,
        'invalid_schema',
        'availability_lag_tolerance_ms must be a non-negative integer',
      );
    }
    const forced = faults.availability;
    if (forced) {
      if (forced.status < 300) return c.json({}, forced.status as ContentfulStatusCode);
      return apiError(
        c,
        forced.status,
        forced.errorCode ?? (forced.status === 503 ? variant.code : 'error'),
        forced.description ?? variant.description,
      );
    }
    if (!(await backend.ping(PING_TIMEOUT_MS))) {
      return apiError(c, 503, variant.code, variant.description);
    }
    const tolerance =
      toleranceText === undefined ? DEFAULT_LAG_TOLERANCE_MS : Number(toleranceText);
    if (extend === 'lag' && faults.lagMs > tolerance) {
      return apiError(
        c,
        503,
        variant.code,
        `Database replication lag of ${faults.lagMs} ms exceeds the tolerance of ${tolerance} ms`,
      );
    }
    return c.json({}, 200);
  };

  app.get('/v1/bdbs/:uid/availability', (c) => check(c, WHOLE_DB));
  app.get('/v1/local/bdbs/:uid/endpoint/availability', (c) => check(c, LOCAL_ENDPOINT));

  app.get('/v1/bdbs', async (c) => {
    const dnsName = options.dnsName ?? backend.host;
    const bdb: Record<string, unknown> = {
      uid: bdbUid,
      name: `db${bdbUid}`,
      status: 'active',
      endpoints: [
        {
          uid: `${bdbUid}:1`,
          dns_name: dnsName,
          addr: await addresses(backend.host),
          port: backend.port,
          addr_type: 'external',
        },
      ],
    };
    const fields = c.req.query('fields');
    if (fields === undefined) return c.json([bdb], 200);
    const wanted = new Set(fields.split(',').map((f) => f.trim()));
    return c.json([Object.fromEntries(Object.entries(bdb).filter(([k]) => wanted.has(k)))], 200);
  });

  app.all('/v1/*', (c) => {
    const known =
      /^\/v1\/(bdbs(\/[^/]+\/availability)?|local\/bdbs\/[^/]+\/endpoint\/availability)$/;
    if (known.test(c.req.path)) {
      c.header('allow', 'GET');
      return apiError(c, 405, 'method_not_allowed', 'Only GET is supported on this endpoint');
    }
    return apiError(c, 404, 'not_found', 'No such endpoint');
  });

  return app;
}

/** The backend's addresses as `endpoints[].addr` reports them (the failover client matches on them). */
async function addresses(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
}
