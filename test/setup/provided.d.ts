import type { LocalMember } from '../../src/testing/index.js';

/** What `test/setup/global.ts` shares with every test file through `inject('cluster')`. */
export interface ProvidedCluster {
  /** Members `a`, `b`, `c` (weights 3, 2, 1), ready for `createFailoverRedis({ members })`. */
  members: LocalMember[];
  /** Bearer token of the gateways' `/admin/...` fault-injection endpoints. */
  adminToken: string;
  /** Each member's redis-server by name, e.g. `{ a: 'redis://127.0.0.1:40123' }`. */
  redisUrls: Record<string, string>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ProvidedCluster;
  }
}
