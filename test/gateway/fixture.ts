import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import type { GatewayOptions } from '../../src/gateway/types.js';
import { startTestGateway, type TestGateway } from './helpers.js';
import { RedisProcess } from './redis-process.js';

export interface RedisWithGateway {
  redis: RedisProcess;
  gw: TestGateway;
  /** A connection to the redis-server itself, to see what really ran. */
  direct: IORedis;
}

/**
 * A test file's own redis-server, a gateway in front of it and a direct connection, started in
 * `beforeAll` and stopped in `afterAll`. The fields are set once `beforeAll` has run.
 */
export function useRedisWithGateway(options: Partial<GatewayOptions> = {}): RedisWithGateway {
  const fixture = {} as RedisWithGateway;
  beforeAll(async () => {
    fixture.redis = await RedisProcess.start();
    fixture.direct = new IORedis(fixture.redis.port, '127.0.0.1');
    fixture.gw = await startTestGateway(fixture.redis, options);
  });
  afterAll(async () => {
    await fixture.gw?.gateway.close();
    fixture.direct?.disconnect();
    await fixture.redis?.stop();
  });
  return fixture;
}
