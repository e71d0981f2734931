import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/gateway/errors.js';
import { NOT_SENT_HEADER } from '../../src/gateway/index.js';
import { openStream } from '../../src/gateway/sse.js';
import { request, startTestGateway, type TestGateway, TOKEN, waitFor } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * Event streams against a stopped Redis (SIGSTOP: the kernel still accepts connections, nothing
 * answers). A command gets its 504 after the backend timeout; opening a stream must not wait
 * longer, nor leave its connection behind for Redis to find once it runs again.
 */
let redis: RedisProcess;
let gw: TestGateway;
let direct: IORedis;

const TIMEOUT_MS = 1000;

beforeAll(async () => {
  redis = await RedisProcess.start();
  direct = new IORedis(redis.port, '127.0.0.1');
  direct.on('error', () => {});
  gw = await startTestGateway(redis, { backendTimeoutMs: TIMEOUT_MS, allow: ['monitor'] });
});

afterAll(async () => {
  await redis?.resume();
  await gw?.gateway.close();
  direct?.disconnect();
  await redis?.stop();
});

/** The gateway's connections as Redis sees them, pool and streams alike. */
async function gatewayConnections(): Promise<number> {
  return String(await direct.call('CLIENT', 'LIST'))
    .split('\n')
    .filter((line) => line.includes('name=redis-edge-gateway')).length;
}

async function timed(path: string) {
  const started = Date.now();
  const reply = await request(gw.url + path, {
    headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
    signal: AbortSignal.timeout(10 * TIMEOUT_MS),
  });
  return { ...reply, ms: Date.now() - started };
}

describe('event streams while Redis is stopped', () => {
  it('are answered "not sent" within the backend timeout, and leave no connection behind', async () => {
    expect(await gatewayConnections()).toBe(4);
    await redis.pause();
    let answers: Awaited<ReturnType<typeof timed>>[];
    try {
      answers = await Promise.all(
        ['/subscribe/paused-chan', '/psubscribe/p*', '/monitor'].map(timed),
      );
    } finally {
      await redis.resume();
    }
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(answer.headers.get(NOT_SENT_HEADER)).toBe('0');
      expect(answer.body).toEqual({ error: 'backend unavailable', code: 'BACKEND_UNAVAILABLE' });
      expect(answer.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(answer.ms).toBeLessThan(TIMEOUT_MS + 1500);
    }
    // Redis now reads the handshakes queued while it was stopped, and the closes behind them.
    await waitFor(async () => (await gatewayConnections()) === 4, 3000, 'only the pool to remain');

    const res = await fetch(`${gw.url}/subscribe/after-pause`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe(
      'data: subscribe,after-pause,1\n\n',
    );
    await reader.cancel();
    await waitFor(async () => (await gatewayConnections()) === 4, 3000, 'the stream to close');
  });

  it('give up on a SUBSCRIBE that Redis does not confirm in time (504), releasing the connection', async () => {
    // Redis stopping between the handshake and the confirmation: a connection whose
    // SUBSCRIBE never settles.
    let disconnected = false;
    const connection = Object.assign(new EventEmitter(), {
      subscribe: () => new Promise(() => {}),
      disconnect: () => {
        disconnected = true;
      },
      stream: undefined,
    }) as unknown as Redis;
    const started = Date.now();
    const registry = new Set<() => void>();
    const opening = openStream({
      kind: 'subscribe',
      targets: ['never-confirmed'],
      connection,
      signal: new AbortController().signal,
      registry,
      maxBufferBytes: 1024 * 1024,
      confirmTimeoutMs: 200,
    });
    const failure = await opening.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as GatewayError).status).toBe(504);
    expect((failure as GatewayError).headers[NOT_SENT_HEADER]).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(disconnected).toBe(true);
    expect(registry.size).toBe(0);
  });
});
