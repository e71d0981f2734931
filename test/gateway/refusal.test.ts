import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFailoverRedis,
  FailoverError,
  type FailoverRedis,
  MemberConfigError,
} from '../../src/index.js';
import { post, READONLY_TOKEN, startTestGateway, type TestGateway, TOKEN } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * A command the gateway refuses (deny-list, blocking command, a write with the read-only token)
 * is answered like Redis and Upstash answer a refused command: 400 `{ "error": "ERR ..." }`.
 * A 401/403 would tell a failover client the member rejected its token (a configuration error
 * of the member); a refusal is this command's answer and must reach the caller as such.
 */
let redisServer: RedisProcess;
let gw: TestGateway;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  gw = await startTestGateway(redisServer, { readonlyToken: READONLY_TOKEN });
});
afterAll(async () => {
  await gw?.gateway.close();
  await redisServer?.stop();
});

async function failure(run: () => Promise<unknown>): Promise<Error> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

function expectUntouched(redis: FailoverRedis): void {
  const member = redis.snapshot().members[0];
  expect(member?.circuit).toBe('closed');
  expect(member?.consecutiveFailures).toBe(0);
  expect(member?.configProblem).toBeUndefined();
}

describe('a refused command', () => {
  it('is a 400 with an ERR message and the machine-readable code', async () => {
    const reply = await post(gw.url, '/', ['BLPOP', 'l', '1']);
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({
      error: expect.stringMatching(/^ERR command 'BLPOP' is not allowed through this gateway/),
      code: 'COMMAND_DENIED',
    });
    const bad = await post(gw.url, '/', ['PING'], { authorization: 'Bearer wrong' });
    expect(bad.status).toBe(401);
  });

  it('reaches a failover client as a plain command error; the member is untouched', async () => {
    const redis = createFailoverRedis({
      members: [{ name: 'gw', url: gw.url, token: TOKEN }],
      health: { enabled: false },
    });
    const attempts: Array<[() => Promise<unknown>, RegExp]> = [
      [() => redis.exec(['BLPOP', 'refusal:list', 1]), /ERR command 'BLPOP' is not allowed/],
      [() => redis.flushall(), /ERR command 'FLUSHALL' is not allowed/],
      [
        () => redis.xread(['refusal:s'], ['0'], { blockMS: 10 } as never),
        /ERR command 'XREAD' is not allowed/,
      ],
      [
        () => redis.pipeline().set('refusal:p', 1).flushdb().exec(),
        /ERR command 'FLUSHDB' \(command 2 of the batch\) is not allowed/,
      ],
    ];
    // More than the circuit's failure threshold: refusals must not count at all.
    for (let round = 0; round < 2; round++) {
      for (const [run, message] of attempts) {
        const error = await failure(run);
        expect(error).not.toBeInstanceOf(MemberConfigError);
        expect(error).not.toBeInstanceOf(FailoverError);
        expect(error.message).toMatch(message);
      }
    }
    expectUntouched(redis);
    expect(await redis.set('refusal:k', 'v')).toBe('OK');
    expect(await redis.exists('refusal:p')).toBe(0);
  });

  it('a write with the read-only token is a command error too', async () => {
    const redis = createFailoverRedis({
      members: [{ name: 'ro', url: gw.url, token: READONLY_TOKEN }],
      health: { enabled: false },
    });
    for (let i = 0; i < 4; i++) {
      const error = await failure(() => redis.set('refusal:ro', 'v'));
      expect(error).not.toBeInstanceOf(MemberConfigError);
      expect(error).not.toBeInstanceOf(FailoverError);
      expect(error.message).toMatch(/ERR this token is read-only and 'SET'/);
    }
    expectUntouched(redis);
    expect(await redis.get('refusal:absent')).toBeNull();
  });
});
