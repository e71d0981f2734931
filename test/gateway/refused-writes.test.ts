import { rmSync } from 'node:fs';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOT_SENT_HEADER } from '../../src/gateway/index.js';
import {
  AllMembersFailedError,
  createFailoverRedis,
  type FailureEvent,
  type HealthEvent,
  resetHealthStores,
  type SwitchEvent,
} from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import {
  post,
  type Reply,
  request,
  startTestGateway,
  type TestGateway,
  TOKEN,
  waitFor,
} from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * Redis refuses some writes in `processCommand`, before calling the command, when the member
 * cannot take writes: OOM (over maxmemory with noeviction), READONLY (a replica), NOREPLICAS
 * (min-replicas-to-write not met), MISCONF (writes stopped after a failed BGSAVE). Nothing ran,
 * so the gateway answers 503 with the not-sent marker and a failover client may send even a
 * non-idempotent write to another member. Reads keep running on that member.
 *
 * Every scenario runs on redis-server processes of its own (stopped in `afterAll`), so no
 * config change can leak into other suites. The texts are Redis 7.0's, checked against the
 * real server in each scenario.
 */

/** What every scenario's member holds before it starts refusing. */
const SEED = { 'rw:k': 'v', 'rw:n': '5' };

interface Scenario {
  code: string;
  /** Redis' exact refusal (the one a script refused before it starts gets too). */
  text: string;
  /** Makes the Redis behind `direct` refuse writes with `code`; `owned` collects extra processes. */
  refuse: (direct: IORedis, owned: RedisProcess[]) => Promise<void>;
}

const OOM: Scenario = {
  code: 'OOM',
  text: "OOM command not allowed when used memory > 'maxmemory'.",
  async refuse(direct) {
    await direct.config('SET', 'maxmemory-policy', 'noeviction');
    await direct.config('SET', 'maxmemory', '1');
  },
};

const READONLY: Scenario = {
  code: 'READONLY',
  text: "READONLY You can't write against a read only replica.",
  async refuse(direct, owned) {
    const master = await RedisProcess.start();
    owned.push(master);
    // The full sync replaces the replica's data with the master's: give it the same data.
    const seeder = new IORedis(master.port, '127.0.0.1');
    try {
      // No 5 s wait for more replicas before the (diskless) full sync starts.
      await seeder.config('SET', 'repl-diskless-sync-delay', '0');
      await seeder.mset(SEED);
    } finally {
      seeder.disconnect();
    }
    await direct.replicaof('127.0.0.1', master.port);
    await waitFor(
      async () => (await direct.info('replication')).includes('master_link_status:up'),
      10_000,
      'the replica link to come up',
    );
  },
};

const NOREPLICAS: Scenario = {
  code: 'NOREPLICAS',
  text: 'NOREPLICAS Not enough good replicas to write.',
  async refuse(direct) {
    await direct.config('SET', 'min-replicas-max-lag', '10', 'min-replicas-to-write', '1');
  },
};

/**
 * A failed BGSAVE, made reliable for root (which chmod does not stop): Redis writes its temp
 * RDB file into its working directory, which is removed first. `dir` itself is a protected
 * config in Redis 7, so the directory the test process gave Redis is removed instead.
 */
const MISCONF: Scenario = {
  code: 'MISCONF',
  text: "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.",
  async refuse(direct) {
    const [, dir] = (await direct.config('GET', 'dir')) as [string, string];
    rmSync(dir, { recursive: true, force: true });
    // stop-writes-on-bgsave-error (default yes) only counts while save points are configured.
    await direct.config('SET', 'save', '3600 1', 'stop-writes-on-bgsave-error', 'yes');
    await direct.bgsave();
    await waitFor(
      async () => (await direct.info('persistence')).includes('rdb_last_bgsave_status:err'),
      10_000,
      'BGSAVE to fail',
    );
  },
};

function expectNotSent(reply: Reply, code: string, what: string): void {
  expect(reply.status, `${what}: ${reply.text}`).toBe(503);
  expect(reply.headers.get(NOT_SENT_HEADER), what).toBe('0');
  expect(reply.headers.get('content-type'), what).toMatch(/^application\/json/);
  expect(reply.body, what).toEqual({
    error: expect.stringMatching(
      new RegExp(`^backend refused the command without running it \\(${code}: `),
    ),
    code: 'BACKEND_REFUSED',
  });
  // Neither keys nor values of the request are echoed.
  expect(reply.text, what).not.toMatch(/rw:/);
}

async function expectUnchanged(direct: IORedis): Promise<void> {
  expect(await direct.mget(Object.keys(SEED))).toEqual(Object.values(SEED));
  expect(await direct.exists('rw:new')).toBe(0);
}

