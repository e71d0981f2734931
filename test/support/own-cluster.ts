import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { resetHealthStores } from '../../src/index.js';
import {
  type LocalCluster,
  type LocalClusterOptions,
  startLocalCluster,
} from '../../src/testing/index.js';

/**
 * For suites that break members: a cluster of their own (the shared one from the global setup
 * must stay healthy for everyone else). Every test starts from a cold isolate (no health learned
 * by the previous test) and, with `heal`, from a whole cluster: members resumed and restarted,
 * fault injection cleared.
 */
export function useOwnCluster(
  receive: (cluster: LocalCluster) => void,
  options: LocalClusterOptions & { heal?: boolean } = {},
): void {
  let cluster: LocalCluster | undefined;
  beforeAll(async () => {
    cluster = await startLocalCluster({ members: 3, ...options });
    receive(cluster);
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  beforeEach(() => resetHealthStores());
  if (options.heal) {
    afterEach(async () => {
      if (!cluster) return;
      for (const m of cluster.members) {
        await cluster.resume(m.name).catch(() => {});
        await cluster.restart(m.name).catch(() => {});
        await cluster.setAvailability(m.name, null);
        await cluster.setLag(m.name, 0);
      }
    });
  }
}
