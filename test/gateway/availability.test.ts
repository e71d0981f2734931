import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  AVAILABILITY_PASSWORD,
  AVAILABILITY_USER,
  post,
  type Reply,
  request,
  secretsIn,
  startTestGateway,
  type TestGateway,
  TOKEN,
  waitFor,
} from './helpers.js';
import { RedisProcess } from './redis-process.js';

/** The Redis Software availability API emulation and the fault-injection endpoints. */
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const GOOD = { authorization: basic(AVAILABILITY_USER, AVAILABILITY_PASSWORD) };
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const availability = { username: AVAILABILITY_USER, password: AVAILABILITY_PASSWORD, bdbUid: 7 };

const WHOLE = '/v1/bdbs/7/availability';
const LOCAL = '/v1/local/bdbs/7/endpoint/availability';

let redisServer: RedisProcess;
/** Availability on the REST port, admin endpoints on. */
let gw: TestGateway;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  gw = await startTestGateway(redisServer, { availability, adminToken: ADMIN_TOKEN });
});

afterAll(async () => {
  await gw?.gateway.close();
  await redisServer?.stop();
  expect(secretsIn(gw?.logs ?? [])).toEqual([]);
});

const get = (path: string, headers: Record<string, string> = GOOD) =>
  request(gw.url + path, { headers });

const admin = (path: string, body: unknown, headers: Record<string, string> = ADMIN) =>
  request(gw.url + path, { method: 'POST', headers, body: JSON.stringify(body) });

function expectApiError(reply: Reply, status: number, code: string, description?: RegExp) {
  expect(reply.status).toBe(status);
  expect(reply.body).toEqual({
    error_code: code,
    description: expect.stringMatching(description ?? /./),
  });
}

