import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OVERSIZE_DRAIN_BYTES, OVERSIZE_DRAIN_MS } from '../../src/gateway/input.js';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  createFailoverRedis,
  FailoverError,
} from '../../src/index.js';
import { post, request, sleep, startTestGateway, type TestGateway, TOKEN } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * An oversized body gets its 413 only after the gateway has read (and dropped) the rest of it.
 * Answering mid-upload and closing the socket made clients still sending (workerd, undici) see
 * a reset instead, which a failover client must count as a member failure of unknown outcome:
 * a few oversized writes opened every member's circuit. With the body read to the end, the 413
 * and its `{ error }` reach the client, which returns it as a command error.
 */
const LIMIT = 1024;
const SIZE = 512 * 1024;
const MESSAGE = `Request body exceeds ${LIMIT} bytes`;

let redisServer: RedisProcess;
let gw: TestGateway;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  gw = await startTestGateway(redisServer, { maxBodyBytes: LIMIT });
});
afterAll(async () => {
  await gw?.gateway.close();
  await redisServer?.stop();
});
afterEach(async () => {
  const reply = await post(gw.url, '/', ['PING']);
  expect(reply.status).toBe(200);
  expect(reply.body).toEqual({ result: 'PONG' });
});

const auth = { authorization: `Bearer ${TOKEN}` };
const setCommand = () => JSON.stringify(['SET', 'big', 'x'.repeat(SIZE)]);

function expect413(reply: { status: number; body: unknown }): void {
  expect(reply.status).toBe(413);
  expect(reply.body).toEqual({ error: MESSAGE, code: 'PAYLOAD_TOO_LARGE' });
}

/** A chunked body of `count` chunks of `size` bytes, each after `delayMs`. */
function chunkedBody(count: number, size: number, delayMs = 0): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(size).fill(0x78);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (delayMs > 0) await sleep(delayMs);
      if (sent++ < count) controller.enqueue(chunk);
      else controller.close();
    },
  });
}

interface RawReply {
  status: number;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** Whether the client had sent its whole body when the response began. */
  sentAll: boolean;
  reusedSocket: boolean;
}

/**
 * node:http with a keep-alive agent, sending `pieces` (after `headers`) with `gapMs` between
 * them, so the upload is still going when a premature answer would come.
 */
function slowPost(
  agent: Agent,
  headers: Record<string, string | number>,
  pieces: Buffer[],
  gapMs: number,
): Promise<RawReply> {
  const url = new URL(gw.url);
  return new Promise((resolve, reject) => {
    let sentAll = false;
    const req: ClientRequest = httpRequest(
      { host: url.hostname, port: url.port, path: '/', method: 'POST', agent, headers },
      (res) => {
        const response = { status: res.statusCode ?? 0, headers: res.headers, sentAll };
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ ...response, body: JSON.parse(text), reusedSocket: req.reusedSocket });
        });
      },
    );
    req.on('error', reject);
    req.flushHeaders();
    (async () => {
      for (const piece of pieces) {
        await sleep(gapMs);
        if (req.destroyed) return;
        req.write(piece);
      }
      sentAll = true;
      req.end();
    })().catch(reject);
  });
}

