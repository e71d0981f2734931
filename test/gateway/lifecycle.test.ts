import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayConfigError, NOT_SENT_HEADER, startGateway } from '../../src/gateway/index.js';
import type { GatewayOptions } from '../../src/gateway/types.js';
import { post, sleep, startTestGateway, TOKEN, waitFor } from './helpers.js';
import { freePort, RedisProcess } from './redis-process.js';

/** Startup, shutdown and the life of event streams. */
let redisServer: RedisProcess;
let direct: IORedis;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  direct = new IORedis(redisServer.url);
  direct.on('error', () => {});
});

afterAll(async () => {
  direct?.disconnect();
  await redisServer?.stop();
});

/** Gateway connections as Redis sees them (the pool names its connections). */
async function gatewayClients(): Promise<number> {
  const list = String(await direct.call('CLIENT', 'LIST', 'TYPE', 'normal'));
  return list.split('\n').filter((line) => line.includes('name=redis-edge-gateway')).length;
}

/** Opens an SSE subscription and returns a reader over its text. */
async function subscribe(url: string, channel: string) {
  const res = await fetch(`${url}/subscribe/${channel}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let text = '';
  return {
    /** Reads until the stream ends; returns everything received. */
    async untilEnd(): Promise<string> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += Buffer.from(value).toString();
      }
    },
    async until(needle: string): Promise<void> {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += Buffer.from(value).toString();
      }
    },
  };
}

describe('shutdown', () => {
  it('close() finishes in-flight requests, ends streams, refuses new work, frees the backend', async () => {
    const gw = await startTestGateway(redisServer, { allow: ['DEBUG'] });
    expect(await gatewayClients()).toBe(4);
    const stream = await subscribe(gw.url, 'shutdown-chan');
    await stream.until('subscribe,shutdown-chan,1');

    const slow = post(gw.url, '/', ['DEBUG', 'SLEEP', '0.3']);
    await sleep(50);
    const closing = gw.gateway.close();
    // Anything new while closing is either refused at the socket or told "not sent".
    const late = await post(gw.url, '/', ['INCR', 'late']).catch(() => null);
    if (late) {
      expect(late.status).toBe(503);
      expect(late.headers.get(NOT_SENT_HEADER)).toBe('0');
    }

    expect((await slow).body).toEqual({ result: 'OK' });
    expect(await stream.untilEnd()).toBe('data: subscribe,shutdown-chan,1\n\n');
    await closing;
    await expect(fetch(`${gw.url}/`)).rejects.toThrow();
    await waitFor(async () => (await gatewayClients()) === 0, 2000, 'pool connections to close');
    expect(await direct.exists('late')).toBe(0);
    expect(gw.logs).toContain('shutting down');
    expect(gw.logs.at(-1)).toBe('stopped');
    // Idempotent.
    await gw.gateway.close();
  });
});

describe('event streams', () => {
  it('end when their backend connection drops, so the client can resubscribe', async () => {
    const gw = await startTestGateway(redisServer);
    try {
      const stream = await subscribe(gw.url, 'drop-chan');
      await stream.until('subscribe,drop-chan,1');
      await direct.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      expect(await stream.untilEnd()).toBe('data: subscribe,drop-chan,1\n\n');
      expect((await post(gw.url, '/', ['PING'])).status).toBe(200);
    } finally {
      await gw.gateway.close();
    }
  });
});

describe('startup', () => {
  it('starts with the backend down, answers 503 not-sent, then serves once it is up', async () => {
    const port = await freePort();
    const logs: string[] = [];
    const started = Date.now();
    const gw = await startGateway({
      redisUrl: `redis://127.0.0.1:${port}`,
      token: TOKEN,
      log: (line) => logs.push(line),
    });
    let late: RedisProcess | undefined;
    try {
      expect(Date.now() - started).toBeLessThan(2500);
      const down = await post(gw.url, '/', ['SET', 'k', 'v']);
      expect(down.status).toBe(503);
      expect(down.headers.get(NOT_SENT_HEADER)).toBe('0');
      expect(logs).toContain(`backend 127.0.0.1:${port} unavailable (ECONNREFUSED)`);

      late = await RedisProcess.start(port);
      await waitFor(
        async () => (await post(gw.url, '/', ['PING'])).status === 200,
        5000,
        'backend',
      );
      expect(logs).toContain(`backend 127.0.0.1:${port} available`);
      // One line per state change, not one per reconnect attempt.
      expect(logs.filter((l) => l.includes('unavailable'))).toHaveLength(1);
    } finally {
      await gw.close();
      await late?.stop();
    }
  });

  it.each([
    [{ token: '' }, 'token'],
    [{ redisUrl: 'http://127.0.0.1:1' }, 'redisUrl'],
    [{ port: 70000 }, 'port'],
    [{ poolSize: 0 }, 'poolSize'],
    [{ backendTimeoutMs: -1 }, 'backendTimeoutMs'],
    [{ maxBodyBytes: 1.5 }, 'maxBodyBytes'],
    [{ readonlyToken: TOKEN }, 'readonlyToken'],
    [{ corsOrigins: [''] }, 'corsOrigins'],
    [{ availability: { username: 'u', password: '' } }, 'availability.password'],
    [{ availability: { username: 'u', password: 'p', bdbUid: 0 } }, 'availability.bdbUid'],
  ] as [Partial<GatewayOptions>, string][])('%j → GatewayConfigError(%s)', async (bad, field) => {
    const attempt = startGateway({ redisUrl: redisServer.url, token: TOKEN, ...bad });
    await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
    await expect(attempt).rejects.toMatchObject({ field });
  });
});
