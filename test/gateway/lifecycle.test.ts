import { spawn } from 'node:child_process';
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

/** Gateway subscriber connections as Redis sees them. */
async function gatewaySubscribers(): Promise<number> {
  return String(await direct.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
    .split('\n')
    .filter((line) => line.includes('name=redis-edge-gateway')).length;
}

/** Open event streams, as the admin endpoint reports them. */
async function streams(url: string): Promise<number> {
  const state = await request(`${url}/admin/state`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (state.body as { streams: number }).streams;
}

/**
 * Publishes `count` messages of `size` bytes from a separate process; resolves to the number
 * of receivers of the last one.
 */
async function publishElsewhere(channel: string, size: number, count: number): Promise<string> {
  const script = `
    const { Redis } = require('ioredis');
    const p = new Redis(process.argv[1]);
    const payload = 'x'.repeat(${size});
    (async () => {
      let last;
      for (let sent = 0; sent < ${count}; sent += 10000) {
        const pipeline = p.pipeline();
        for (let i = 0; i < Math.min(10000, ${count} - sent); i++) pipeline.publish(process.argv[2], payload);
        last = (await pipeline.exec()).at(-1)[1];
      }
      process.stdout.write(String(last));
      p.disconnect();
    })();`;
  const child = spawn(process.execPath, ['-e', script, redisServer.url, channel], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`publisher exited with ${code}`);
  return out;
}

/**
 * Opens an event stream over a raw socket, reads its response head (and up to `until`, if
 * given), then never reads again.
 */
async function stalledStream(url: string, path: string, until: string | null): Promise<net.Socket> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: x\r\n` +
      `Authorization: Bearer ${TOKEN}\r\nAccept: text/event-stream\r\nContent-Length: 0\r\n\r\n`,
  );
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      head += chunk.toString();
      if (!head.includes('\r\n\r\n') || (until && !head.includes(until))) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
  expect(head).toMatch(/^HTTP\/1\.1 200/);
  return socket;
}

describe('shutdown', () => {
  it('close() finishes in-flight requests, ends streams, refuses new work, frees the backend', async () => {
    const gw = await startTestGateway(redisServer, { allow: ['DEBUG'] });
    expect(await gatewayClients()).toBe(4);
    const stream = await subscribe(gw.url, 'shutdown-chan');
    await stream.until('subscribe,shutdown-chan,1');

    const slow = post(gw.url, '/', ['DEBUG', 'SLEEP', '0.5']);
    // Closing must find the command running in Redis (a fixed wait was not always enough on a
    // loaded machine): DEBUG SLEEP blocks the server, so a PING that does not answer at once
    // says it has started.
    await waitFor(
      () => Promise.race([direct.ping().then(() => false), sleep(100).then(() => true)]),
      3000,
      'DEBUG SLEEP to start',
    );
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

  it('stop reading from Redis for a client that stops reading: Redis holds the backlog, and when it drops the subscriber the client is cut off', async () => {
    // A gateway limit far above what is published: only backpressure keeps the heap small.
    const gw = await startTestGateway(redisServer, {
      maxStreamBufferBytes: 512 * 1024 * 1024,
      adminToken: ADMIN_TOKEN,
    });
    const socket = await stalledStream(gw.url, '/subscribe/slow-chan', 'subscribe,slow-chan,1');
    let socketClosed = false;
    socket.on('close', () => {
      socketClosed = true;
    });
    try {
      expect(await gatewaySubscribers()).toBe(1);
      // No limit in Redis for now: everything published waits there for the gateway.
      await direct.config('SET', 'client-output-buffer-limit', 'pubsub 0 0 0');
      const before = process.memoryUsage().heapUsed;
      // 100 MiB in small messages (each one its own event), from another process so that only
      // the gateway's allocations show in this heap.
      expect(await publishElsewhere('slow-chan', 512, 200 * 1024)).toBe('1');
      await sleep(200);
      const growth = process.memoryUsage().heapUsed - before;
      expect(growth).toBeLessThan(64 * 1024 * 1024);
      expect(socketClosed).toBe(false);
      expect(await gatewaySubscribers()).toBe(1);

      // Now Redis' limit for subscribers applies: the next message makes it drop the gateway's.
      await direct.config('SET', 'client-output-buffer-limit', 'pubsub 1mb 0 0');
      expect(await direct.publish('slow-chan', 'x')).toBe(1);
      await waitFor(async () => (await gatewaySubscribers()) === 0, 2000, 'Redis to drop it');
      await waitFor(async () => (await streams(gw.url)) === 0, 5000, 'the stream to end');
      // Cut off, not merely ended: what the socket holds is all it gets before the close.
      socket.resume();
      await waitFor(() => socketClosed, 5000, 'the client to be cut off');

      // The gateway keeps serving, event streams included.
      expect((await post(gw.url, '/', ['PING'])).body).toEqual({ result: 'PONG' });
      const stream = await subscribe(gw.url, 'after-slow');
      await stream.until('subscribe,after-slow,1');
      await direct.publish('after-slow', 'hello');
      await stream.until('message,after-slow,hello');
    } finally {
      await direct.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
      socket.destroy();
      await gw.gateway.close();
    }
  });

  it('deliver every message of a large burst to a client that reads continuously', async () => {
    const gw = await startTestGateway(redisServer);
    const publisher = new IORedis(redisServer.url);
    try {
      const res = await fetch(`${gw.url}/subscribe/burst-chan`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const reader = res.body!.getReader();
      const count = 8 * 1024; // 4 KiB each: 32 MiB, published as fast as Redis takes it
      const payload = 'z'.repeat(4096);
      const frameBytes = `data: message,burst-chan,${payload}\n\n`.length;
      const confirmation = 'data: subscribe,burst-chan,1\n\n'.length;
      let received = 0;
      const first = await reader.read();
      received += first.value?.byteLength ?? 0;
      expect(received).toBe(confirmation);

      const pipeline = publisher.pipeline();
      for (let i = 0; i < count; i++) pipeline.publish('burst-chan', payload);
      const publishing = pipeline.exec();
      while (received < confirmation + count * frameBytes) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended after ${received} bytes`);
        received += value.byteLength;
      }
      expect(received).toBe(confirmation + count * frameBytes);
      const results = await publishing;
      expect(results?.every(([error, receivers]) => !error && receivers === 1)).toBe(true);
      expect(await publisher.publish('burst-chan', 'still')).toBe(1);
      await reader.cancel();
    } finally {
      publisher.disconnect();
      await gw.gateway.close();
    }
  });

  it('cut off a MONITOR client that stops reading once the gateway holds more than the limit', async () => {
    const gw = await startTestGateway(redisServer, {
      maxStreamBufferBytes: 256 * 1024,
      allow: ['monitor'],
      adminToken: ADMIN_TOKEN,
    });
    const socket = await stalledStream(gw.url, '/monitor', null);
    let socketClosed = false;
    socket.on('close', () => {
      socketClosed = true;
    });
    try {
      const monitors = async () =>
        String(await direct.call('CLIENT', 'LIST', 'TYPE', 'normal'))
          .split('\n')
          .filter((line) => line.includes('name=redis-edge-gateway') && line.includes('flags=O'))
          .length;
      expect(await monitors()).toBe(1);
      const value = 'm'.repeat(16 * 1024);
      for (let i = 0; i < 100 && !socketClosed; i++) {
        const pipeline = direct.pipeline();
        for (let j = 0; j < 100; j++) pipeline.set('monitored', value);
        await pipeline.exec();
      }
      await waitFor(async () => (await streams(gw.url)) === 0, 5000, 'the stream to end');
      socket.resume();
      await waitFor(() => socketClosed, 5000, 'the client to be cut off');
      await waitFor(async () => (await monitors()) === 0, 2000, 'the MONITOR connection to close');
    } finally {
      socket.destroy();
      await gw.gateway.close();
    }
  });

  it('are released when the client leaves while the stream is being opened', async () => {
    // `@hono/node-server` aborts a request's signal only if it was read before the client
    // left; read after the backend connection was opened, it never aborted, and each such
    // stream kept its Redis connection (and, for MONITOR, up to 32 MiB of events) for good.
    const gw = await startTestGateway(redisServer, { allow: ['monitor'], adminToken: ADMIN_TOKEN });
    const { port } = new URL(gw.url);
    const connectionsReceived = async () =>
      Number(/total_connections_received:(\d+)/.exec(await direct.info('stats'))?.[1]);
    // Every kind: subscribers, monitors, and connections still in their handshake.
    const allGatewayConnections = async () =>
      String(await direct.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes('name=redis-edge-gateway')).length;
    try {
      const before = await connectionsReceived();
      const delays = [0, 0, 1, 2, 5, 10, 20, 50];
      const paths = ['/subscribe/early-leaver', '/monitor'];
      await Promise.all(
        delays.flatMap((ms) =>
          paths.map(
            (path) =>
              new Promise<void>((resolve) => {
                const socket = net.connect(Number(port), '127.0.0.1', () => {
                  socket.write(
                    `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
                  );
                  setTimeout(() => socket.destroy(), ms);
                });
                socket.on('error', () => {});
                socket.on('close', () => resolve());
              }),
          ),
        ),
      );
      const opened = delays.length * paths.length;
      // Every request got as far as opening its Redis connection...
      await waitFor(
        async () => (await connectionsReceived()) >= before + opened,
        5000,
        'the stream connections to be opened',
      );
      // ...and none is left: only the pool on Redis, no stream in the gateway.
      await waitFor(
        async () => (await allGatewayConnections()) === 4,
        3000,
        'stream connections to close',
      );
      expect(await streams(gw.url)).toBe(0);
    } finally {
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
