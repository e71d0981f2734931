import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backendAclRules, type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';

/**
 * The gateway's deny-list (dangerous or pool-unsafe commands) holds whatever shape the request
 * takes: a single command, a pipeline, a transaction, the path form (GET or POST, any case,
 * percent-encoded), `?_token=` auth. A batch holding one denied command runs nothing at all.
 * Checked against the effect too: a canary key must survive every attempt.
 *
 * A gateway of our own with the default deny-list (the local cluster's gateways allow
 * FLUSHALL/FLUSHDB for tests), in front of the cluster's redis-server; for scripts, a second
 * one connecting as the ACL user the README prescribes (`backendAclRules()`).
 */
let cluster: LocalCluster;
let gateway: RunningGateway;
let aclGateway: RunningGateway;
let redis: IORedis;
const TOKEN = 'denied-commands-token-0123456789';
const ACL_PASSWORD = 'acl-user-password-0123456789';

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 1 });
  gateway = await startGateway({ redisUrl: cluster.redisUrls!.a!, token: TOKEN, log: () => {} });
  redis = new IORedis(cluster.redisUrls!.a!);
  // The documented hardening: the gateway connects as an ACL user made from backendAclRules().
  await redis.call(
    'ACL',
    'SETUSER',
    'edge-gateway',
    'on',
    `>${ACL_PASSWORD}`,
    '~*',
    '&*',
    ...backendAclRules().split(' '),
  );
  const port = new URL(cluster.redisUrls!.a!).port;
  aclGateway = await startGateway({
    redisUrl: `redis://edge-gateway:${ACL_PASSWORD}@127.0.0.1:${port}`,
    token: TOKEN,
    log: () => {},
  });
  await redis.call(
    'FUNCTION',
    'LOAD',
    'REPLACE',
    "#!lua name=sec\nredis.register_function('wipe', function() return redis.call('FLUSHDB') end)",
  );
});

async function scriptSha(script: string): Promise<string> {
  return (await redis.call('SCRIPT', 'LOAD', script)) as string;
}
afterAll(async () => {
  redis?.disconnect();
  await aclGateway?.close();
  await gateway?.close();
  await cluster?.stop();
});
beforeEach(async () => {
  await redis.set('canary', 'alive');
  await redis.del('batch:first');
});

/** Denied commands with harmless-if-leaked arguments where possible. */
const DENIED: string[][] = [
  ['FLUSHALL'],
  ['FLUSHDB', 'ASYNC'],
  ['CONFIG', 'SET', 'maxmemory', '1'],
  ['CONFIG', 'GET', 'requirepass'],
  ['DEBUG', 'SLEEP', '0'],
  ['SHUTDOWN', 'NOSAVE'],
  ['SAVE'],
  ['BGSAVE'],
  ['REPLICAOF', '127.0.0.1', '1'],
  ['SLAVEOF', 'NO', 'ONE'],
  ['ACL', 'LIST'],
  ['MODULE', 'LIST'],
  ['CLIENT', 'KILL', 'TYPE', 'normal'],
  ['CLIENT', 'PAUSE', '1'],
  ['MONITOR'],
  ['MULTI'],
  ['EXEC'],
  ['SELECT', '1'],
  ['HELLO', '3'],
  ['AUTH', 'x'],
  ['SUBSCRIBE', 'ch'],
  ['BLPOP', 'k', '1'],
  ['WAIT', '1', '1'],
  ['XREAD', 'BLOCK', '1', 'STREAMS', 's', '0'],
  ['XREAD', 'COUNT', '1', 'BLOCK', '0', 'STREAMS', 's', '$'],
  // Redis takes XREADGROUP's options in any order before STREAMS, GROUP included.
  ['XREADGROUP', 'BLOCK', '0', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'],
  ['XREADGROUP', 'COUNT', '1', 'BLOCK', '0', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'],
  ['XREADGROUP', 'GROUP', 'g', 'c', 'NOACK', 'BLOCK', '10', 'STREAMS', 's', '>'],
  // Arms the pooled connection: another request's next EVAL on it would start a debugger.
  ['SCRIPT', 'DEBUG', 'YES'],
  ['SCRIPT', 'DEBUG', 'SYNC'],
  // FLUSH as the restore policy deletes every library first, like FUNCTION FLUSH.
  ['FUNCTION', 'FLUSH'],
  ['FUNCTION', 'RESTORE', 'not-a-dump', 'FLUSH'],
  // Flag the pooled connection they run on, for every request that shares it later.
  ['CLIENT', 'NO-EVICT', 'ON'],
  ['CLIENT', 'NO-TOUCH', 'ON'],
];

function variants(command: string[]): string[][] {
  const [name, ...args] = command as [string, ...string[]];
  const lower = [
    name.toLowerCase(),
    ...args.map((a) => (/^[A-Z]+$/.test(a) ? a.toLowerCase() : a)),
  ];
  const mixed = [name[0] + name.slice(1).toLowerCase(), ...args];
  return [command, lower, mixed];
}

async function send(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    ...init,
  });
}

