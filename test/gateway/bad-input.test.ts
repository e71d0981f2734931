import { request as httpRequest } from 'node:http';
import net from 'node:net';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayConfigError, NOT_SENT_HEADER } from '../../src/gateway/index.js';
import {
  post,
  READONLY_TOKEN,
  request,
  secretsIn,
  sleep,
  startTestGateway,
  type TestGateway,
  TOKEN,
  waitFor,
} from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * Everything a client can get wrong, and everything the backend can do wrong: each ends in the
 * documented status and a JSON body, and the gateway keeps serving afterwards.
 */
const LIMIT = 64 * 1024;
/** A key name that must never appear in logs (command arguments are not logged). */
const SECRET_KEY = 'argument-7f3e2d';

let redisServer: RedisProcess;
let gw: TestGateway;
let direct: IORedis;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  gw = await startTestGateway(redisServer, {
    readonlyToken: READONLY_TOKEN,
    maxBodyBytes: LIMIT,
    backendTimeoutMs: 400,
  });
  direct = new IORedis(redisServer.url);
  // This suite kills the server on purpose; reconnect noise is expected.
  direct.on('error', () => {});
});

afterAll(async () => {
  direct?.disconnect();
  await gw?.gateway.close();
  await redisServer?.stop();
  const logs = gw?.logs ?? [];
  expect(secretsIn(logs)).toEqual([]);
  expect(logs.filter((line) => line.includes(SECRET_KEY))).toEqual([]);
});

async function expectServing(): Promise<void> {
  const reply = await post(gw.url, '/', ['PING']);
  expect(reply.status).toBe(200);
  expect(reply.body).toEqual({ result: 'PONG' });
}

/** A JSON error body with the given status whose message matches. */
function expectError(reply: { status: number; body: unknown }, status: number, message: RegExp) {
  expect(reply.status).toBe(status);
  expect(reply.body).toMatchObject({ error: expect.stringMatching(message) });
}

