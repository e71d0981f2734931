import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';

/**
 * A blocking command must not be able to jam the gateway's small connection pool: every later
 * request would wait behind it and answer 504 until a restart. Two layers:
 * - the deny-list refuses blocking stream reads in every option order Redis accepts
 *   (`XREADGROUP BLOCK 0 GROUP g c ...`, `COUNT 1 BLOCK 0 GROUP g c ...`), before anything is
 *   sent, so the pool is never touched;
 * - when an operator lifts the rule (`allow`), a command that times out gets its connection
 *   dropped and reconnected instead of reused, which also ends the block in Redis.
 */
let cluster: LocalCluster;
let redis: IORedis;
let strict: RunningGateway;
let lifted: RunningGateway;
const TOKEN = 'blocking-commands-token-0123456789';
const POOL = 2;
const TIMEOUT_MS = 400;

const REORDERED: string[][] = [
  ['XREADGROUP', 'BLOCK', '0', 'GROUP', 'g', 'c', 'STREAMS', 'bs', '>'],
  ['XREADGROUP', 'COUNT', '1', 'BLOCK', '0', 'GROUP', 'g', 'c', 'STREAMS', 'bs', '>'],
];

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 1 });
  const url = cluster.redisUrls!.a!;
  redis = new IORedis(url);
  // The group exists, so a blocking read that got through would really block.
  await redis.call('XGROUP', 'CREATE', 'bs', 'g', '$', 'MKSTREAM');
  const common = { redisUrl: url, token: TOKEN, poolSize: POOL, log: () => {} };
  strict = await startGateway({ ...common, backendTimeoutMs: TIMEOUT_MS });
  lifted = await startGateway({
    ...common,
    backendTimeoutMs: TIMEOUT_MS,
    allow: ['XREADGROUP', 'BLPOP'],
  });
});
afterAll(async () => {
  redis?.disconnect();
  await strict?.close();
  await lifted?.close();
  await cluster?.stop();
});

async function send(
  gateway: RunningGateway,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text), ms: Date.now() - started };
}

/** Several plain commands in a row, each answered promptly: no pooled connection is stuck. */
async function expectServing(gateway: RunningGateway, what: string): Promise<void> {
  for (let i = 0; i < POOL * 3; i++) {
    const reply = await send(gateway, '/', ['SET', 'after', String(i)]);
    expect(reply, `${what}, command ${i + 1}`).toMatchObject({
      status: 200,
      body: { result: 'OK' },
    });
    expect(reply.ms, `${what}, command ${i + 1}`).toBeLessThan(TIMEOUT_MS);
  }
}

async function blockedClients(): Promise<number> {
  const info = String(await redis.call('INFO', 'clients'));
  return Number(/blocked_clients:(\d+)/.exec(info)?.[1]);
}

describe('blocking stream reads in any option order', () => {
  it('are refused on every route, and the pool keeps serving', async () => {
    const attempts: Array<[string, unknown]> = [];
    for (const command of REORDERED) {
      attempts.push(['/', command]);
      attempts.push(['/pipeline', [command]]);
      attempts.push(['/multi-exec', [['SET', 'x', '1'], command]]);
      attempts.push([`/${command.map(encodeURIComponent).join('/')}`, undefined]);
    }
    // All at once, more than the pool holds: a single one let through would jam a connection.
    const replies = await Promise.all(attempts.map(([path, body]) => send(strict, path, body)));
    replies.forEach((reply, i) => {
      const what = `${attempts[i]![0]} ${JSON.stringify(attempts[i]![1])}`;
      expect(reply.status, what).toBe(400);
      expect(reply.body, what).toMatchObject({
        code: 'COMMAND_DENIED',
        error: expect.stringMatching(/^ERR .*'XREADGROUP'.*BLOCK/),
      });
    });
    expect(await blockedClients()).toBe(0);
    await expectServing(strict, 'after the refused attempts');
  });

  it('without BLOCK they still run, whatever the order', async () => {
    await redis.xadd('bs', '*', 'f', 'v');
    const reply = await send(strict, '/', [
      'XREADGROUP',
      'COUNT',
      '1',
      'GROUP',
      'g',
      'c',
      'STREAMS',
      'bs',
      '>',
    ]);
    expect(reply.status).toBe(200);
    expect(JSON.stringify(reply.body)).toContain('"bs"');
  });
});

describe('a command that times out', () => {
  it('does not leave its connection blocked for the requests after it', async () => {
    // `allow` lifted the rule: each of these blocks one pooled connection until it is dropped.
    const blocking = [
      send(lifted, '/', REORDERED[0]),
      send(lifted, '/pipeline', [['BLPOP', 'empty-list', '0']]),
    ];
    for (const reply of await Promise.all(blocking)) {
      expect(reply.status).toBe(504);
      expect(reply.body).toMatchObject({ code: 'BACKEND_TIMEOUT' });
    }
    // The dropped connections reconnect in the background (tens of milliseconds).
    const deadline = Date.now() + 3000;
    while ((await send(lifted, '/', ['PING'])).status !== 200) {
      expect(Date.now(), 'the pool to serve again').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 25));
    }
    await expectServing(lifted, 'after the timed-out blocking commands');
    // Closing the socket also ended the blocks in Redis.
    expect(await blockedClients()).toBe(0);
  });
});
