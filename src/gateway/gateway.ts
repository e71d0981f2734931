import type { Server } from 'node:http';
import { Hono, type MiddlewareHandler } from 'hono';
import { adminRoutes } from './admin.js';
import { TokenAuth } from './auth.js';
import { availabilityRoutes } from './availability.js';
import { BackendPool } from './backend.js';
import { CommandFlags } from './command-flags.js';
import { cors } from './cors.js';
import { errorResponse } from './errors.js';
import { FaultState } from './faults.js';
import { closeServer, Lifecycle, listen } from './lifecycle.js';
import { resolveOptions } from './options.js';
import { CommandPolicy } from './policy.js';
import { restRoutes } from './server.js';
import { syncTokens } from './sync-token.js';
import type { AvailabilityOverride, GatewayHandle, GatewayOptions } from './types.js';

/** How long `startGateway` waits for the first backend connections before serving anyway. */
const WARMUP_MS = 2000;

/** Default log sink: stderr, so stdout stays free for the CLI's single ready line. */
const stderrLog = (line: string) => {
  process.stderr.write(`redis-edge-gateway: ${line}\n`);
};

/** The handle, plus in-process fault injection (same effect as the `/admin` endpoints). */
export interface RunningGateway extends GatewayHandle {
  setAvailability(override: AvailabilityOverride | null): void;
  setLag(ms: number): void;
}

/**
 * Starts the Upstash-REST-compatible gateway in front of a RESP Redis (design section 3).
 * Resolves once listening; the backend may still be down (requests then get 503 "not sent"
 * until it comes up: the pool reconnects in the background).
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const config = resolveOptions(options);
  const log = options.log ?? stderrLog;
  // Built before the pool so a bad `allow` entry cannot leak connections.
  const policy = new CommandPolicy(config.allow, config.maxBatchCommands);

  const pool = new BackendPool({
    url: config.redisUrl,
    poolSize: config.poolSize,
    timeoutMs: config.backendTimeoutMs,
    log,
  });
  await pool.settle(WARMUP_MS);

  const faults = new FaultState();
  const streams = new Set<() => void>();
  const lifecycle = new Lifecycle();
  const onError = (err: Error) => errorResponse(err, log);
  const describe = () => ({
    backend: { target: pool.target, ready: pool.readyCount, poolSize: pool.poolSize },
    streams: streams.size,
  });

  /** `outer` run before the lifecycle middleware, so they also wrap its shutdown 503. */
  const base = (...outer: MiddlewareHandler[]) => {
    const app = new Hono();
    app.onError(onError);
    for (const middleware of outer) app.use('*', middleware);
    app.use('*', lifecycle.middleware());
    return app;
  };

  // Sync token first so that every 2xx, preflights included, carries one. CORS next, ahead of
  // the lifecycle: a browser can only read the shutdown 503 (and its not-sent marker) with
  // CORS headers, and a preflight is still answered while shutting down so that the real
  // request gets to see that 503.
  const main = base(syncTokens(), cors(config.corsOrigins));
  const availability = config.availability
    ? availabilityRoutes({ options: config.availability, backend: pool, faults })
    : undefined;
  const admin = config.adminToken
    ? adminRoutes({ adminToken: config.adminToken, faults, describe })
    : undefined;
  const separateAvailability = availability && config.availability?.port !== undefined;
  // On a shared port the availability and admin routes come first: they have their own auth
  // and must not sit behind the REST bearer token.
  if (availability && !separateAvailability) main.route('/', availability);
  if (admin) main.route('/', admin);
  main.route(
    '/',
    restRoutes({
      pool,
      policy,
      flags: new CommandFlags((command) => pool.call(command)),
      auth: new TokenAuth(config.token, config.readonlyToken),
      maxBodyBytes: config.maxBodyBytes,
      maxStreamBufferBytes: config.maxStreamBufferBytes,
      streams,
    }),
  );

  const servers: Server[] = [];
  try {
    const rest = await listen(main.fetch, config.host, config.port, onError);
    servers.push(rest.server);
    let availabilityUrl: string | undefined = availability ? rest.url : undefined;
    if (availability && separateAvailability) {
      const app = base();
      app.route('/', availability);
      if (admin) app.route('/', admin);
      app.notFound((c) =>
        c.json({ error_code: 'not_found', description: 'No such endpoint' }, 404),
      );
      const side = await listen(app.fetch, config.host, config.availability?.port ?? 0, onError);
      servers.push(side.server);
      availabilityUrl = side.url;
      log(`availability API listening on ${side.url}`);
    }
    log(`listening on ${rest.url} (backend ${pool.target})`);

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        log('shutting down');
        lifecycle.closing = true;
        for (const stop of [...streams]) stop();
        // In-flight commands end within the backend timeout (504 at worst).
        const grace = config.backendTimeoutMs + 1000;
        await Promise.all([
          ...servers.map((server) => closeServer(server, grace)),
          lifecycle.drained(grace),
        ]);
        await pool.close();
        log('stopped');
      })();
      return closing;
    };

    return {
      url: rest.url,
      availabilityUrl,
      close,
      setAvailability: (override) => {
        faults.availability = override;
      },
      setLag: (ms) => {
        faults.lagMs = ms;
      },
    };
  } catch (err) {
    await Promise.all(servers.map((server) => closeServer(server, 0)));
    await pool.close();
    throw err;
  }
}