describe('malformed bodies', () => {
  afterEach(expectServing);

  it.each([
    ['not JSON', '/', 'SET k v', /not valid JSON/],
    ['empty body', '/', '', /empty/],
    ['an object', '/', '{"cmd":"PING"}', /must be a JSON array/],
    ['a string', '/', '"PING"', /must be a JSON array/],
    ['an empty command', '/', '[]', /the command is empty/],
    ['an empty name', '/', '[""]', /name must be a non-empty string/],
    ['a numeric name', '/', '[1, 2]', /name must be a non-empty string/],
    ['an object argument', '/', '["SET", "k", {"a":1}]', /element 3 is an object/],
    ['a null argument', '/', '["SET", "k", null]', /element 3 is null/],
    ['a nested array', '/', '["SET", ["k"], "v"]', /element 2 is an array/],
    ['an empty batch', '/pipeline', '[]', /batch is empty/],
    ['a flat batch', '/pipeline', '["GET", "k"]', /command 1 of the batch: a command must be/],
    ['an empty batch command', '/multi-exec', '[["GET","k"], []]', /command 2 of the batch/],
    ['a non-array batch', '/multi-exec', '{"a":[]}', /batch must be a JSON array/],
    ['bad batch argument', '/pipeline', '[["SET","k",{"x":1}]]', /element 3 is an object/],
  ])('%s → 400', async (_name, path, body, message) => {
    const reply = await post(gw.url, path, body);
    expectError(reply, 400, message);
    expect(reply.body).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('refuses integers JSON cannot carry exactly instead of rounding them', async () => {
    await direct.del('big:n');
    // 2^53 + 1 parses as 2^53: running INCRBY with it would add a number the client never sent.
    for (const [path, body, where] of [
      ['/', '["INCRBY","big:n",9007199254740993]', /^element 3 /],
      ['/', '["INCRBY","big:n",-9007199254740993]', /^element 3 /],
      ['/', '["SET","big:n",1e20]', /^element 3 /],
      [
        '/pipeline',
        '[["GET","x"],["INCRBY","big:n",9007199254740993]]',
        /^command 2 of the batch: element 3 /,
      ],
      [
        '/multi-exec',
        '[["INCRBY","big:n",9007199254740993]]',
        /^command 1 of the batch: element 3 /,
      ],
    ] as const) {
      const reply = await post(gw.url, path, body);
      expectError(reply, 400, where);
      expectError(reply, 400, /integer beyond ±9007199254740991.*send it as a string/);
      expect(reply.body).toMatchObject({ code: 'INVALID_REQUEST' });
      // The position, never the (rounded) value.
      expect(reply.text).not.toMatch(/900719925474099[234]|1e\+?20|100000000000000000000/);
    }
    expect(await direct.exists('big:n')).toBe(0);
    // The largest safe integers, and the same digits as a string, still go through exactly.
    const edge = await post(gw.url, '/', '["INCRBY","big:n",9007199254740991]');
    expect(edge.text).toBe('{"result":9007199254740991}');
    expect(await direct.get('big:n')).toBe('9007199254740991');
    await direct.del('big:n');
    expect((await post(gw.url, '/', '["INCRBY","big:n","9007199254740993"]')).text).toBe(
      '{"result":9007199254740993}',
    );
    expect(await direct.get('big:n')).toBe('9007199254740993');
    await direct.del('big:n');
  });

  it('refuses numbers beyond double range instead of sending "Infinity"', async () => {
    await direct.del('inf:n', 'inf:z');
    for (const [path, body, where] of [
      ['/', '["SET","inf:n",1e400]', /^element 3 /],
      ['/', '["SET","inf:n",-1e400]', /^element 3 /],
      ['/', '["ZADD","inf:z",1E+999,"member"]', /^element 3 /],
      ['/pipeline', '[["GET","x"],["SET","inf:n",1e400]]', /^command 2 of the batch: element 3 /],
      ['/multi-exec', '[["SET","inf:n",-1e400]]', /^command 1 of the batch: element 3 /],
    ] as const) {
      const reply = await post(gw.url, path, body);
      expectError(reply, 400, where);
      expectError(reply, 400, /is a number beyond the range of a double.*send it as a string/);
      expect(reply.body).toMatchObject({ code: 'INVALID_REQUEST' });
      expect(reply.text).not.toMatch(/Infinity|1e\+?400|999/i);
    }
    expect(await direct.exists('inf:n', 'inf:z')).toBe(0);
    // Finite numbers that are not integers still go through, however small.
    expect((await post(gw.url, '/', '["ZADD","inf:z",1.5e-300,"m"]')).body).toEqual({ result: 1 });
    await direct.del('inf:z');
  });

  it('rejects deeply nested bodies by shape without crashing', async () => {
    const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
    expectError(await post(gw.url, '/', deep), 400, /name must be a non-empty string/);
    expectError(await post(gw.url, '/pipeline', deep), 400, /command 1 of the batch/);
  });

  it('refuses bad percent-encoding in the path form', async () => {
    const reply = await request(`${gw.url}/get/%E0%A4%A`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expectError(reply, 400, /percent-encoding/);
  });

  it('refuses response formats other than JSON', async () => {
    const reply = await post(gw.url, '/', ['PING'], { 'upstash-response-format': 'resp2' });
    expectError(reply, 400, /Upstash-Response-Format/);
  });
});

/** Sends raw bytes, returns the status line, lower-cased headers and (de-chunked) body. */
async function rawExchange(bytes: string) {
  const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
  socket.on('error', () => {});
  let out = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    out = Buffer.concat([out, chunk]);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.from(bytes, 'latin1'));
  await Promise.race([closed, sleep(3000)]);
  socket.destroy();
  const text = out.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  let body = text.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    let decoded = '';
    for (;;) {
      const eol = body.indexOf('\r\n');
      const size = Number.parseInt(body.slice(0, eol), 16);
      if (!(size > 0)) break;
      decoded += body.slice(eol + 2, eol + 2 + size);
      body = body.slice(eol + 2 + size + 2);
    }
    body = decoded;
  }
  return { statusLine, headers, body };
}

describe('requests refused before they reach the routes', () => {
  afterEach(expectServing);
  const auth = `Authorization: Bearer ${TOKEN}\r\n`;
  const ping = '["PING"]';
  const withBody = `${auth}Content-Length: ${ping.length}\r\nConnection: close\r\n\r\n${ping}`;

  // Refused by @hono/node-server while building the Request, and by Node's HTTP parser
  // (`clientError`): each used to be an empty 400, now the usual JSON error.
  it.each([
    [
      'a backslash in the path',
      `GET /get\\key HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`,
      400,
      /backslash in request path/,
    ],
    ['HTTP/1.0 without Host', `POST / HTTP/1.0\r\n${withBody}`, 400, /missing host header/],
    // Node answers these three itself unless told not to: an empty 400, an empty 417, and a
    // dropped connection.
    ['HTTP/1.1 without Host', `POST / HTTP/1.1\r\n${withBody}`, 400, /missing host header/],
    [
      'an Expect other than 100-continue',
      `POST / HTTP/1.1\r\nHost: x\r\nExpect: secret-expectation\r\n${withBody}`,
      417,
      /^Expect: only 100-continue is supported$/,
    ],
    [
      'CONNECT',
      `CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n${auth}\r\n`,
      405,
      /^Method not allowed$/,
    ],
    ['a malformed Host', `POST / HTTP/1.1\r\nHost: a b\r\n${withBody}`, 400, /invalid host header/],
    [
      'a Host with a path',
      `POST / HTTP/1.1\r\nHost: x/y\r\n${withBody}`,
      400,
      /invalid host header/,
    ],
    [
      'a raw non-ASCII target',
      `GET /echo/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`,
      400,
      /^Malformed HTTP request$/,
    ],
    [
      'a broken chunked body',
      `POST / HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n`,
      400,
      /^Malformed HTTP request$/,
    ],
    [
      'oversized headers',
      `GET /ping HTTP/1.1\r\nHost: x\r\n${auth}X-Big: ${'a'.repeat(70_000)}\r\nConnection: close\r\n\r\n`,
      431,
      /too large/,
    ],
  ])('%s → a JSON error', async (_name, bytes, status, message) => {
    const reply = await rawExchange(bytes);
    expect(reply.statusLine).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(reply.body);
    expect(body).toEqual({ error: expect.stringMatching(message), code: expect.any(String) });
    if (status === 400) expect(body.code).toBe('INVALID_REQUEST');
    // Nothing of the request is echoed, credentials least of all.
    expect(reply.body).not.toContain(TOKEN);
    expect(reply.body).not.toContain('secret-expectation');
  });
});

describe('body size limit', () => {
  afterEach(expectServing);
  const big = JSON.stringify(['SET', SECRET_KEY, 'x'.repeat(LIMIT)]);

  it('413 when Content-Length exceeds the limit', async () => {
    for (const path of ['/', '/pipeline', '/multi-exec', '/set/k']) {
      expectError(await post(gw.url, path, big), 413, /exceeds 65536 bytes/);
    }
  });

  it('413 for a chunked body that grows past the limit', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
    // Endless: the gateway must stop reading on its own and answer.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(chunk);
      },
    });
    const reply = await request(`${gw.url}/set/k`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body,
      duplex: 'half',
    } as RequestInit);
    expectError(reply, 413, /exceeds/);
    expect(reply.headers.get('connection')).toBe('close');
  });

  it('the default limit is 10 MiB', async () => {
    const other = await startTestGateway(redisServer);
    try {
      const justOver = JSON.stringify(['SET', 'k', 'x'.repeat(10 * 1024 * 1024)]);
      expectError(await post(other.url, '/', justOver), 413, /exceeds 10485760 bytes/);
      const under = JSON.stringify(['SET', 'k', 'x'.repeat(10 * 1024 * 1024 - 100)]);
      expect((await post(other.url, '/', under)).status).toBe(200);
    } finally {
      await other.gateway.close();
    }
  });
});

