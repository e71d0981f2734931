import net from 'node:net';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayConfigError, NOT_SENT_HEADER, startGateway } from '../../src/gateway/index.js';
import type { GatewayOptions } from '../../src/gateway/types.js';
import { ADMIN_TOKEN, post, request, sleep, startTestGateway, TOKEN, waitFor } from './helpers.js';
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

  it('cut off a client that stops reading once its backlog passes the limit, releasing the backend', async () => {
    const gw = await startTestGateway(redisServer, {
      maxStreamBufferBytes: 256 * 1024,
      adminToken: ADMIN_TOKEN,
    });
    const { port } = new URL(gw.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.on('error', () => {});
    try {
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(
        'POST /subscribe/slow-chan HTTP/1.1\r\nHost: x\r\n' +
          `Authorization: Bearer ${TOKEN}\r\nAccept: text/event-stream\r\nContent-Length: 0\r\n\r\n`,
      );
      // Read up to the subscribe confirmation, then never read again.
      let head = '';
      await new Promise<void>((resolve) => {
        const onData = (chunk: Buffer) => {
          head += chunk.toString();
          if (!head.includes('subscribe,slow-chan,1')) return;
          socket.off('data', onData);
          socket.pause();
          resolve();
        };
        socket.on('data', onData);
      });
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      const subscribers = async () =>
        String(await direct.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
          .split('\n')
          .filter((line) => line.includes('name=redis-edge-gateway')).length;
      expect(await subscribers()).toBe(1);

      // Far more than the socket buffers can hold: without a limit all of it would pile up
      // in the gateway. Redis counts the receivers, so 0 means the gateway unsubscribed.
      const payload = 'x'.repeat(64 * 1024);
      let published = 0;
      let receivers = 1;
      while (receivers > 0 && published < 2000) {
        receivers = Number(await direct.publish('slow-chan', payload));
        published++;
      }
      expect(receivers).toBe(0);
      expect(published).toBeLessThan(2000);
      await waitFor(async () => (await subscribers()) === 0, 2000, 'subscriber to be released');
      const state = await request(`${gw.url}/admin/state`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(state.body).toMatchObject({ streams: 0 });

      // The gateway keeps serving, event streams included.
      expect((await post(gw.url, '/', ['PING'])).body).toEqual({ result: 'PONG' });
      const stream = await subscribe(gw.url, 'after-slow');
      await stream.until('subscribe,after-slow,1');
      await direct.publish('after-slow', 'hello');
      await stream.until('message,after-slow,hello');
    } finally {
      socket.destroy();
      await gw.gateway.close();
    }
  });

  it('keep a client that reads within the limit', async () => {
    const gw = await startTestGateway(redisServer, { maxStreamBufferBytes: 64 * 1024 });
    try {
      const stream = await subscribe(gw.url, 'fast-chan');
      await stream.until('subscribe,fast-chan,1');
      const payload = 'y'.repeat(16 * 1024);
      for (let i = 0; i < 200; i++) await direct.publish('fast-chan', `${i}:${payload}`);
      await stream.until(`message,fast-chan,199:`);
      expect(Number(await direct.publish('fast-chan', 'still'))).toBe(1);
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
    [{ maxStreamBufferBytes: 0 }, 'maxStreamBufferBytes'],
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
