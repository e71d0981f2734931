import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';

/**
 * The fault-injection endpoints (`/admin/...`) exist only when an admin token is configured:
 * otherwise every admin path is a 404 whatever the credentials (the REST token included), on
 * the REST port and on a separate availability port, and is never taken for a path-form
 * command. With a token they demand exactly that token.
 */
const TOKEN = 'admin-suite-rest-token-0123456789';
const ADMIN = 'admin-suite-admin-token-012345678';
const USER = 'admin@local';
const PASSWORD = 'admin-suite-password-0123456789';

let cluster: LocalCluster;
let off: RunningGateway;
let offSeparate: RunningGateway;
let on: RunningGateway;

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 1 });
  const redisUrl = cluster.redisUrls!.a!;
  const availability = { username: USER, password: PASSWORD };
  off = await startGateway({ redisUrl, token: TOKEN, availability, log: () => {} });
  offSeparate = await startGateway({
    redisUrl,
    token: TOKEN,
    availability: { ...availability, port: 0 },
    log: () => {},
  });
  on = await startGateway({
    redisUrl,
    token: TOKEN,
    adminToken: ADMIN,
    availability,
    log: () => {},
  });
});
afterAll(async () => {
  await Promise.all([off?.close(), offSeparate?.close(), on?.close()]);
  await cluster?.stop();
});

const ADMIN_CALLS: Array<[string, string, string | undefined]> = [
  ['GET', '/admin/state', undefined],
  ['POST', '/admin/availability', '{"status":503,"errorCode":"bdb_unavailable"}'],
  ['POST', '/admin/lag', '{"ms":100000}'],
  ['POST', '/admin/anything', '{}'],
  ['GET', '/admin', undefined],
  ['GET', '/ADMIN/state', undefined],
];

const CREDENTIALS: Array<Record<string, string>> = [
  {},
  { authorization: `Bearer ${TOKEN}` },
  { authorization: `Bearer ${ADMIN}` },
  { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
];

async function call(
  base: string,
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  });
}

async function availabilityStatus(gateway: RunningGateway): Promise<number> {
  const response = await fetch(`${gateway.availabilityUrl}/v1/bdbs/1/availability`, {
    headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
  });
  await response.body?.cancel();
  return response.status;
}

describe('admin endpoints without an admin token', () => {
  it('are 404 for everyone, on the REST port and on a separate availability port', async () => {
    for (const [gateway, base] of [
      [off, off.url],
      [offSeparate, offSeparate.url],
      [offSeparate, offSeparate.availabilityUrl!],
    ] as const) {
      for (const [method, path, body] of ADMIN_CALLS) {
        for (const headers of CREDENTIALS) {
          const response = await call(base, method, path, body, headers);
          const what = `${method} ${base === gateway.url ? 'rest' : 'availability'}${path} ${Object.keys(headers).join()}`;
          const status = response.status;
          await response.body?.cancel();
          // /ADMIN/state is a path-form "command" named ADMIN to the REST API: still not an
          // admin endpoint, and refused before it could reach Redis.
          if (
            path === '/ADMIN/state' &&
            base === gateway.url &&
            headers.authorization === `Bearer ${TOKEN}`
          ) {
            expect(status, what).not.toBe(200);
            continue;
          }
          expect([404, 401], what).toContain(status);
          if (path.startsWith('/admin')) expect(status, what).toBe(404);
        }
      }
    }
  });

  it('and the faults they would inject did not happen', async () => {
    expect(await availabilityStatus(off)).toBe(200);
    expect(await availabilityStatus(offSeparate)).toBe(200);
  });
});

describe('admin endpoints with an admin token', () => {
  it('demand exactly the admin token', async () => {
    for (const [method, path, body] of ADMIN_CALLS.slice(0, 3)) {
      for (const headers of CREDENTIALS.filter((h) => h.authorization !== `Bearer ${ADMIN}`)) {
        const response = await call(on.url, method, path, body, headers);
        expect(response.status, `${method} ${path} ${JSON.stringify(headers).slice(0, 30)}`).toBe(
          401,
        );
        await response.body?.cancel();
      }
    }
    expect(await availabilityStatus(on)).toBe(200);
    const state = await call(on.url, 'GET', '/admin/state', undefined, {
      authorization: `Bearer ${ADMIN}`,
    });
    expect(state.status).toBe(200);
    const json = (await state.json()) as Record<string, unknown>;
    expect(JSON.stringify(json)).not.toContain(TOKEN);
    expect(JSON.stringify(json)).not.toContain(PASSWORD);
  });

  it('work with it (so the 401s above are about the credentials)', async () => {
    const response = await call(on.url, 'POST', '/admin/availability', '{"status":503}', {
      authorization: `Bearer ${ADMIN}`,
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();
    expect(await availabilityStatus(on)).toBe(503);
    const reset = await call(on.url, 'POST', '/admin/availability', 'null', {
      authorization: `Bearer ${ADMIN}`,
    });
    expect(reset.status).toBe(200);
    await reset.body?.cancel();
    expect(await availabilityStatus(on)).toBe(200);
  });
});