/**
 * A refused command is a command error (400, `ERR ...`), not a rejected credential. `endpoint`:
 * the request named the `/monitor` stream endpoint rather than a command, which stays a 403.
 */
async function expectDenied(response: Response, what: string, endpoint = false): Promise<void> {
  const text = await response.text();
  expect(response.status, `${what}: ${text}`).toBe(endpoint ? 403 : 400);
  expect(JSON.parse(text), what).toMatchObject({
    code: 'COMMAND_DENIED',
    error: endpoint ? expect.any(String) : expect.stringMatching(/^ERR /),
  });
}

async function expectUntouched(what: string): Promise<void> {
  expect(await redis.get('canary'), what).toBe('alive');
  expect(await redis.exists('batch:first'), `${what}: the batch ran partly`).toBe(0);
  expect(await redis.config('GET', 'maxmemory'), what).toEqual(['maxmemory', '0']);
}

describe('denied commands stay denied', () => {
  it('as a single command, in any case', async () => {
    for (const command of DENIED) {
      for (const variant of variants(command)) {
        await expectDenied(await send('/', variant), variant.join(' '));
      }
    }
    await expectUntouched('single');
  });

  it('inside pipelines and transactions, and nothing of the batch runs', async () => {
    for (const command of DENIED) {
      for (const endpoint of ['/pipeline', '/multi-exec']) {
        for (const position of ['first', 'last']) {
          const batch =
            position === 'first'
              ? [command, ['SET', 'batch:first', '1']]
              : [['SET', 'batch:first', '1'], ['GET', 'canary'], command];
          await expectDenied(
            await send(endpoint, batch),
            `${endpoint} ${position} ${command.join(' ')}`,
          );
        }
      }
    }
    await expectUntouched('batches');
  });

  it('in the path form: GET and POST, any case, percent-encoded, ?_token= auth', async () => {
    // `/subscribe/<channel>` is the supported event-stream endpoint, not a command.
    for (const command of DENIED.filter(([name]) => name !== 'SUBSCRIBE')) {
      const [name, ...args] = command as [string, ...string[]];
      const encodedName = [...name].map((ch) => `%${ch.charCodeAt(0).toString(16)}`).join('');
      const paths = [
        `/${command.map(encodeURIComponent).join('/')}`,
        `/${[name.toLowerCase(), ...args].map(encodeURIComponent).join('/')}`,
        `/${[encodedName, ...args.map(encodeURIComponent)].join('/')}`,
      ];
      for (const path of paths) {
        const endpoint = path === '/monitor';
        await expectDenied(await send(path, undefined, { method: 'GET' }), `GET ${path}`, endpoint);
        await expectDenied(await send(path, undefined), `POST ${path}`, endpoint);
        const viaQuery = await fetch(`${gateway.url}${path}?_token=${TOKEN}`);
        await expectDenied(viaQuery, `GET ${path}?_token`, endpoint);
      }
    }
    // The last argument as the POST body, and trailing arguments in the query string.
    await expectDenied(await send('/config/set/maxmemory', undefined, { body: '1' }), 'body arg');
    await expectDenied(await fetch(`${gateway.url}/flushall?ASYNC&_token=${TOKEN}`), 'query args');
    await expectUntouched('path form');
  });

  it('a subcommand rule holds however the subcommand is spelled', async () => {
    for (const sub of ['KILL', 'kill', 'Kill']) {
      await expectDenied(await send('/', ['client', sub, 'TYPE', 'normal']), `CLIENT ${sub}`);
      await expectDenied(await send('/pipeline', [['CLIENT', sub, 'TYPE', 'normal']]), sub);
      await expectDenied(await send(`/client/${sub}/type/normal`, undefined), `path ${sub}`);
    }
    // Harmless CLIENT subcommands still work: the rule is per subcommand.
    const ok = await send('/', ['CLIENT', 'ID']);
    expect(ok.status).toBe(200);
  });

  it('FUNCTION RESTORE with FLUSH is denied like FUNCTION FLUSH, other policies and DELETE are not', async () => {
    const payload = new Uint8Array((await redis.callBuffer('FUNCTION', 'DUMP')) as Buffer);
    const libraries = async () =>
      ((await redis.call('FUNCTION', 'LIST')) as unknown[][]).map((lib) => String(lib[1])).sort();
    await redis.call(
      'FUNCTION',
      'LOAD',
      "#!lua name=extra\nredis.register_function('noop', function() return 1 end)",
    );
    expect(await libraries()).toEqual(['extra', 'sec']);
    // A real dump as raw bytes (path form: POST body = last argument, query = trailing ones).
    for (const policy of ['FLUSH', 'flush', 'Flush']) {
      await expectDenied(
        await send(`/function/restore?${policy}`, undefined, { body: payload }),
        `FUNCTION RESTORE <dump> ${policy}`,
      );
    }
    expect(await libraries()).toEqual(['extra', 'sec']);
    // REPLACE (same libraries back) and FUNCTION DELETE of one named library stay allowed.
    const replace = await send('/function/restore?REPLACE', undefined, { body: payload });
    expect(await replace.json()).toEqual({ result: 'OK' });
    expect(await (await send('/', ['FUNCTION', 'DELETE', 'extra'])).json()).toEqual({
      result: 'OK',
    });
    expect(await libraries()).toEqual(['sec']);
    // `allow: ['FUNCTION FLUSH']` lifts both forms, as one rule.
    const open = await startGateway({
      redisUrl: cluster.redisUrls!.a!,
      token: TOKEN,
      allow: ['FUNCTION FLUSH'],
      log: () => {},
    });
    try {
      const reply = await fetch(`${open.url}/function/restore?FLUSH`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: payload,
      });
      expect(await reply.json()).toEqual({ result: 'OK' });
    } finally {
      await open.close();
    }
    expect(await libraries()).toEqual(['sec']);
  });

  it('scripts cannot run a denied command through a gateway on a backendAclRules() user', async () => {
    // The gateway only sees EVAL/FCALL; inside a script Redis decides, with the permissions of
    // the user the gateway connects as. The documented setup (README) makes that user from
    // backendAclRules(); without it a script may call FLUSHDB (see the README).
    const attempts: Array<[string, unknown]> = [
      ['/', ['EVAL', "return redis.call('FLUSHDB')", '0']],
      ['/', ['EVAL', "return redis.call('flushall')", '0']],
      ['/', ['EVAL', "return redis.pcall('FLUSHDB')", '0']],
      ['/', ['EVALSHA', await scriptSha("return redis.call('FLUSHDB')"), '0']],
      ['/', ['FCALL', 'wipe', '0']],
      ['/pipeline', [['EVAL', "return redis.call('FLUSHDB')", '0']]],
      ['/multi-exec', [['EVAL', "return redis.call('FLUSHDB')", '0']]],
      [`/eval/${encodeURIComponent("return redis.call('FLUSHDB')")}/0`, undefined],
    ];
    for (const [path, body] of attempts) {
      const response = await fetch(`${aclGateway.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      expect(text, `${path} ${JSON.stringify(body)}`).not.toMatch(/"result":"OK"/);
      expect(await redis.get('canary'), `after ${path} ${JSON.stringify(body)}: ${text}`).toBe(
        'alive',
      );
    }
    // Ordinary scripts still run for that user.
    const ok = await fetch(aclGateway.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(['EVAL', "return redis.call('GET', KEYS[1])", '1', 'canary']),
    });
    expect(await ok.json()).toEqual({ result: 'alive' });
  });

  it('the gateway still serves allowed commands afterwards', async () => {
    const response = await send('/', ['GET', 'canary']);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: 'alive' });
  });
});