describe.each([OOM, READONLY, NOREPLICAS, MISCONF])(
  'a member refusing writes with $code',
  (scenario) => {
    const owned: RedisProcess[] = [];
    let direct: IORedis;
    let gw: TestGateway;

    beforeAll(async () => {
      const redis = await RedisProcess.start();
      owned.push(redis);
      direct = new IORedis(redis.port, '127.0.0.1');
      await direct.mset(SEED);
      gw = await startTestGateway(redis);
      await scenario.refuse(direct, owned);
      // The refusal, as Redis words it (the texts the gateway matches for scripts).
      expect(await direct.incr('rw:n').catch((err: Error) => err.message)).toBe(scenario.text);
    });

    afterAll(async () => {
      await gw?.gateway.close();
      direct?.disconnect();
      await Promise.all(owned.map((redis) => redis.stop()));
    });

    it('a write is answered 503 "not sent" and did not run; a read still answers 200', async () => {
      expectNotSent(await post(gw.url, '/', ['INCR', 'rw:n']), scenario.code, 'INCR');
      expectNotSent(await post(gw.url, '/', ['SET', 'rw:new', 'x']), scenario.code, 'SET');
      expectNotSent(
        await request(`${gw.url}/incr/rw:n`, { headers: { authorization: `Bearer ${TOKEN}` } }),
        scenario.code,
        'path form',
      );
      await expectUnchanged(direct);
      const read = await post(gw.url, '/', ['GET', 'rw:k']);
      expect(read.status, read.text).toBe(200);
      expect(read.body).toEqual({ result: 'v' });
    });

    it('a pipeline is "not sent" only when every entry was refused', async () => {
      expectNotSent(
        await post(gw.url, '/pipeline', [
          ['INCR', 'rw:n'],
          ['SET', 'rw:new', 'x'],
        ]),
        scenario.code,
        'all-write pipeline',
      );
      // The read ran: re-running the pipeline elsewhere would run it twice. Per-entry answers.
      const mixed = await post(gw.url, '/pipeline', [
        ['GET', 'rw:k'],
        ['INCR', 'rw:n'],
      ]);
      expect(mixed.status, mixed.text).toBe(200);
      expect(mixed.headers.get(NOT_SENT_HEADER)).toBeNull();
      expect(mixed.body).toEqual([{ result: 'v' }, { error: scenario.text }]);
      await expectUnchanged(direct);
    });

    it('/multi-exec with a refused write is discarded: 503 "not sent", nothing of it ran', async () => {
      expectNotSent(
        await post(gw.url, '/multi-exec', [
          ['GET', 'rw:k'],
          ['INCR', 'rw:n'],
          ['SET', 'rw:new', 'x'],
        ]),
        scenario.code,
        'multi-exec',
      );
      await expectUnchanged(direct);
    });

    it('a script refused before it starts is "not sent"; one refused by its own redis.call after doing something is not', async () => {
      // A script with flags (`#!lua`, may write) is refused with Redis' exact text before it starts.
      expectNotSent(
        await post(gw.url, '/', ['EVAL', "#!lua\nreturn redis.call('INCR', KEYS[1])", '1', 'rw:n']),
        scenario.code,
        'EVAL with flags',
      );
      await expectUnchanged(direct);

      // A script without flags runs; its PUBLISH goes out, then its first write's redis.call is
      // refused: same code, suffixed text. Sending it to another member would publish twice.
      const subscriber = new IORedis(direct.options.port!, '127.0.0.1');
      const received: string[] = [];
      try {
        await subscriber.subscribe('rw:ch');
        subscriber.on('message', (_channel: string, message: string) => received.push(message));
        const script = "redis.call('PUBLISH', 'rw:ch', 'ran'); return redis.call('INCR', KEYS[1])";
        const reply = await post(gw.url, '/', ['EVAL', script, '1', 'rw:n']);
        expect(reply.status, reply.text).toBe(400);
        expect(reply.headers.get(NOT_SENT_HEADER)).toBeNull();
        const { error } = reply.body as { error: string };
        expect(error.startsWith(`${scenario.text} script: `), error).toBe(true);
        await waitFor(() => received.length > 0, 5000, 'the script to publish');
        expect(received).toEqual(['ran']);

        // The same with `redis.pcall`, which hands Redis' exact text back: still a command
        // error (it published first), by EVAL and by EVALSHA, whose script the gateway never sees.
        const passOn =
          "redis.call('PUBLISH', 'rw:ch', 'again'); return redis.pcall('INCR', KEYS[1])";
        const sha = (await post(gw.url, '/', ['SCRIPT', 'LOAD', passOn])).body as {
          result: string;
        };
        for (const command of [
          ['EVAL', passOn, '1', 'rw:n'],
          ['EVALSHA', sha.result, '1', 'rw:n'],
        ]) {
          const passed = await post(gw.url, '/', command);
          expect(passed.status, passed.text).toBe(400);
          expect(passed.headers.get(NOT_SENT_HEADER)).toBeNull();
          expect(passed.body).toEqual({ error: scenario.text });
        }
        await waitFor(() => received.length === 3, 5000, 'both scripts to publish');
        expect(received).toEqual(['ran', 'again', 'again']);
      } finally {
        subscriber.disconnect();
      }

      // A script's own error replies with the code, or a code merely starting with it.
      for (const error of [
        `${scenario.code} not really`,
        `${scenario.code}X${scenario.text.slice(scenario.code.length)}`,
      ]) {
        const reply = await post(gw.url, '/', [
          'EVAL',
          `return redis.error_reply(ARGV[1])`,
          '0',
          error,
        ]);
        expect(reply.status, reply.text).toBe(400);
        expect(reply.headers.get(NOT_SENT_HEADER)).toBeNull();
        expect(reply.body).toEqual({ error });
      }
      await expectUnchanged(direct);
    });
  },
);

