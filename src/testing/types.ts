import type { AvailabilityOverride } from '../gateway/types.js';

export interface LocalClusterOptions {
  /** Number of members; default 3. */
  members?: number;
  /** Member names; default `a`, `b`, `c`, ... */
  names?: string[];
  /** Weights by position; default descending (first member preferred): n, n-1, ..., 1. */
  weights?: number[];
  /** Extra gateway options applied to every member (CORS origins, allow-list...). */
  gateway?: {
    corsOrigins?: string[];
    allow?: string[];
    backendTimeoutMs?: number;
    /** Receives the gateways' log lines; default: discarded (they would drown test output). */
    log?: (line: string, member: string) => void;
  };
  /** redis-server executable; default `redis-server` from PATH. */
  redisServer?: string;
  /** How long each redis-server and gateway may take to answer PING; default 10 s. */
  readyTimeoutMs?: number;
}

/** One member, ready to paste into `createFailoverRedis({ members })`. */
export interface LocalMember {
  name: string;
  url: string;
  token: string;
  weight: number;
  availability: { url: string; bdbUid: number; username: string; password: string };
}

export interface LocalCluster {
  members: LocalMember[];
  /** Admin token of every member's gateway (fault injection over HTTP). */
  adminToken: string;
  /** SIGKILL the member's redis-server and close its gateway: the URL refuses connections. */
  kill(name: string): Promise<void>;
  /** SIGKILL only the redis-server; the gateway stays up and answers 503 "not sent". */
  killBackend(name: string): Promise<void>;
  /** SIGSTOP the member's redis-server: commands hang until `resume`. */
  pause(name: string): Promise<void>;
  /** SIGCONT after `pause`. */
  resume(name: string): Promise<void>;
  /** Start whatever `kill`/`killBackend` stopped again, on the same ports (data is empty). */
  restart(name: string): Promise<void>;
  /** Force the availability API's answer for this member; `null` reports the real state again. */
  setAvailability(name: string, override: AvailabilityOverride | null): Promise<void>;
  /** Set the emulated replication lag in ms (0 = in sync). */
  setLag(name: string, ms: number): Promise<void>;
  /** Stops everything; idempotent. */
  stop(): Promise<void>;
  /**
   * Each member's redis-server (`redis://127.0.0.1:<port>`) by name, for tests that bypass the
   * gateway. Kept off `LocalMember` so members stay exactly what the client config accepts.
   */
  redisUrls?: Record<string, string>;
}