describe('routing', () => {
  afterEach(expectServing);
  const auth = { authorization: `Bearer ${TOKEN}` };

  it.each([
    ['POST', '/pipeline/extra'],
    ['POST', '/multi-exec/x'],
    ['POST', '/subscribe'],
    ['GET', '/subscribe/'],
    ['GET', '/psubscribe'],
    ['GET', '/monitor/x'],
    ['GET', '/v1/bdbs'],
    ['GET', '/admin/state'],
    ['GET', '/%20not-a-command'],
  ])('%s %s → 404', async (method, path) => {
    const reply = await request(gw.url + path, { method, headers: auth });
    expectError(reply, 404, /./);
    expect(reply.body).toMatchObject({ code: 'NOT_FOUND' });
  });

  it.each([
    ['DELETE', '/', 'POST, PUT'],
    ['GET', '/', 'POST, PUT'],
    ['GET', '/pipeline', 'POST, PUT'],
    ['PATCH', '/multi-exec', 'POST, PUT'],
    ['PUT', '/subscribe/ch', 'GET, POST'],
    ['DELETE', '/get/k', 'GET, HEAD, POST, PUT'],
  ])('%s %s → 405', async (method, path, allow) => {
    const reply = await request(gw.url + path, { method, headers: auth });
    expectError(reply, 405, /Method not allowed/);
    expect(reply.headers.get('allow')).toBe(allow);
  });

  it('accepts PUT for commands and HEAD for the path form', async () => {
    const put = await request(`${gw.url}/`, {
      method: 'PUT',
      headers: auth,
      body: '["SET","put-key","v"]',
    });
    expect(put.body).toEqual({ result: 'OK' });
    const head = await request(`${gw.url}/get/put-key`, { method: 'HEAD', headers: auth });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  // fetch() normalises URLs before sending, so these go out through node:http as written.
  it('takes `.`, `..` and their percent-encodings in the path form as arguments, not path steps', async () => {
    const send = (path: string) =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const { hostname, port } = new URL(gw.url);
        const options = { hostname, port, path, method: 'POST', headers: auth };
        const req = httpRequest(options, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end();
      });
    await direct.del('dots:list', 'dots:k', 'dots:k2');
    expect((await send('/rpush/dots:list/a/./..')).body).toEqual({ result: 3 });
    expect((await send('/rpush/dots:list/%2e/%2E%2E/%2e%2E/x')).body).toEqual({ result: 7 });
    expect((await send('/rpush/dots:list/a%5Cb/%2e%2e%2Fc')).body).toEqual({ result: 9 });
    expect(await direct.lrange('dots:list', 0, -1)).toEqual([
      'a',
      '.',
      '..',
      '.',
      '..',
      '..',
      'x',
      'a\\b',
      '../c',
    ]);
    expect((await send('/set/dots:k/%2e%2e')).body).toEqual({ result: 'OK' });
    expect(await direct.get('dots:k')).toBe('..');
    expect((await send('/set/dots:k2/..?EX=100')).body).toEqual({ result: 'OK' });
    expect(await direct.get('dots:k2')).toBe('..');
    expect(await direct.ttl('dots:k2')).toBeGreaterThan(0);
    // `..` cannot climb out of a reserved prefix into the command space, or the other way.
    expect((await send('/admin/../set/dots:k/x')).status).toBe(404);
    expect((await send('/set/../admin/state')).body).toEqual({
      error: expect.stringMatching(/^ERR /),
    });
    expect(await direct.get('dots:k')).toBe('..');
  });

  it('authenticates before reading the body', async () => {
    const reply = await request(`${gw.url}/pipeline`, { method: 'POST', body: 'garbage' });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: 'Unauthorized' });
    const wrongQuery = await request(`${gw.url}/ping?_token=nope`);
    expect(wrongQuery.status).toBe(401);
  });
});