/**
 * End to end: member a refuses writes, so its gateway answers 503 "not sent" and the failover
 * client sends a non-idempotent INCR to member b, which runs it once; a's counter is unchanged.
 * Background health checks are off, so it is the request itself that moves on.
 */
describe('failover past a member refusing writes', () => {
  let cluster: LocalCluster;
  let directA: IORedis;
  let directB: IORedis;
  const owned: RedisProcess[] = [];

  beforeAll(async () => {
    cluster = await startLocalCluster({ members: 2 });
    directA = new IORedis(cluster.redisUrls!.a!);
    directB = new IORedis(cluster.redisUrls!.b!);
  });

  afterAll(async () => {
    directA?.disconnect();
    directB?.disconnect();
    await cluster?.stop();
    await Promise.all(owned.map((redis) => redis.stop()));
  });

  /** Undoes each scenario's `refuse` on member a (its own processes are stopped in afterAll). */
  async function restoreA(): Promise<void> {
    await directA.config('SET', 'maxmemory', '0', 'min-replicas-to-write', '0');
    await directA.replicaof('NO', 'ONE');
  }

  it.each([OOM, READONLY, NOREPLICAS])(
    'an INCR refused by member a with $code runs once, on member b, and a leaves at once',
    async (scenario) => {
      resetHealthStores();
      await directA.mset(SEED);
      await directB.del('rw:n');
      const failures: FailureEvent[] = [];
      const switches: SwitchEvent[] = [];
      const health: HealthEvent[] = [];
      const redis = createFailoverRedis({
        members: cluster.members,
        timeoutMs: 2000,
        deadlineMs: 5000,
        health: { enabled: false },
        on: {
          failure: (e) => failures.push(e),
          switch: (e) => switches.push(e),
          health: (e) => health.push(e),
        },
      });
      try {
        await scenario.refuse(directA, owned);
        const before = await directA.get('rw:n');
        expect(before).toBe('5');
        // Member a (the heavier) is tried first: it refuses, b runs the INCR.
        expect(await redis.incr('rw:n')).toBe(1);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toMatchObject({ member: 'a', kind: 'not-sent', failedOver: true });
        // The reason travels to the event: a full member is not an unreachable one.
        expect(failures[0]!.message).toContain(`Redis refused it (${scenario.code})`);
        expect(await directA.get('rw:n')).toBe(before);
        expect(await directB.get('rw:n')).toBe('1');
        // Member a still answers reads, and their successes would keep a counted circuit
        // closed: a refusal opens it at once, so everything moves to b for a grace period.
        expect(health).toContainEqual(
          expect.objectContaining({ member: 'a', status: 'unhealthy', reason: 'circuit' }),
        );
        expect(switches).toEqual([
          expect.objectContaining({ from: 'a', to: 'b', reason: 'circuit' }),
        ]);
        expect(redis.activeMember()).toBe('b');
        await directB.set('rw:k', 'on-b');
        for (let i = 0; i < 5; i++) expect(await redis.get('rw:k')).toBe('on-b');
        // The next write goes straight to b: no second round trip to a.
        expect(await redis.incr('rw:n')).toBe(2);
        expect(failures).toHaveLength(1);
        expect(await directA.get('rw:n')).toBe(before);
      } finally {
        await restoreA();
      }
    },
  );

  it('when every member refuses writes (the database is full), a write names each reason and reads still work', async () => {
    resetHealthStores();
    await directA.mset(SEED);
    await directB.mset(SEED);
    const redis = createFailoverRedis({
      members: cluster.members,
      timeoutMs: 2000,
      deadlineMs: 5000,
      health: { enabled: false },
    });
    try {
      for (const direct of [directA, directB]) await OOM.refuse(direct, owned);
      const err = await redis.incr('rw:n').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AllMembersFailedError);
      expect((err as AllMembersFailedError).failures).toEqual([
        expect.objectContaining({
          member: 'a',
          kind: 'not-sent',
          message: expect.stringContaining('(OOM)'),
        }),
        expect.objectContaining({
          member: 'b',
          kind: 'not-sent',
          message: expect.stringContaining('(OOM)'),
        }),
      ]);
      // Both circuits are open now; reads go to the members all the same.
      for (let i = 0; i < 5; i++) expect(await redis.get('rw:k')).toBe('v');
      expect(await directA.get('rw:n')).toBe('5');
      expect(await directB.get('rw:n')).toBe('5');
    } finally {
      await restoreA();
      await directB.config('SET', 'maxmemory', '0');
    }
  });
});
