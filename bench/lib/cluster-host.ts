/**
 * Child process that owns a local cluster (redis-servers + gateways), so the gateways' work
 * never shares an event loop with the client being measured. Controlled over IPC by
 * `RemoteCluster` (remote-cluster.ts). Exits when its parent goes away.
 */

import type { LocalCluster, LocalClusterOptions } from '../../src/testing/index.js';
import { startLocalCluster } from '../../src/testing/index.js';

type Op = 'kill' | 'killBackend' | 'pause' | 'resume' | 'restart' | 'stop';
interface Command {
  id: number;
  op: Op;
  name?: string;
}

const options = JSON.parse(process.env.BENCH_CLUSTER_OPTIONS ?? '{}') as LocalClusterOptions;
let cluster: LocalCluster | undefined;

async function main(): Promise<void> {
  cluster = await startLocalCluster(options);
  process.send?.({
    ready: true,
    members: cluster.members,
    adminToken: cluster.adminToken,
    redisUrls: cluster.redisUrls ?? {},
  });
}

process.on('message', async (message: Command) => {
  const c = cluster;
  if (!c) return;
  try {
    if (message.op === 'stop') {
      await c.stop();
      process.send?.({ id: message.id, ok: true }, () => process.exit(0));
      return;
    }
    await c[message.op](message.name!);
    process.send?.({ id: message.id, ok: true });
  } catch (error) {
    process.send?.({ id: message.id, ok: false, error: String(error) });
  }
});

process.on('disconnect', () => {
  void (cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
});

main().catch((error) => {
  process.send?.({ ready: false, error: String(error) });
  process.exit(1);
});
