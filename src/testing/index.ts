/**
 * `redis-edge-failover/testing`: a local Active-Active stand-in for tests and demos. Node only.
 */
export { startLocalCluster } from './cluster.js';
export type { LocalCluster, LocalClusterOptions, LocalMember } from './types.js';
