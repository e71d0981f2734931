import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFailoverRedis, type FailureEvent, resetHealthStores } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { sleep, waitFor } from './helpers.js';

/**
 * End to end: while a script keeps member a's Redis busy, its gateway answers 503 "not sent",
 * so the failover client serves a read, and a non-idempotent write, from member b without an
 * error (before, the BUSY error went to the caller as the command's answer). Background health
 * checks are off, so it is the request itself that moves on, not a probe that noticed first.
 */
let cluster: LocalCluster;
let directA: IORedis;
let runnerA: IORedis;
let directB: IORedis;

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 2 });
  directA = new IORedis(cluster.redisUrls!.a!);
  runnerA = new IORedis(cluster.redisUrls!.a!);
  directB = new IORedis(cluster.redisUrls!.b!);
  await directA.config('SET', 'busy-reply-threshold', '100');
});

afterAll(async () => {
  directA?.disconnect();
  runnerA?.disconnect();
  directB?.disconnect();
  await cluster?.stop();
});

describe('failover on a busy member', () => {
  it('a read (and an INCR) during BUSY on member a is served by member b', async () => {
    resetHealthStores();
    await directA.set('busy:who', 'a');
    await directB.set('busy:who', 'b');
    await directA.del('busy:count');
    await directB.del('busy:count');
    const failures: FailureEvent[] = [];
    const redis = createFailoverRedis({
      members: cluster.members,
      timeoutMs: 2000,
      deadlineMs: 5000,
      health: { enabled: false },
      on: { failure: (e) => failures.push(e) },
    });
    // Member a (the heavier) serves while it is not busy.
    expect(await redis.get<string>('busy:who')).toBe('a');

    const script = runnerA.eval('while true do end', 0).catch((err: Error) => err);
    try {
      await waitFor(
        async () =>
          String(await directA.ping().catch((err: Error) => err.message)).startsWith('BUSY'),
        5000,
        'member a to answer BUSY',
      );
      expect(await redis.get<string>('busy:who')).toBe('b');
      expect(await redis.incr('busy:count')).toBe(1);
    } finally {
      await directA.call('SCRIPT', 'KILL').catch(() => {});
      await Promise.race([script, sleep(2000)]);
    }
    // The read moved on from a as "not sent" (the INCR may or may not try a again first).
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect(failure).toMatchObject({ member: 'a', kind: 'not-sent', failedOver: true });
    }
    // The INCR ran once, on b only.
    expect(await directA.exists('busy:count')).toBe(0);
    expect(await directB.get('busy:count')).toBe('1');
  });
});
