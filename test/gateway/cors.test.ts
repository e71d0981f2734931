import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, request, startTestGateway, type TestGateway } from './helpers.js';
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
    expect(ok.headers.get('access-control-expose-headers')).toBe('upstash-sync-token');
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
});