describe('an oversized body gets a 413 with a JSON { error }, not a reset', () => {
  it('fetch (undici) with a Content-Length over the limit', async () => {
    for (const path of ['/', '/pipeline', '/set/k']) {
      const reply = await request(`${gw.url}${path}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: setCommand(),
      });
      expect413(reply);
      // The body was read to the end, so the connection can be kept.
      expect(reply.headers.get('connection')).not.toBe('close');
    }
  });

  it('fetch (undici) with a chunked body (no Content-Length)', async () => {
    const reply = await request(`${gw.url}/`, {
      method: 'POST',
      headers: auth,
      body: chunkedBody(SIZE / (16 * 1024), 16 * 1024),
      duplex: 'half',
    } as RequestInit);
    expect413(reply);
  });

  it('fetch (undici) with a slow chunked upload still sending when the limit is passed', async () => {
    const reply = await request(`${gw.url}/`, {
      method: 'POST',
      headers: auth,
      body: chunkedBody(16, 32 * 1024, 15),
      duplex: 'half',
    } as RequestInit);
    expect413(reply);
  });

  it('the 413 comes after the last byte, and the connection stays usable (both framings)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const pieces = Array.from({ length: 8 }, () => Buffer.alloc(SIZE / 8, 'x'));
      const framings: Record<string, string | number>[] = [
        { 'content-length': SIZE },
        { 'transfer-encoding': 'chunked' },
      ];
      for (const framing of framings) {
        const reply = await slowPost(agent, { ...auth, ...framing }, pieces, 20);
        expect(reply.status).toBe(413);
        expect(reply.body).toEqual({ error: MESSAGE, code: 'PAYLOAD_TOO_LARGE' });
        expect(reply.sentAll).toBe(true);
        expect(reply.headers.connection).not.toBe('close');
      }
      // Same socket, next request: the 413s left it clean.
      const ping = Buffer.from('["PING"]');
      const next = await slowPost(agent, { ...auth, 'content-length': ping.length }, [ping], 0);
      expect(next.status).toBe(200);
      expect(next.body).toEqual({ result: 'PONG' });
      expect(next.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('a client trickling an oversized body is answered after the drain time, not held', async () => {
    const agent = new Agent({ keepAlive: false });
    try {
      const started = performance.now();
      // Over the limit at once, then a byte a second: 30 s of upload if nobody stopped it.
      const pieces = [
        Buffer.alloc(LIMIT + 10, 'x'),
        ...Array.from({ length: 30 }, () => Buffer.from('x')),
      ];
      const reply = await slowPost(agent, { ...auth, 'content-length': LIMIT + 40 }, pieces, 1000);
      const elapsed = performance.now() - started;
      expect(reply.status).toBe(413);
      expect(reply.body).toEqual({ error: MESSAGE, code: 'PAYLOAD_TOO_LARGE' });
      expect(reply.sentAll).toBe(false);
      expect(reply.headers.connection).toBe('close');
      expect(elapsed).toBeGreaterThan(OVERSIZE_DRAIN_MS - 100);
      expect(elapsed).toBeLessThan(OVERSIZE_DRAIN_MS + 3000);
    } finally {
      agent.destroy();
    }
  }, 20_000);

  it('a declared length too far over the limit to read is refused at once, with connection: close', async () => {
    const agent = new Agent({ keepAlive: false });
    try {
      // Headers only: the gateway must answer without waiting for a body it will not read.
      const reply = await slowPost(
        agent,
        { ...auth, 'content-length': LIMIT + OVERSIZE_DRAIN_BYTES + 1 },
        [],
        0,
      );
      expect(reply.status).toBe(413);
      expect(reply.body).toEqual({ error: MESSAGE, code: 'PAYLOAD_TOO_LARGE' });
      expect(reply.headers.connection).toBe('close');
    } finally {
      agent.destroy();
    }
  });
});

describe('a failover client writing an oversized value', () => {
  it('gets a command error, and the member is not counted as failing', async () => {
    const redis = createFailoverRedis({
      members: [{ name: 'a', url: gw.url, token: TOKEN }],
      health: { enabled: false },
    });
    const big = 'x'.repeat(SIZE);
    for (let i = 0; i < 5; i++) {
      const error = await redis.set('big', big).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(AmbiguousWriteError);
      expect(error).not.toBeInstanceOf(AllMembersFailedError);
      expect(error).not.toBeInstanceOf(FailoverError);
      expect((error as Error).message).toBe(MESSAGE);
    }
    const member = redis.snapshot().members[0];
    expect(member?.consecutiveFailures).toBe(0);
    expect(member?.circuit).toBe('closed');
    expect(await redis.set('small', 'v')).toBe('OK');
  });
});
