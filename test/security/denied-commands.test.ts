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

/** The names of the function libraries loaded in Redis, sorted. */
async function functionLibraries(): Promise<string[]> {
  return ((await redis.call('FUNCTION', 'LIST')) as unknown[][])
    .map((lib) => String(lib[1]))
    .sort();
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
    await redis.call(
      'FUNCTION',
      'LOAD',
      "#!lua name=extra\nredis.register_function('noop', function() return 1 end)",
    );
    expect(await functionLibraries()).toEqual(['extra', 'sec']);
    // A real dump as raw bytes (path form: POST body = last argument, query = trailing ones).
    for (const policy of ['FLUSH', 'flush', 'Flush']) {
      await expectDenied(
        await send(`/function/restore?${policy}`, undefined, { body: payload }),
        `FUNCTION RESTORE <dump> ${policy}`,
      );
    }
    expect(await functionLibraries()).toEqual(['extra', 'sec']);
    // REPLACE (same libraries back) and FUNCTION DELETE of one named library stay allowed.
    const replace = await send('/function/restore?REPLACE', undefined, { body: payload });
    expect(await replace.json()).toEqual({ result: 'OK' });
    expect(await (await send('/', ['FUNCTION', 'DELETE', 'extra'])).json()).toEqual({
      result: 'OK',
    });
    expect(await functionLibraries()).toEqual(['sec']);
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
    expect(await functionLibraries()).toEqual(['sec']);
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

/**
 * Redis looks a command (or subcommand) up in a table hashed over the whole name but compared
 * with `strcasecmp`, which stops at the first NUL: `FLUSHALL\0<n>` is FLUSHALL for the few `n`
 * that hash into its bucket. Option words (BLOCK, FLUSH) are compared with `strcasecmp`
 * directly, so `BLOCK\0` is BLOCK. Keys and values may hold NUL like any other byte.
 */
describe('a NUL byte in a command name or subcommand', () => {
  const READONLY = 'denied-commands-readonly-0123456789';
  let roGateway: RunningGateway;
  beforeAll(async () => {
    roGateway = await startGateway({
      redisUrl: cluster.redisUrls!.a!,
      token: TOKEN,
      readonlyToken: READONLY,
      log: () => {},
    });
  });
  afterAll(async () => {
    await roGateway?.close();
  });

  /**
   * A `\0<n>` suffix that Redis resolves to `name` (`flushall`, or `client|setname` for a
   * subcommand). `COMMAND INFO` looks names up in the same table as the commands that run, so
   * it finds one without running anything, and the request below is the real bypass.
   */
  async function nulSuffix(name: string): Promise<string> {
    for (let start = 0; start < 50_000; start += 1000) {
      const pipeline = redis.pipeline();
      for (let n = start; n < start + 1000; n++) pipeline.call('COMMAND', 'INFO', `${name}\0${n}`);
      const replies = (await pipeline.exec()) ?? [];
      const hit = replies.findIndex(([, info]) => Array.isArray(info) && info[0] !== null);
      if (hit >= 0) return `\0${start + hit}`;
    }
    throw new Error(`no NUL suffix that Redis resolves to ${name}`);
  }

  async function poolState() {
    const clients = String(await redis.call('CLIENT', 'LIST'))
      .split('\n')
      .filter(Boolean);
    return {
      names: [...new Set(clients.map((line) => line.match(/ name=(\S*)/)?.[1]))].sort(),
      dbs: [...new Set(clients.map((line) => line.match(/ db=(\d+)/)?.[1]))],
      samples: await redis.config('GET', 'maxmemory-samples'),
    };
  }

  it('is refused in every form, for both tokens, and nothing runs', async () => {
    const flushall = `FLUSHALL${await nulSuffix('flushall')}`;
    const config = `CONFIG${await nulSuffix('config')}`;
    const select = `SELECT${await nulSuffix('select')}`;
    const setname = `SETNAME${await nulSuffix('client|setname')}`;
    const before = await poolState();
    const commands = [
      [flushall],
      [config, 'SET', 'maxmemory-samples', '7'],
      [select, '1'],
      ['CLIENT', setname, 'renamed-by-nul'],
      ['client', setname.toLowerCase(), 'renamed-by-nul'],
    ];
    // Sent a few times: a pool of four, and SELECT/SETNAME affect the connection they run on.
    for (let round = 0; round < 4; round++) {
      for (const command of commands) {
        const what = JSON.stringify(command);
        await expectDenied(await send('/', command), what);
        for (const endpoint of ['/pipeline', '/multi-exec']) {
          const batch = [['SET', 'batch:first', '1'], command];
          await expectDenied(await send(endpoint, batch), `${endpoint} ${what}`);
        }
        for (const token of [TOKEN, READONLY]) {
          const reply = await fetch(roGateway.url, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}` },
            body: JSON.stringify(command),
          });
          await expectDenied(
            reply,
            `${what} with the ${token === TOKEN ? 'full' : 'read-only'} token`,
          );
        }
      }
      // Path form: a subcommand segment, and the subcommand as a query entry. (A name with a
      // NUL is not a command path at all: 404.)
      for (const path of [
        `/client/${encodeURIComponent(setname)}/renamed-by-nul`,
        `/CLIENT?${encodeURIComponent(setname)}=renamed-by-nul`,
      ]) {
        await expectDenied(await send(path, undefined, { method: 'GET' }), `GET ${path}`);
        await expectDenied(await send(path, undefined), `POST ${path}`);
      }
      for (const path of [`/${encodeURIComponent(flushall)}`, `/${encodeURIComponent(select)}/1`]) {
        const reply = await send(path, undefined);
        expect(reply.status, path).toBe(404);
        expect(await reply.json()).toMatchObject({ error: expect.any(String) });
      }
    }
    await expectUntouched('NUL names');
    expect(await poolState(), 'no connection renamed or switched, config unchanged').toEqual(
      before,
    );
    expect(before.dbs).toEqual(['0']);
  });

  it('names the command up to the NUL, never what follows it', async () => {
    const reply = await send('/', ['FLUSHALL\0secret-suffix-4711']);
    const text = await reply.text();
    expect(JSON.parse(text)).toEqual({
      error:
        "ERR command 'FLUSHALL' is not allowed through this gateway: its name contains a NUL byte",
      code: 'COMMAND_DENIED',
    });
    const sub = await send('/pipeline', [['PING'], ['CLIENT', 'SETNAME\0secret-suffix-4711', 'x']]);
    const subText = await sub.text();
    expect(JSON.parse(subText).error).toBe(
      "ERR command 'CLIENT' (command 2 of the batch) is not allowed through this gateway: its subcommand contains a NUL byte",
    );
    expect(text + subText).not.toContain('secret-suffix');
  });

  it('an option word is read up to the NUL, as Redis reads it', async () => {
    for (const command of [
      ['XREAD', 'BLOCK\0', '0', 'STREAMS', 's', '$'],
      ['xread', 'count', '1', 'block\0x', '0', 'STREAMS', 's', '$'],
      ['XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK\0', '0', 'STREAMS', 's', '>'],
    ]) {
      const reply = await send('/', command);
      const text = await reply.text();
      expect(reply.status, text).toBe(400);
      expect(JSON.parse(text)).toMatchObject({
        code: 'COMMAND_DENIED',
        error: expect.stringMatching(/^ERR command 'XREAD(GROUP)?' .*with BLOCK/),
      });
    }
    // And `STREAMS\0` is STREAMS: the key named BLOCK after it is a key, as for plain STREAMS.
    const keys = await send('/', ['XREAD', 'STREAMS\0', 'BLOCK', '0']);
    expect(await keys.json()).toEqual({ result: null });

    const payload = new Uint8Array((await redis.callBuffer('FUNCTION', 'DUMP')) as Buffer);
    await redis.call(
      'FUNCTION',
      'LOAD',
      'REPLACE',
      "#!lua name=extra\nredis.register_function('noop', function() return 1 end)",
    );
    const loaded = await functionLibraries();
    for (const policy of ['FLUSH%00', 'flush%00x']) {
      await expectDenied(
        await send(`/function/restore?${policy}`, undefined, { body: payload }),
        `FUNCTION RESTORE <dump> ${policy}`,
      );
    }
    expect(await functionLibraries()).toEqual(loaded);
    await redis.call('FUNCTION', 'DELETE', 'extra');
  });

  it("keys and values may hold NUL bytes, subcommands' arguments too", async () => {
    const key = 'nul:\0key\0';
    const value = 'FLUSHALL\0value';
    expect(await (await send('/', ['SET', key, value])).json()).toEqual({ result: 'OK' });
    expect(await redis.get(key)).toBe(value);
    expect(await (await send('/', ['GET', key])).json()).toEqual({ result: value });
    const batch = await send('/pipeline', [
      ['APPEND', key, '\0'],
      ['OBJECT', 'ENCODING', key],
      ['GET', 'BLOCK\0'],
    ]);
    expect(await batch.json()).toEqual([
      { result: value.length + 1 },
      { result: 'raw' },
      { result: null },
    ]);
    const path = await send(`/get/${encodeURIComponent(key)}`, undefined, { method: 'GET' });
    expect(await path.json()).toEqual({ result: `${value}\0` });
    await redis.del(key);
  });
});