describe('deny-list', () => {
  afterEach(expectServing);

  it.each([
    [['FLUSHALL'], 'FLUSHALL'],
    [['config', 'get', 'maxmemory'], 'CONFIG'],
    [['SHUTDOWN', 'NOSAVE'], 'SHUTDOWN'],
    [['BLPOP', 'list', '0'], 'BLPOP'],
    [['XREAD', 'BLOCK', '0', 'STREAMS', 's', '$'], 'XREAD'],
    [['client', 'kill', 'ID', '1'], 'CLIENT KILL'],
    [['CLIENT', 'PAUSE', '1000'], 'CLIENT PAUSE'],
    [['MULTI'], 'MULTI'],
    [['SELECT', '1'], 'SELECT'],
    [['SUBSCRIBE', 'ch'], 'SUBSCRIBE'],
    [['MONITOR'], 'MONITOR'],
    [['WAIT', '1', '0'], 'WAIT'],
    [['SWAPDB', '0', '1'], 'SWAPDB'],
    [['FUNCTION', 'FLUSH'], 'FUNCTION FLUSH'],
    [['CLIENT', 'SETNAME', 'x'], 'CLIENT SETNAME'],
    [['SCRIPT', 'DEBUG', 'YES'], 'SCRIPT DEBUG'],
  ])('%j → 400 ERR naming %s', async (command, name) => {
    const reply = await post(gw.url, '/', command);
    expectError(reply, 400, new RegExp(`^ERR .*'${name}'`));
    expect(reply.body).toMatchObject({ code: 'COMMAND_DENIED' });
  });

  it('refuses the whole pipeline or transaction before running any of it', async () => {
    for (const path of ['/pipeline', '/multi-exec']) {
      const reply = await post(gw.url, path, [['SET', 'denied:first', '1'], ['FLUSHDB']]);
      expectError(reply, 400, /^ERR .*'FLUSHDB' \(command 2 of the batch\)/);
    }
    expect(await direct.exists('denied:first')).toBe(0);
  });

  it('applies to the path form', async () => {
    const reply = await request(`${gw.url}/debug/sleep/0`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expectError(reply, 400, /^ERR .*'DEBUG'/);
  });

  it('lets harmless relatives through', async () => {
    // A key named BLOCK after STREAMS is not the BLOCK option.
    expect((await post(gw.url, '/', ['XREAD', 'STREAMS', 'BLOCK', '0'])).body).toEqual({
      result: null,
    });
    expect((await post(gw.url, '/', ['CLIENT', 'ID'])).status).toBe(200);
    // A consumer group named BLOCK is not the option either.
    await direct.xadd('denied:stream', '*', 'f', 'v');
    await direct.xgroup('CREATE', 'denied:stream', 'BLOCK', '0');
    const group = ['XREADGROUP', 'GROUP', 'BLOCK', 'c', 'STREAMS', 'denied:stream', '>'];
    expect((await post(gw.url, '/', group)).status).toBe(200);
    const blocking = ['XREADGROUP', 'GROUP', 'BLOCK', 'c', 'BLOCK', '0', 'STREAMS', 'x', '>'];
    expectError(await post(gw.url, '/', blocking), 400, /^ERR .*'XREADGROUP'/);
  });

  // The endpoint, not a command: refusing it is about what the request may access.
  it('keeps /monitor closed unless allowed', async () => {
    const reply = await request(`${gw.url}/monitor`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expectError(reply, 403, /'MONITOR'/);
  });

  it('`allow` lifts entries, and MONITOR opens the stream', async () => {
    const open = await startTestGateway(redisServer, {
      allow: ['FLUSHDB', 'monitor'],
      readonlyToken: READONLY_TOKEN,
    });
    try {
      expect((await post(open.url, '/', ['FLUSHDB'])).body).toEqual({ result: 'OK' });
      expect((await post(open.url, '/', ['MONITOR'])).status).toBe(400);
      const roMonitor = await request(`${open.url}/monitor?_token=${READONLY_TOKEN}`);
      expect(roMonitor.status).toBe(403);

      const controller = new AbortController();
      const res = await fetch(`${open.url}/monitor`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      let text = '';
      await waitFor(
        async () => {
          await post(open.url, '/', ['ECHO', 'monitored "value"']);
          const { value } = await reader.read();
          text += Buffer.from(value ?? new Uint8Array()).toString();
          return text.includes('"ECHO" "monitored \\"value\\""');
        },
        5000,
        'a MONITOR line',
      );
      expect(text).toMatch(/^data: \d+\.\d+ \[0 127\.0\.0\.1:\d+\] "ECHO"/m);
      controller.abort();
    } finally {
      await open.gateway.close();
    }
  });

  it('refuses an `allow` entry that would corrupt pooled connections', async () => {
    const attempt = startTestGateway(redisServer, { allow: ['multi'] });
    await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
    await expect(attempt).rejects.toMatchObject({ field: 'allow' });
  });

  // SCRIPT DEBUG YES|SYNC arms the connection it runs on: the next EVAL sent on it, by any
  // request, would start a Lua debugging session instead of running.
  it('refuses SCRIPT DEBUG like SELECT in every form, and `allow` cannot lift it', async () => {
    const refused = /^ERR command 'SCRIPT DEBUG'.* is not allowed through this gateway: /;
    for (const [path, body] of [
      ['/', ['SCRIPT', 'DEBUG', 'YES']],
      ['/', ['script', 'debug', 'sync']],
      [
        '/pipeline',
        [
          ['SCRIPT', 'DEBUG', 'YES'],
          ['EVAL', 'return 1', '0'],
        ],
      ],
      [
        '/multi-exec',
        [
          ['SET', 'debug:first', '1'],
          ['Script', 'Debug', 'YES'],
        ],
      ],
    ] as const) {
      const reply = await post(gw.url, path, body);
      expectError(reply, 400, refused);
      expect(reply.body).toMatchObject({ code: 'COMMAND_DENIED' });
    }
    expect(await direct.exists('debug:first')).toBe(0);
    // Every pooled connection still runs scripts rather than debugging them.
    for (let i = 0; i < 8; i++) {
      expect((await post(gw.url, '/', ['EVAL', 'return 42', '0'])).body).toEqual({ result: 42 });
    }

    for (const entry of ['SCRIPT DEBUG', 'script|debug']) {
      const attempt = startTestGateway(redisServer, { allow: [entry] });
      await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
      await expect(attempt).rejects.toMatchObject({ field: 'allow' });
    }
    // Allowing the container lifts nothing pool-unsafe, as with `allow: ['CLIENT']`.
    const open = await startTestGateway(redisServer, { allow: ['SCRIPT'] });
    try {
      expectError(await post(open.url, '/', ['SCRIPT', 'DEBUG', 'YES']), 400, refused);
      expect((await post(open.url, '/', ['SCRIPT', 'EXISTS', 'x'])).body).toEqual({
        result: [0],
      });
    } finally {
      await open.gateway.close();
    }
  });

  // CLIENT NO-EVICT / NO-TOUCH set flags of the connection they run on, which every later
  // request sharing that pooled connection would inherit.
  it('refuses CLIENT NO-EVICT and NO-TOUCH like CLIENT SETNAME, and `allow` cannot lift them', async () => {
    for (const sub of ['NO-EVICT', 'NO-TOUCH', 'no-touch']) {
      const refused = new RegExp(`^ERR command 'CLIENT ${sub.toUpperCase()}'.* not allowed`);
      for (const [path, body] of [
        ['/', ['CLIENT', sub, 'ON']],
        ['/pipeline', [['CLIENT', sub, 'ON']]],
        ['/multi-exec', [['PING'], ['client', sub, 'on']]],
      ] as const) {
        const reply = await post(gw.url, path, body);
        expectError(reply, 400, refused);
        expect(reply.body).toMatchObject({ code: 'COMMAND_DENIED' });
      }
    }
    for (const entry of ['CLIENT NO-EVICT', 'client|no-touch']) {
      const attempt = startTestGateway(redisServer, { allow: [entry] });
      await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
      await expect(attempt).rejects.toMatchObject({ field: 'allow' });
    }
    // Not a single pooled connection took the flag.
    const clients = String(await direct.call('CLIENT', 'LIST'));
    for (const line of clients.split('\n').filter((l) => l.includes('name=redis-edge-gateway'))) {
      expect(line).toMatch(/ flags=N /);
    }
  });
});

describe('read-only token', () => {
  afterEach(expectServing);
  const ro = { authorization: `Bearer ${READONLY_TOKEN}` };

  it('reads succeed', async () => {
    await direct.set('ro:key', 'value');
    expect((await post(gw.url, '/', ['GET', 'ro:key'], ro)).body).toEqual({ result: 'value' });
    expect((await post(gw.url, '/', ['PING'], ro)).body).toEqual({ result: 'PONG' });
    expect((await post(gw.url, '/', ['OBJECT', 'ENCODING', 'ro:key'], ro)).status).toBe(200);
    expect((await post(gw.url, '/', ['EVAL_RO', 'return 1', '0'], ro)).body).toEqual({
      result: 1,
    });
    const pipeline = await post(
      gw.url,
      '/pipeline',
      [
        ['GET', 'ro:key'],
        ['STRLEN', 'ro:key'],
      ],
      ro,
    );
    expect(pipeline.body).toEqual([{ result: 'value' }, { result: 5 }]);
    const path = await request(`${gw.url}/get/ro:key?_token=${READONLY_TOKEN}`);
    expect(path.body).toEqual({ result: 'value' });
  });

  it('writes get 400 ERR and nothing runs', async () => {
    for (const command of [
      ['SET', 'ro:key', 'changed'],
      ['EVAL', 'return 1', '0'],
      ['DEL', 'ro:key'],
      ['NOSUCHCOMMAND'],
    ]) {
      const reply = await post(gw.url, '/', command, ro);
      expectError(reply, 400, /^ERR .*read-only/);
      expect(reply.body).toMatchObject({ code: 'READONLY_TOKEN' });
    }
    for (const path of ['/pipeline', '/multi-exec']) {
      const reply = await post(
        gw.url,
        path,
        [
          ['GET', 'ro:key'],
          ['INCR', 'ro:counter'],
        ],
        ro,
      );
      expectError(reply, 400, /^ERR .*'INCR' \(command 2 of the batch\)/);
    }
    const viaPath = await request(`${gw.url}/set/ro:key/x?_token=${READONLY_TOKEN}`);
    expectError(viaPath, 400, /^ERR .*read-only/);
    expect(await direct.get('ro:key')).toBe('value');
    expect(await direct.exists('ro:counter')).toBe(0);
  });

  it('denied commands stay denied', async () => {
    expectError(await post(gw.url, '/', ['FLUSHALL'], ro), 400, /^ERR .*'FLUSHALL'/);
  });
});

/** Runs last: it kills and restarts the backend. */
describe('backend failures', () => {
  it('504 without the not-sent marker when Redis does not answer in time (it may still run)', async () => {
    await redisServer.pause();
    try {
      const reply = await post(gw.url, '/', ['INCR', 'slow:counter']);
      expect(reply.status).toBe(504);
      expect(reply.body).toMatchObject({ code: 'BACKEND_TIMEOUT' });
      expect(reply.headers.get(NOT_SENT_HEADER)).toBeNull();
    } finally {
      await redisServer.resume();
    }
    // The write was on the wire: once Redis resumes it runs. "Unknown outcome" is the truth.
    await waitFor(async () => (await direct.get('slow:counter')) === '1', 5000, 'the late INCR');
    await expectServing();
  });

  it('502 when the connection drops after the write, and the command is never replayed', async () => {
    // Redis sleeps; meanwhile the gateway writes INCR. Right after the sleep, in the same
    // pipeline, Redis kills every other client, so the INCR is discarded unread.
    const killer = new IORedis(redisServer.url);
    killer.on('error', () => {});
    const sabotage = killer
      .pipeline()
      .call('DEBUG', 'SLEEP', '0.3')
      .call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      .exec();
    await sleep(100);
    const reply = await post(gw.url, '/', ['INCR', SECRET_KEY]);
    await sabotage;
    killer.disconnect();
    expect(reply.status).toBe(502);
    expect(reply.body).toMatchObject({ code: 'BACKEND_CONNECTION_LOST' });
    expect(reply.headers.get(NOT_SENT_HEADER)).toBeNull();
    await waitFor(async () => (await post(gw.url, '/', ['PING'])).status === 200);
    await sleep(200);
    expect(await direct.get(SECRET_KEY)).toBeNull();
  });

  it('502 when Redis dies with the command in flight', async () => {
    await redisServer.pause();
    const pending = post(gw.url, '/pipeline', [
      ['SET', 'inflight', '1'],
      ['GET', 'inflight'],
    ]);
    await sleep(100);
    await redisServer.kill();
    const reply = await pending;
    expect(reply.status).toBe(502);
    expect(reply.headers.get(NOT_SENT_HEADER)).toBeNull();
  });

  it('503 with x-redis-edge-sent: 0 while the backend is down, for every route', async () => {
    await waitFor(
      async () => (await post(gw.url, '/', ['PING'])).status === 503,
      5000,
      'the gateway to notice the dead backend',
    );
    const auth = { authorization: `Bearer ${TOKEN}` };
    const replies = [
      await post(gw.url, '/', ['INCR', 'down']),
      await post(gw.url, '/pipeline', [['INCR', 'down']]),
      await post(gw.url, '/multi-exec', [['INCR', 'down']]),
      await request(`${gw.url}/incr/down`, { headers: auth }),
      await request(`${gw.url}/subscribe/down`, { method: 'POST', headers: auth }),
      // The read-only check needs COMMAND INFO from the backend: still provably not sent.
      await post(gw.url, '/', ['ZCOUNT', 'z', '0', '1'], {
        authorization: `Bearer ${READONLY_TOKEN}`,
      }),
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(503);
      expect(reply.headers.get(NOT_SENT_HEADER)).toBe('0');
      expect(reply.body).toEqual({ error: 'backend unavailable', code: 'BACKEND_UNAVAILABLE' });
    }
    // Requests that never need the backend are answered as usual.
    expect((await post(gw.url, '/', 'junk')).status).toBe(400);
    expect((await post(gw.url, '/', ['PING'], { authorization: 'Bearer bad' })).status).toBe(401);
    expect((await post(gw.url, '/', ['FLUSHALL'])).status).toBe(400);
  });

  it('recovers when Redis comes back on the same port', async () => {
    await redisServer.spawn();
    await waitFor(
      async () => (await post(gw.url, '/', ['PING'])).status === 200,
      5000,
      'the pool to reconnect',
    );
    expect((await post(gw.url, '/', ['SET', 'back', '1'])).body).toEqual({ result: 'OK' });
    expect(gw.logs.filter((l) => l.includes('unavailable')).length).toBeGreaterThanOrEqual(1);
    expect(gw.logs.at(-1)).toMatch(/backend 127\.0\.0\.1:\d+ available/);
  });
});
