import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOT_SENT_HEADER } from '../../src/gateway/index.js';
import {
  post,
  READONLY_TOKEN,
  type Reply,
  request,
  sleep,
  startTestGateway,
  type TestGateway,
  TOKEN,
  waitFor,
} from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * A reply like `-BUSY` (a script running past busy-reply-threshold) proves Redis ran nothing:
 * the gateway answers 503 with the not-sent marker, so a failover client may send even a
 * non-idempotent write to another member, instead of a 400 it would hand to the user. Only
 * when nothing ran: a pipeline where one command got through keeps its per-command answers.
 *
 * Real BUSY: `EVAL "while true do end"` on a connection of its own, with a 100 ms threshold;
 * SCRIPT KILL (on a connection opened before, since a new one cannot even say hello while
 * Redis is busy) ends it in every test, whatever happens.
 */
let redis: RedisProcess;
let gw: TestGateway;
let direct: IORedis;
let runner: IORedis;

beforeAll(async () => {
  redis = await RedisProcess.start();
  direct = new IORedis(redis.port, '127.0.0.1');
  runner = new IORedis(redis.port, '127.0.0.1');
  await direct.config('SET', 'busy-reply-threshold', '100');
  await direct.call(
    'FUNCTION',
    'LOAD',
    "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
  );
  gw = await startTestGateway(redis, { readonlyToken: READONLY_TOKEN });
});

afterAll(async () => {
  await gw?.gateway.close();
  direct?.disconnect();
  runner?.disconnect();
  await redis?.stop();
});

/**
 * Runs `body` while a script (EVAL) or a function (FCALL, during which FUNCTION STATS still
 * answers) keeps Redis busy.
 */
async function whileBusy(kind: 'script' | 'function', body: () => Promise<void>): Promise<void> {
  const script = (
    kind === 'script' ? runner.eval('while true do end', 0) : runner.fcall('spin', 0)
  ).catch((err: Error) => err);
  try {
    await waitFor(
      async () => String(await direct.ping().catch((err: Error) => err.message)).startsWith('BUSY'),
      5000,
      'Redis to answer BUSY',
    );
    await body();
  } finally {
    await direct.call(kind === 'script' ? 'SCRIPT' : 'FUNCTION', 'KILL').catch(() => {});
    await Promise.race([script, sleep(2000)]);
  }
}

function expectNotSent(reply: Reply, what: string): void {
  expect(reply.status, `${what}: ${reply.text}`).toBe(503);
  expect(reply.headers.get(NOT_SENT_HEADER), what).toBe('0');
  expect(reply.headers.get('content-type'), what).toMatch(/^application\/json/);
  expect(reply.body, what).toEqual({
    error: expect.stringMatching(/^backend refused the command without running it \(BUSY: /),
    code: 'BACKEND_REFUSED',
  });
  // Neither keys nor values of the request are echoed.
  expect(reply.text, what).not.toMatch(/busy:/);
}

describe('Redis busy running a script', () => {
  it('a single command is answered 503 "not sent", then service resumes after SCRIPT KILL', async () => {
    await direct.set('busy:k', 'v');
    await direct.del('busy:n');
    await whileBusy('script', async () => {
      expectNotSent(await post(gw.url, '/', ['GET', 'busy:k']), 'GET');
      expectNotSent(await post(gw.url, '/', ['INCR', 'busy:n']), 'INCR');
      expectNotSent(
        await request(`${gw.url}/get/busy:k`, { headers: { authorization: `Bearer ${TOKEN}` } }),
        'path form',
      );
      // The read-only token's check asks Redis for the command's flags (COMMAND INFO), which
      // is refused too: not sent either, rather than "not a read-only command".
      expectNotSent(
        await post(gw.url, '/', ['STRLEN', 'busy:k'], {
          authorization: `Bearer ${READONLY_TOKEN}`,
        }),
        'read-only token',
      );
    });
    expect(await direct.exists('busy:n')).toBe(0);
    expect((await post(gw.url, '/', ['GET', 'busy:k'])).body).toEqual({ result: 'v' });
    expect((await post(gw.url, '/', ['INCR', 'busy:n'])).body).toEqual({ result: 1 });
  });

  it('a batch is "not sent" only when none of it ran', async () => {
    await direct.set('busy:k', 'v');
    await direct.del('busy:n');
    const batch = [
      ['GET', 'busy:k'],
      ['INCR', 'busy:n'],
    ];
    await whileBusy('function', async () => {
      expectNotSent(await post(gw.url, '/pipeline', batch), 'pipeline');
      // Redis discards the transaction (EXECABORT ... because of: BUSY ...).
      expectNotSent(await post(gw.url, '/multi-exec', batch), 'multi-exec');
      // FUNCTION STATS may run while a function keeps Redis busy: that pipeline did run something, so
      // re-running it elsewhere could run it twice. Per-command answers, as before.
      for (const pipeline of [
        [['FUNCTION', 'STATS'], ...batch],
        [...batch, ['FUNCTION', 'STATS']],
      ]) {
        const reply = await post(gw.url, '/pipeline', pipeline);
        expect(reply.status, reply.text).toBe(200);
        const items = reply.body as Array<{ result?: unknown; error?: string }>;
        expect(items).toHaveLength(3);
        const stats = items.findIndex((item) => 'result' in item);
        expect(stats).toBe(pipeline[0]![0] === 'FUNCTION' ? 0 : 2);
        for (const [i, item] of items.entries()) {
          if (i !== stats) expect(item.error).toMatch(/^BUSY Redis is busy running a script\./);
        }
      }
    });
    expect(await direct.exists('busy:n')).toBe(0);

    // Look-alikes stay command errors: a script's own error reply (it ran, and wrote) and
    // codes that merely start with BUSY.
    await direct.xgroup('CREATE', 'busy:s', 'g', '$', 'MKSTREAM');
    const lookAlikes: Array<[string, unknown, RegExp]> = [
      ['/', ['EVAL', "return redis.error_reply('BUSY not really')", '0'], /^BUSY not really$/],
      [
        '/pipeline',
        [['EVAL', "redis.call('INCR', KEYS[1]); return {err='LOADING no'}", '1', 'busy:n']],
        /^LOADING no/,
      ],
      ['/', ['XGROUP', 'CREATE', 'busy:s', 'g', '$'], /^BUSYGROUP /],
    ];
    for (const [path, body, error] of lookAlikes) {
      const reply = await post(gw.url, path, body);
      const what = `${path} ${JSON.stringify(body)}: ${reply.text}`;
      expect(reply.headers.get(NOT_SENT_HEADER), what).toBeNull();
      const answer = (Array.isArray(reply.body) ? reply.body[0] : reply.body) as { error: string };
      expect(answer.error, what).toMatch(error);
    }
    expect(await direct.get('busy:n')).toBe('1');
    await direct.del('busy:s');
  });
});
