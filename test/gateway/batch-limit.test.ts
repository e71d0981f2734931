import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLAG_OF_FIELD, parseCli, USAGE } from '../../src/gateway/cli-args.js';
import { GatewayConfigError } from '../../src/gateway/index.js';
import { post, READONLY_TOKEN, startTestGateway, type TestGateway } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * `/pipeline` and `/multi-exec` take at most `maxBatchCommands` commands (`--max-batch-commands`,
 * default 10000). The body limit alone let a 10 MiB batch of a million `["PING"]`s through, which
 * cost the gateway gigabytes; a larger batch is now a 413 before any of it runs.
 */
let redisServer: RedisProcess;
let direct: IORedis;
let small: TestGateway;
let standard: TestGateway;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  direct = new IORedis(redisServer.url);
  small = await startTestGateway(redisServer, {
    maxBatchCommands: 3,
    readonlyToken: READONLY_TOKEN,
  });
  standard = await startTestGateway(redisServer);
});
afterAll(async () => {
  direct?.disconnect();
  await small?.gateway.close();
  await standard?.gateway.close();
  await redisServer?.stop();
});

const writes = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    i % 2 === 0 ? ['INCR', 'batch:n'] : ['SET', `batch:${i}`, 'x'],
  );

function expectTooMany(reply: { status: number; body: unknown; text: string }, limit: number) {
  expect(reply.status, reply.text).toBe(413);
  expect(reply.body).toEqual({
    error: `a batch may hold at most ${limit} commands (maxBatchCommands, --max-batch-commands); nothing of it ran`,
    code: 'TOO_MANY_COMMANDS',
  });
}

describe('commands per batch', () => {
  it('over the limit: 413 naming the limit and the flag, and nothing runs', async () => {
    await direct.flushall();
    for (const path of ['/pipeline', '/multi-exec']) {
      expectTooMany(await post(small.url, path, writes(4)), 3);
      // A denied command in an oversized batch changes nothing: refused as a whole either way.
      expectTooMany(await post(small.url, path, [...writes(3), ['FLUSHALL']]), 3);
    }
    // The read-only token too, before asking Redis about any command's flags.
    const ro = await post(
      small.url,
      '/pipeline',
      [
        ['GET', 'a'],
        ['GET', 'b'],
        ['GET', 'c'],
        ['GET', 'd'],
      ],
      {
        authorization: `Bearer ${READONLY_TOKEN}`,
      },
    );
    expectTooMany(ro, 3);
    expect(await direct.dbsize()).toBe(0);
  });

  it('at the limit: runs', async () => {
    await direct.flushall();
    expect((await post(small.url, '/pipeline', writes(3))).body).toEqual([
      { result: 1 },
      { result: 'OK' },
      { result: 2 },
    ]);
    expect((await post(small.url, '/multi-exec', writes(3))).body).toEqual([
      { result: 3 },
      { result: 'OK' },
      { result: 4 },
    ]);
    // A single command is not a batch: however many arguments, the limit does not apply.
    const wide = ['MSET', ...Array.from({ length: 10 }, (_, i) => [`batch:w${i}`, 'v']).flat()];
    expect((await post(small.url, '/', wide)).body).toEqual({ result: 'OK' });
  });

  it('defaults to 10000', async () => {
    for (const path of ['/pipeline', '/multi-exec']) {
      await direct.flushall();
      expectTooMany(await post(standard.url, path, writes(10_001)), 10_000);
      expect(await direct.dbsize(), path).toBe(0);
      const atLimit = Array.from({ length: 10_000 }, () => ['INCR', 'batch:n']);
      const ok = await post(standard.url, path, atLimit);
      expect(ok.status, path).toBe(200);
      expect((ok.body as unknown[]).length).toBe(10_000);
      expect(await direct.get('batch:n')).toBe('10000');
    }
  });
});

describe('maxBatchCommands / --max-batch-commands', () => {
  it.each([0, -1, 1.5, Number.NaN, 2 ** 31 + 1, '10'])(
    'startGateway refuses maxBatchCommands: %s, naming the field',
    async (value) => {
      const attempt = startTestGateway(redisServer, { maxBatchCommands: value as number });
      await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
      await expect(attempt).rejects.toMatchObject({
        field: 'maxBatchCommands',
        message: 'GatewayOptions.maxBatchCommands must be a positive integer',
      });
    },
  );

  it.each(['0', 'abc', '1e3', '2147483649', ''])(
    '--max-batch-commands %j is a usage error naming the flag',
    (value) => {
      const parsed = parseCli(
        ['--redis-url', 'redis://x', '--token', 't', '--max-batch-commands', value],
        {},
      );
      expect(parsed).toEqual({
        kind: 'error',
        message: '--max-batch-commands must be an integer between 1 and 2147483648',
      });
    },
  );

  it('maps onto the option, and the CLI names it in errors and --help', () => {
    const parsed = parseCli(
      ['--redis-url', 'redis://x', '--token', 't', '--max-batch-commands', '500'],
      {},
    );
    expect(parsed).toMatchObject({ kind: 'run', options: { maxBatchCommands: 500 } });
    const unset = parseCli(['--redis-url', 'redis://x', '--token', 't'], {});
    expect(unset.kind === 'run' && 'maxBatchCommands' in unset.options).toBe(false);
    expect(FLAG_OF_FIELD.maxBatchCommands).toBe('--max-batch-commands');
    expect(USAGE).toMatch(
      /--max-batch-commands <n> +most commands in one \/pipeline or \/multi-exec \(default 10000\)/,
    );
  });
});
