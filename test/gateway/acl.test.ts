import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendAclRules } from '../../src/gateway/index.js';
import { post, startTestGateway, type TestGateway } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * The deny-list covers commands the gateway is sent; a script runs with the backend user's
 * permissions. Connecting as a Redis ACL user made from `backendAclRules()` closes that gap:
 * Redis itself refuses `redis.call('FLUSHDB')` inside EVAL.
 */
let redis: RedisProcess;
let admin: IORedis;
let gw: TestGateway;

beforeAll(async () => {
  redis = await RedisProcess.start();
  admin = new IORedis(redis.port, '127.0.0.1', { lazyConnect: true });
  await admin.connect();
  await admin.call(
    'ACL',
    'SETUSER',
    'edge-gateway',
    'on',
    '>gw-secret-pass',
    '~*',
    '&*',
    ...backendAclRules().split(' '),
  );
  gw = await startTestGateway(redis, {
    redisUrl: `redis://edge-gateway:gw-secret-pass@127.0.0.1:${redis.port}`,
  });
});

afterAll(async () => {
  await gw?.gateway.close();
  admin?.disconnect();
  await redis?.stop();
});

describe('backend ACL user from backendAclRules()', () => {
  it('is accepted by redis-server 7.0 and keeps ordinary commands working', async () => {
    expect(backendAclRules()).toMatch(/^\+@all( -\S+)+$/);
    expect(backendAclRules()).toContain('-flushdb');
    expect(backendAclRules(['FLUSHDB'])).not.toContain('-flushdb');
    expect((await post(gw.url, '/', ['SET', 'canary', 'alive'])).status).toBe(200);
  });

  it('denies SCRIPT DEBUG, which no `allow` can lift, to the backend user itself', async () => {
    for (const allow of [[], ['SCRIPT'], ['FLUSHDB']]) {
      expect(backendAclRules(allow).split(' ')).toContain('-script|debug');
    }
    // redis-server took the rule (beforeAll) and enforces it on a direct connection as that user.
    const asUser = new IORedis(redis.port, '127.0.0.1', {
      username: 'edge-gateway',
      password: 'gw-secret-pass',
      lazyConnect: true,
    });
    await asUser.connect();
    try {
      await expect(asUser.call('SCRIPT', 'DEBUG', 'YES')).rejects.toThrow(/NOPERM/);
      expect(await asUser.call('SCRIPT', 'EXISTS', 'x')).toEqual([0]);
    } finally {
      asUser.disconnect();
    }
  });

  it('stops a script from running a denied command', async () => {
    for (const [path, body] of [
      ['/', ['EVAL', "return redis.call('FLUSHDB')", '0']],
      ['/pipeline', [['EVAL', "return redis.call('flushall')", '0']]],
      ['/multi-exec', [['EVAL', "return redis.call('FLUSHDB')", '0']]],
    ] as const) {
      const reply = await post(gw.url, path, body);
      expect(reply.text).toMatch(/can't run this command/);
      expect(await admin.get('canary')).toBe('alive');
    }
  });
});
