import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOT_SENT_HEADER } from '../../src/gateway/index.js';
import { post, request, sleep, startTestGateway, type TestGateway, TOKEN } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/** CORS: headers only for listed origins; preflights answered without auth. */
let redisServer: RedisProcess;
let listed: TestGateway;
let wildcard: TestGateway;
let none: TestGateway;

const ALLOWED = 'https://app.example';

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  listed = await startTestGateway(redisServer, {
    corsOrigins: [ALLOWED, 'http://localhost:3000'],
  });
  wildcard = await startTestGateway(redisServer, { corsOrigins: ['*'] });
  none = await startTestGateway(redisServer);
});

afterAll(async () => {
  await Promise.all([listed, wildcard, none].map((g) => g?.gateway.close()));
  await redisServer?.stop();
});

/**
 * Sends `start` of a raw request to a fresh gateway, closes the gateway, then sends `rest`: a
 * request that had started arriving before close(). Returns the response head, lower-cased.
 */
async function headAcrossClose(start: string, rest: string): Promise<string> {
  const gw = await startTestGateway(redisServer, { corsOrigins: [ALLOWED] });
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
  let raw = '';
  socket.on('data', (chunk) => {
    raw += chunk.toString();
  });
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(start);
  await sleep(50);
  const closing = gw.gateway.close();
  await sleep(50);
  socket.write(rest);
  await ended;
  await closing;
  return raw.split('\r\n\r\n')[0]!.toLowerCase();
}

const preflight = (base: string, origin: string) =>
  request(`${base}/pipeline`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,upstash-encoding',
    },
  });

describe('CORS', () => {
  it('a listed origin gets the headers on responses, errors included', async () => {
    const ok = await post(listed.url, '/', ['PING'], { origin: ALLOWED });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('access-control-expose-headers')).toBe(
      `upstash-sync-token, ${NOT_SENT_HEADER}, x-redis-edge-refused`,
    );
    expect(ok.headers.get('vary')).toMatch(/Origin/);

    const denied = await post(listed.url, '/', ['PING'], {
      origin: ALLOWED,
      authorization: 'Bearer wrong',
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('an unlisted origin gets no CORS headers', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.evil', 'null']) {
      const reply = await post(listed.url, '/', ['PING'], { origin });
      expect(reply.status).toBe(200);
      expect(reply.headers.get('access-control-allow-origin')).toBeNull();
      expect(reply.headers.get('access-control-expose-headers')).toBeNull();
    }
  });

  it('answers a preflight for a listed origin without auth', async () => {
    const reply = await preflight(listed.url, 'http://localhost:3000');
    expect(reply.status).toBe(204);
    expect(reply.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(reply.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST, PUT');
    const allowHeaders = reply.headers.get('access-control-allow-headers')?.toLowerCase() ?? '';
    for (const header of [
      'authorization',
      'content-type',
      'upstash-encoding',
      'upstash-sync-token',
    ]) {
      expect(allowHeaders).toContain(header);
    }
  });

  it('a preflight from an unlisted origin gets no grant', async () => {
    const reply = await preflight(listed.url, 'https://evil.example');
    expect(reply.headers.get('access-control-allow-origin')).toBeNull();
    expect(reply.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('`*` allows any origin', async () => {
    const reply = await post(wildcard.url, '/', ['PING'], { origin: 'https://anything.example' });
    expect(reply.headers.get('access-control-allow-origin')).toBe('*');
    expect(
      (await preflight(wildcard.url, 'https://x.example')).headers.get(
        'access-control-allow-origin',
      ),
    ).toBe('*');
  });

  it('no origins configured: no CORS headers at all', async () => {
    const reply = await post(none.url, '/', ['PING'], { origin: ALLOWED });
    expect(reply.headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (await preflight(none.url, ALLOWED)).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });

  it('a browser can read the not-sent marker: exposed, and on the 503 while shutting down', async () => {
    // The transport reads `x-redis-edge-sent: 0` to retry a write elsewhere; a header that is
    // not exposed reads as null cross-origin and the write would look ambiguous.
    const ok = await post(listed.url, '/', ['PING'], { origin: ALLOWED });
    const exposed = ok.headers.get('access-control-expose-headers')?.toLowerCase() ?? '';
    expect(exposed.split(/,\s*/)).toContain(NOT_SENT_HEADER);

    // A request that has started arriving before close() is answered by the gateway (not cut
    // at the socket): it gets the shutdown 503, which must carry the CORS headers too.
    const body = '["INCR","cors-late"]';
    const head = await headAcrossClose(
      'POST / HTTP/1.1\r\nhost: gateway\r\n',
      `origin: ${ALLOWED}\r\nauthorization: Bearer ${TOKEN}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    expect(head).toMatch(/^http\/1\.1 503/);
    expect(head).toContain(`\r\n${NOT_SENT_HEADER}: 0`);
    expect(head).toContain(`\r\naccess-control-allow-origin: ${ALLOWED}`);
    expect(head).toMatch(new RegExp(`\\r\\naccess-control-expose-headers: .*${NOT_SENT_HEADER}`));
  });

  it('preflights are still answered while shutting down, so the real request sees the 503', async () => {
    const head = await headAcrossClose(
      'OPTIONS /pipeline HTTP/1.1\r\nhost: gateway\r\n',
      `origin: ${ALLOWED}\r\naccess-control-request-method: POST\r\nconnection: close\r\n\r\n`,
    );
    expect(head).toMatch(/^http\/1\.1 204/);
    expect(head).toContain(`\r\naccess-control-allow-origin: ${ALLOWED}`);
  });
});
