/** Options of `startGateway`; the CLI maps its flags onto these one to one. */
export interface GatewayOptions {
  /** RESP backend, e.g. `redis://127.0.0.1:6380` (`rediss://` for TLS, password in the URL). */
  redisUrl: string;
  /** Bearer token clients must present (or `?_token=`). */
  token: string;
  /** Optional second token that may only run read-only commands. */
  readonlyToken?: string;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Port; `0` (default) picks a free one. */
  port?: number;
  /** Origins allowed by CORS (exact match, or `*`); default none (no CORS headers). */
  corsOrigins?: string[];
  /** Commands removed from the default deny-list, e.g. `['FLUSHALL', 'FLUSHDB']`. */
  allow?: string[];
  /** Largest accepted request body in bytes; default 10 MiB. Larger bodies get 413. */
  maxBodyBytes?: number;
  /**
   * Most commands in one `/pipeline` or `/multi-exec`; default 10000. A larger batch gets 413
   * and none of it runs: within the body limit alone, a batch of a million `["PING"]`s would
   * cost the gateway gigabytes.
   */
  maxBatchCommands?: number;
  /**
   * Most bytes of events (each queued chunk counted with its overhead) the gateway holds for an
   * SSE client that reads slower than they arrive; default 32 MiB. Past it the client's
   * connection is closed and its backend connection released. This is the limit for `/monitor`;
   * `/subscribe` and `/psubscribe` stop reading from Redis long before (at 1 MiB), leaving the
   * backlog to Redis' own `client-output-buffer-limit pubsub`, so for them it is a last resort.
   */
  maxStreamBufferBytes?: number;
  /** Backend connections in the pool; default 4. */
  poolSize?: number;
  /** How long a command may wait on the backend before the gateway answers 504; default 10 s. */
  backendTimeoutMs?: number;
  /** Availability API emulation (design section 5). Off unless given. */
  availability?: AvailabilityEmulationOptions;
  /** Enables the fault-injection endpoints (`/admin/...`) when set. */
  adminToken?: string;
  /** Where log lines go; default stderr. Lines never contain tokens or request bodies. */
  log?: (line: string) => void;
}

export interface AvailabilityEmulationOptions {
  /** Separate port for the availability API (`0` = a free one); omit to serve it on the gateway's port. */
  port?: number;
  /** Database uid reported and served; default 1. */
  bdbUid?: number;
  /** Basic-auth credentials the availability API demands. */
  username: string;
  password: string;
  /** `dns_name` reported by `/v1/bdbs?fields=uid,endpoints`; default the backend's host. */
  dnsName?: string;
}

/** A forced availability answer (fault injection); `null` returns to reporting the real state. */
export interface AvailabilityOverride {
  status: number;
  errorCode?: string;
  description?: string;
}

export interface GatewayHandle {
  /** Base REST URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Base URL of the availability API (same as `url` unless a separate port was asked for). */
  availabilityUrl?: string;
  /** Stops accepting connections, finishes in-flight requests, closes backend connections. */
  close(): Promise<void>;
  /** In-process fault injection: same effect as `POST /admin/availability`. */
  setAvailability?(override: AvailabilityOverride | null): void;
  /** In-process fault injection: same effect as `POST /admin/lag`. */
  setLag?(ms: number): void;
}
