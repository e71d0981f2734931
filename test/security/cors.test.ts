import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';

/**
 * CORS: only listed origins (exact match) get `Access-Control-*` headers, on preflights and on
 * responses, on every route (REST, availability, admin). An unlisted origin gets none, so a
 * browser will not hand the response to that page. Never `allow-credentials`: the API uses
 * bearer tokens, not cookies.
 */
const ALLOWED = 'https://app.example';
const UNLISTED = [
  'https://evil.example',
  'https://app.example.evil.example',
  'https://evilapp.example',
  'http://app.example',
  'https://app.example:8443',
  'https://APP.EXAMPLE',
  'null',
  `${ALLOWED}/`,
  `${ALLOWED} https://evil.example`,
  `https://evil.example, ${ALLOWED}`,
];

let cluster: LocalCluster;
let noCors: RunningGateway;
let member: LocalCluster['members'][number];

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 1, gateway: { corsOrigins: [ALLOWED] } });
  member = cluster.members[0]!;
  noCors = await startGateway({
    redisUrl: cluster.redisUrls!.a!,
    token: member.token,
    log: () => {},
  });
});
afterAll(async () => {
  await noCors?.close();
  await cluster?.stop();
});

function corsHeaders(response: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of response.headers) if (k.startsWith('access-control-')) out[k] = v;
  return out;
}

async function preflight(base: string, path: string, origin: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, upstash-encoding',
    },
  });
}

async function post(base: string, origin: string): Promise<Response> {
  return fetch(base, {
    method: 'POST',
    headers: { origin, authorization: `Bearer ${member.token}` },
    body: '["PING"]',
  });
}

const PATHS = [
  '/',
  '/pipeline',
  '/multi-exec',
  '/get/k',
  '/v1/bdbs/1/availability',
  '/admin/state',
];

describe('CORS', () => {
  it('answers preflights from the listed origin, for every route', async () => {
    for (const path of PATHS) {
      const response = await preflight(member.url, path, ALLOWED);
      expect(response.status, path).toBe(204);
      const headers = corsHeaders(response);
      expect(headers['access-control-allow-origin'], path).toBe(ALLOWED);
      expect(headers['access-control-allow-headers']?.toLowerCase(), path).toContain(
        'authorization',
      );
      expect(headers['access-control-allow-credentials'], path).toBeUndefined();
      expect(response.headers.get('vary')?.toLowerCase()).toContain('origin');
    }
    const response = await post(member.url, ALLOWED);
    expect(response.status).toBe(200);
    expect(corsHeaders(response)).toMatchObject({
      'access-control-allow-origin': ALLOWED,
      'access-control-expose-headers':
        'upstash-sync-token, x-redis-edge-sent, x-redis-edge-refused',
    });
    expect(corsHeaders(response)['access-control-allow-credentials']).toBeUndefined();
  });

  it('gives unlisted origins no CORS header at all, on preflights and responses', async () => {
    for (const origin of UNLISTED) {
      for (const path of PATHS) {
        const response = await preflight(member.url, path, origin);
        expect(corsHeaders(response), `${origin} ${path}`).toEqual({});
        await response.body?.cancel();
      }
      const response = await post(member.url, origin);
      expect(corsHeaders(response), origin).toEqual({});
      await response.body?.cancel();
    }
  });

  it('a preflight never reaches auth or Redis, and never authorizes a request by itself', async () => {
    // A preflight carries no credentials; the real request must still present the token.
    const response = await fetch(member.url, {
      method: 'POST',
      headers: { origin: ALLOWED },
      body: '["PING"]',
    });
    expect(response.status).toBe(401);
    expect(corsHeaders(response)['access-control-allow-origin']).toBe(ALLOWED);
  });

  it('a gateway without corsOrigins sends no CORS headers to anyone', async () => {
    for (const origin of [ALLOWED, ...UNLISTED.slice(0, 3)]) {
      const pre = await preflight(noCors.url, '/', origin);
      expect(corsHeaders(pre), origin).toEqual({});
      const response = await post(noCors.url, origin);
      expect(response.status).toBe(200);
      expect(corsHeaders(response), origin).toEqual({});
    }
  });
});