describe('basic auth', () => {
  it.each([
    ['missing', {}],
    ['wrong password', { authorization: basic(AVAILABILITY_USER, 'nope') }],
    ['wrong user', { authorization: basic('someone', AVAILABILITY_PASSWORD) }],
    ['the REST bearer token', { authorization: `Bearer ${TOKEN}` }],
    ['garbage', { authorization: 'Basic !!!' }],
  ])('%s → 401', async (_name, headers) => {
    for (const path of [WHOLE, LOCAL, '/v1/bdbs']) {
      const reply = await get(path, headers as Record<string, string>);
      expectApiError(reply, 401, 'unauthorized');
      expect(reply.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
  });

  it('the availability routes do not need (or accept) the REST token', async () => {
    expect((await get(WHOLE)).status).toBe(200);
    // ...and the REST API does not accept the availability credentials.
    const rest = await post(gw.url, '/', ['PING'], GOOD);
    expect(rest.status).toBe(401);
  });
});

describe('availability', () => {
  it('200 {} when the backend answers PING', async () => {
    for (const path of [WHOLE, LOCAL]) {
      const reply = await get(path);
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({});
    }
  });

  it('404 db_not_found for another uid', async () => {
    expectApiError(await get('/v1/bdbs/8/availability'), 404, 'db_not_found');
    expectApiError(await get('/v1/local/bdbs/abc/endpoint/availability'), 404, 'db_not_found');
  });

  it.each([
    'extend_check=replication',
    'extend_check=',
    'extend_check=lag&availability_lag_tolerance_ms=abc',
    'extend_check=lag&availability_lag_tolerance_ms=-1',
    'extend_check=lag&availability_lag_tolerance_ms=1.5',
    'availability_lag_tolerance_ms=',
  ])('400 invalid_schema for ?%s', async (query) => {
    expectApiError(await get(`${WHOLE}?${query}`), 400, 'invalid_schema');
    expectApiError(await get(`${LOCAL}?${query}`), 400, 'invalid_schema');
  });

  it('unknown routes and methods are JSON errors', async () => {
    expectApiError(await get('/v1/nodes'), 404, 'not_found');
    const post405 = await request(gw.url + WHOLE, { method: 'POST', headers: GOOD });
    expectApiError(post405, 405, 'method_not_allowed');
  });

  it('discovery lists the database with its endpoint', async () => {
    const reply = await get('/v1/bdbs?fields=uid,endpoints');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual([
      {
        uid: 7,
        endpoints: [
          {
            uid: '7:1',
            dns_name: '127.0.0.1',
            addr: ['127.0.0.1'],
            port: redisServer.port,
            addr_type: 'external',
          },
        ],
      },
    ]);
    const all = await get('/v1/bdbs');
    expect(all.body).toEqual([
      expect.objectContaining({
        uid: 7,
        name: 'db7',
        status: 'active',
        endpoints: expect.any(Array),
      }),
    ]);
  });
});

describe('lag emulation', () => {
  it('compares the emulated lag with the tolerance only when extend_check=lag', async () => {
    expect((await admin('/admin/lag', { ms: 250 })).status).toBe(200);
    try {
      // Default cluster tolerance is 100 ms.
      expectApiError(await get(`${WHOLE}?extend_check=lag`), 503, 'bdb_unavailable', /lag/);
      expectApiError(
        await get(`${LOCAL}?extend_check=lag`),
        503,
        'bdb_endpoint_unavailable',
        /lag of 250 ms exceeds the tolerance of 100 ms/,
      );
      expectApiError(
        await get(`${WHOLE}?extend_check=lag&availability_lag_tolerance_ms=200`),
        503,
        'bdb_unavailable',
      );
      const within = await get(`${WHOLE}?extend_check=lag&availability_lag_tolerance_ms=250`);
      expect(within.status).toBe(200);
      expect(
        (await get(`${LOCAL}?extend_check=lag&availability_lag_tolerance_ms=5000`)).status,
      ).toBe(200);
      // Without extend_check lag is not considered.
      expect((await get(WHOLE)).status).toBe(200);
      expect((await get(`${WHOLE}?availability_lag_tolerance_ms=10`)).status).toBe(200);
    } finally {
      await admin('/admin/lag', { ms: 0 });
    }
    expect((await get(`${WHOLE}?extend_check=lag`)).status).toBe(200);
  });

  it('setLag() on the handle does the same in process', async () => {
    gw.gateway.setLag(1000);
    expect((await get(`${WHOLE}?extend_check=lag`)).status).toBe(503);
    gw.gateway.setLag(0);
    expect((await get(`${WHOLE}?extend_check=lag`)).status).toBe(200);
  });
});

describe('fault injection', () => {
  it('forces an availability answer until reset with null', async () => {
    const set = await admin('/admin/availability', {
      status: 503,
      errorCode: 'no_quorum',
      description: 'forced by test',
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      availability: { status: 503, errorCode: 'no_quorum', description: 'forced by test' },
    });
    expectApiError(await get(WHOLE), 503, 'no_quorum', /^forced by test$/);
    expectApiError(await get(LOCAL), 503, 'no_quorum', /^forced by test$/);
    // Request errors still win over the forced answer.
    expectApiError(await get('/v1/bdbs/8/availability'), 404, 'db_not_found');

    await admin('/admin/availability', { status: 500 });
    expectApiError(await get(WHOLE), 500, 'error');
    await admin('/admin/availability', { status: 503 });
    expectApiError(await get(LOCAL), 503, 'bdb_endpoint_unavailable');
    await admin('/admin/availability', { status: 200 });
    expect((await get(WHOLE)).status).toBe(200);

    const reset = await admin('/admin/availability', null);
    expect(reset.body).toMatchObject({ availability: null });
    expect((await get(WHOLE)).status).toBe(200);
  });

  it('setAvailability() on the handle does the same in process', async () => {
    gw.gateway.setAvailability({ status: 503, errorCode: 'bdb_unavailable' });
    expectApiError(await get(WHOLE), 503, 'bdb_unavailable');
    gw.gateway.setAvailability(null);
    expect((await get(WHOLE)).status).toBe(200);
  });

  it('reports its state', async () => {
    await admin('/admin/lag', { ms: 42 });
    const state = await request(`${gw.url}/admin/state`, { headers: ADMIN });
    expect(state.status).toBe(200);
    expect(state.body).toEqual({
      availability: null,
      lagMs: 42,
      backend: { target: `127.0.0.1:${redisServer.port}`, ready: 4, poolSize: 4 },
      streams: 0,
    });
    await admin('/admin/lag', { ms: 0 });
  });

  it.each([
    ['missing', {}],
    ['wrong', { authorization: 'Bearer nope' }],
    ['the REST token', { authorization: `Bearer ${TOKEN}` }],
    ['basic auth', GOOD],
  ])('401 with a %s token', async (_name, headers) => {
    const reply = await admin('/admin/lag', { ms: 1 }, headers as Record<string, string>);
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: 'Unauthorized' });
    const state = await request(`${gw.url}/admin/state`, {
      headers: headers as Record<string, string>,
    });
    expect(state.status).toBe(401);
  });

  it.each([
    ['/admin/availability', { status: '503' }],
    ['/admin/availability', { status: 99 }],
    ['/admin/availability', { status: 204 }],
    ['/admin/availability', { status: 503, errorCode: 5 }],
    ['/admin/availability', [503]],
    ['/admin/lag', { ms: -1 }],
    ['/admin/lag', { ms: 'x' }],
    ['/admin/lag', null],
  ])('400 for %s %j', async (path, body) => {
    const reply = await admin(path, body);
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ error: expect.any(String) });
  });

  it('400 for a body that is not JSON, 404/405 for unknown routes', async () => {
    const bad = await request(`${gw.url}/admin/lag`, { method: 'POST', headers: ADMIN, body: '{' });
    expect(bad.status).toBe(400);
    expect((await request(`${gw.url}/admin/nope`, { headers: ADMIN })).status).toBe(404);
    expect((await request(`${gw.url}/admin/lag`, { headers: ADMIN })).status).toBe(405);
  });
});

