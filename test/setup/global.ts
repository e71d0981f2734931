import type { TestProject } from 'vitest/node';
import { startLocalCluster } from '../../src/testing/index.js';

/**
 * Starts ONE shared 3-member local Active-Active cluster (`a`, `b`, `c`, weights 3, 2, 1) for
 * the whole run and hands it to test files as `inject('cluster')` (type: `ProvidedCluster` in
 * `provided.d.ts`). Starting it once keeps suites fast; the gateways run inside this (the main
 * vitest) process, which is why only plain data crosses over to the test workers.
 *
 * The shared cluster is for NON-destructive suites: reads, writes (prefix your keys, other
 * files run in parallel), health checks against healthy members. Suites that kill, pause,
 * restart or inject faults must start their own cluster in `beforeAll` with
 * `startLocalCluster()` from `src/testing` and `stop()` it in `afterAll`; otherwise they would
 * break every other file running against the shared one.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startLocalCluster();
  project.provide('cluster', {
    members: cluster.members,
    adminToken: cluster.adminToken,
    redisUrls: cluster.redisUrls ?? {},
  });
  return async () => {
    await cluster.stop();
  };
}