describe('backend down', () => {
  it('503 bdb_unavailable / bdb_endpoint_unavailable, then 200 again', async () => {
    const port = redisServer.port;
    await redisServer.kill();
    try {
      await waitFor(async () => (await get(WHOLE)).status === 503, 5000, 'unavailability');
      expectApiError(await get(WHOLE), 503, 'bdb_unavailable', /^Database is not available$/);
      expectApiError(await get(LOCAL), 503, 'bdb_endpoint_unavailable');
      // Lag cannot make an unavailable database available.
      expect(
        (await get(`${WHOLE}?extend_check=lag&availability_lag_tolerance_ms=9999`)).status,
      ).toBe(503);
    } finally {
      await redisServer.spawn();
    }
    expect(redisServer.port).toBe(port);
    await waitFor(async () => (await get(WHOLE)).status === 200, 5000, 'availability again');
  });
});

describe('other layouts', () => {
  it('a separate availability port keeps the two APIs apart', async () => {
    const split = await startTestGateway(redisServer, {
      availability: { ...availability, port: 0 },
      adminToken: ADMIN_TOKEN,
    });
    try {
      const side = split.gateway.availabilityUrl!;
      expect(side).not.toBe(split.url);
      expect((await request(side + WHOLE, { headers: GOOD })).status).toBe(200);
      // Not on the REST port...
      expect((await request(split.url + WHOLE, { headers: GOOD })).status).toBe(404);
      // ...and REST is not on the availability port.
      const rest = await request(`${side}/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: '["PING"]',
      });
      expect(rest.status).toBe(404);
      expect((await post(split.url, '/', ['PING'])).status).toBe(200);
      // Fault injection reaches the availability answer from either port.
      await request(`${split.url}/admin/availability`, {
        method: 'POST',
        headers: ADMIN,
        body: '{"status":503}',
      });
      expect((await request(side + WHOLE, { headers: GOOD })).status).toBe(503);
      const viaSide = await request(`${side}/admin/state`, { headers: ADMIN });
      expect(viaSide.body).toMatchObject({ availability: { status: 503 } });
    } finally {
      await split.gateway.close();
    }
  });

  it('without adminToken the admin routes do not exist', async () => {
    const plain = await startTestGateway(redisServer, { availability });
    try {
      for (const [method, path] of [
        ['GET', '/admin/state'],
        ['POST', '/admin/lag'],
        ['POST', '/admin/availability'],
      ] as const) {
        const reply = await request(plain.url + path, {
          method,
          headers: ADMIN,
          body: method === 'POST' ? '{"ms":1}' : undefined,
        });
        expect(reply.status).toBe(404);
      }
      expect((await request(plain.url + WHOLE, { headers: GOOD })).status).toBe(200);
    } finally {
      await plain.gateway.close();
    }
  });

  it('without availability options the /v1 routes do not exist', async () => {
    const plain = await startTestGateway(redisServer, { adminToken: ADMIN_TOKEN });
    try {
      expect((await request(plain.url + WHOLE, { headers: GOOD })).status).toBe(404);
      expect(plain.gateway.availabilityUrl).toBeUndefined();
      expect((await request(`${plain.url}/admin/state`, { headers: ADMIN })).status).toBe(200);
    } finally {
      await plain.gateway.close();
    }
  });
});
