/**
 * The REST transport against real HTTP peers on loopback: small node:http / node:net servers
 * that answer with specific statuses, bodies and headers, hang, or cut the connection.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { Redis } from '@upstash/redis';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MemberRequestError } from '../../src/transport/errors.js';
import {
  CANCEL_WINDOW_MS,
  classifyFetchError,
  createRestTransport,
  decodeResult,
} from '../../src/transport/rest.js';
import {
  type AttemptOutcome,
  type MemberRequest,
  NOT_SENT_HEADER,
  REFUSED_HEADER,
  type RestReply,
} from '../../src/transport/types.js';

const TOKEN = 'tok-SECRET-a1b2c3d4e5';
const SECRET_ARG = 'arg-SECRET-value-9z8y';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  url: string;
  port: number;
  requests: Recorded[];
  close(): Promise<void>;
}

type Handler = (req: Recorded, res: ServerResponse) => void;

const servers: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/** An HTTP peer that records every request and answers with `handler`. */
async function httpServer(handler: Handler): Promise<TestServer> {
  const requests: Recorded[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      handler(recorded, res);
    });
  });
  const port = await listen(server);
  const handle = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

/** A TCP peer for misbehaviour HTTP servers cannot produce (silence, resets). */
async function tcpServer(onData: (socket: Socket, data: Buffer) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let received = 0;
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (data) => {
      received++;
      onData(socket, data);
    });
  });
  const port = await listen(server);
  const handle = {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return Array.from({ length: received }, () => ({}) as Recorded);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

/** A port on which nothing listens (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Every error a test produced, scanned for secrets at the end. */
const producedErrors: Error[] = [];

function transportFor(url: string, name = 'b', options = {}) {
  return createRestTransport({ name, url, token: TOKEN }, options);
}

async function send(
  transport: ReturnType<typeof createRestTransport>,
  request: MemberRequest,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<AttemptOutcome> {
  const outcome = await transport.send(request, { timeoutMs: 2000, ...options });
  expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
  expect(Number.isFinite(outcome.latencyMs)).toBe(true);
  if (outcome.kind !== 'ok') {
    producedErrors.push(outcome.error);
    expect(outcome.error).toBeInstanceOf(MemberRequestError);
    const error = outcome.error as MemberRequestError;
    expect(error.member).toBe(transport.name);
    expect(error.kind).toBe(outcome.kind);
    expect(error.message).toContain(`member "${transport.name}"`);
  }
  return outcome;
}

function reasonOf(outcome: AttemptOutcome): string | undefined {
  if (outcome.kind === 'ok') return undefined;
  return outcome.error instanceof MemberRequestError ? outcome.error.reason : undefined;
}

const cmd = (...command: unknown[]): MemberRequest => ({ kind: 'command', command });

function expectOk(outcome: AttemptOutcome): RestReply | RestReply[] {
  if (outcome.kind !== 'ok')
    throw new Error(`expected ok, got ${outcome.kind}: ${outcome.error.message}`);
  return outcome.reply;
}

describe('requests on the wire', () => {
  it('POSTs a command to the base URL with auth, JSON and base64 headers, body as-is', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const transport = transportFor(server.url);
    const command = ['set', 'key', 'välue 日本 😀', 42, true, '{"a":1}'];
    const outcome = await send(transport, cmd(...command));
    expect(expectOk(outcome)).toEqual({ result: 'OK' });
    expect(outcome.kind === 'ok' && outcome.status).toBe(200);
    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/');
    expect(req?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['upstash-encoding']).toBe('base64');
    expect(req?.headers['upstash-sync-token']).toBeUndefined();
    expect(req?.body).toBe(JSON.stringify(command));
  });

  it('POSTs pipelines and transactions to /pipeline and /multi-exec', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 200, [{ result: 'OK' }, { result: b64('1') }]),
    );
    const transport = transportFor(server.url);
    const commands = [
      ['set', 'a', 1],
      ['get', 'a'],
    ];
    const pipeline = await send(transport, { kind: 'pipeline', commands });
    const multi = await send(transport, { kind: 'multi-exec', commands });
    expect(expectOk(pipeline)).toEqual([{ result: 'OK' }, { result: '1' }]);
    expect(expectOk(multi)).toEqual([{ result: 'OK' }, { result: '1' }]);
    expect(server.requests.map((r) => r.url)).toEqual(['/pipeline', '/multi-exec']);
    expect(server.requests.map((r) => r.body)).toEqual([
      JSON.stringify(commands),
      JSON.stringify(commands),
    ]);
  });

  it('keeps a path prefix and a query string, and drops a trailing slash', async () => {
    const server = await httpServer((_req, res) => json(res, 200, [{ result: 'OK' }]));
    const transport = transportFor(`${server.url}/redis/?region=eu`);
    await send(transport, cmd('ping'));
    await send(transport, { kind: 'pipeline', commands: [['ping']] });
    await send(transport, { kind: 'multi-exec', commands: [['ping']] });
    expect(server.requests.map((r) => r.url)).toEqual([
      '/redis?region=eu',
      '/redis/pipeline?region=eu',
      '/redis/multi-exec?region=eu',
    ]);
  });

  it('adds caller headers but never lets them replace auth, content type or encoding', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const transport = transportFor(server.url, 'b', {
      headers: {
        'x-trace': 'abc',
        authorization: 'Bearer other',
        'CONTENT-TYPE': 'text/plain',
        'upstash-encoding': 'none',
        'Upstash-Sync-Token': 'forged',
      },
    });
    await send(transport, cmd('ping'));
    const headers = server.requests[0]?.headers;
    expect(headers?.['x-trace']).toBe('abc');
    expect(headers?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(headers?.['content-type']).toBe('application/json');
    expect(headers?.['upstash-encoding']).toBe('base64');
    expect(headers?.['upstash-sync-token']).toBeUndefined();
  });

  it('uses the fetch option for every request', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: b64('PONG') }));
    const seen: string[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      seen.push(`${init?.method} ${String(input)}`);
      return fetch(input, init);
    };
    const transport = transportFor(server.url, 'b', { fetch: recordingFetch });
    expect(expectOk(await send(transport, cmd('ping')))).toEqual({ result: 'PONG' });
    await send(transport, { kind: 'pipeline', commands: [['ping']] });
    expect(seen).toEqual([`POST ${server.url}/`, `POST ${server.url}/pipeline`]);
  });
});

describe('base64 decoding', () => {
  async function roundTrip(result: unknown, request: MemberRequest = cmd('x')) {
    const server = await httpServer((_req, res) =>
      json(res, 200, request.kind === 'command' ? { result } : [{ result }]),
    );
    const outcome = await send(transportFor(server.url), request);
    const reply = expectOk(outcome);
    return Array.isArray(reply) ? reply[0]?.result : reply.result;
  }

  it('decodes strings, keeps "OK", numbers and null', async () => {
    expect(await roundTrip(b64('hello'))).toBe('hello');
    expect(await roundTrip('OK')).toBe('OK');
    expect(await roundTrip(b64('OK'))).toBe('OK');
    expect(await roundTrip(42)).toBe(42);
    expect(await roundTrip(-1.5)).toBe(-1.5);
    expect(await roundTrip(null)).toBeNull();
    expect(await roundTrip(b64(''))).toBe('');
  });

  it('decodes UTF-8 text, emoji and binary-ish bytes like TextDecoder', async () => {
    expect(await roundTrip(b64('grüße 日本語 😀'))).toBe('grüße 日本語 😀');
    const bytes = Buffer.from([0x00, 0x01, 0x7f, 0xff, 0xfe, 0xc3]);
    expect(await roundTrip(bytes.toString('base64'))).toBe(new TextDecoder().decode(bytes));
  });

  it('keeps a string that is not valid base64 as it is', async () => {
    expect(await roundTrip('not base64!')).toBe('not base64!');
  });

  it('decodes arrays element by element and nested arrays recursively', async () => {
    expect(await roundTrip([b64('a'), 1, null, [b64('b'), [b64('c'), b64('OK')], 2]])).toEqual([
      'a',
      1,
      null,
      ['b', ['c', 'OK'], 2],
    ]);
  });

  it('decodes every element of a pipeline reply and never an error', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 200, [
        { result: b64('v') },
        { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' },
        { result: [b64('x'), 3] },
      ]),
    );
    const reply = expectOk(
      await send(transportFor(server.url), {
        kind: 'pipeline',
        commands: [
          ['get', 'a'],
          ['lpush', 'a', 'b'],
          ['lrange', 'l', 0, -1],
        ],
      }),
    );
    expect(reply).toEqual([
      { result: 'v' },
      { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' },
      { result: ['x', 3] },
    ]);
  });

  it('gives exactly what @upstash/redis 1.39 gives for the same bytes (property)', async () => {
    let next: unknown;
    const server = await httpServer((req, res) => {
      const batch = req.url === '/pipeline';
      json(res, 200, batch ? [{ result: next }, { result: next }] : { result: next });
    });
    const official = new Redis({
      url: server.url,
      token: TOKEN,
      retry: { retries: 0 },
      enableTelemetry: false,
    }) as unknown as { client: { request(req: unknown): Promise<unknown> } };
    const ours = transportFor(server.url);
    const leaf = fc.oneof(
      fc.string().map(b64),
      fc.string({ unit: 'grapheme' }).map(b64),
      fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('base64')),
      fc.constantFrom('OK', 'PONG', 'abcd', 'not base64!', ''),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constant(null),
    );
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 })),
    })).node;
    await fc.assert(
      fc.asyncProperty(tree, async (result) => {
        next = result;
        const expected = (await official.client.request({ body: ['x'] })) as RestReply;
        expect(expectOk(await ours.send(cmd('x'), { timeoutMs: 2000 }))).toEqual(expected);
        const commands = [['x'], ['x']];
        const expectedBatch = await official.client.request({ path: ['pipeline'], body: commands });
        const batch = await ours.send({ kind: 'pipeline', commands }, { timeoutMs: 2000 });
        expect(expectOk(batch)).toEqual(expectedBatch);
      }),
      { numRuns: 60 },
    );
  });

  it('keeps @upstash/redis\' quirks: "OK" inside an array is decoded, objects become null', () => {
    expect(decodeResult(['OK'])).toEqual([atob('OK')]);
    expect(decodeResult([['OK']])).toEqual([['OK']]);
    expect(decodeResult({ a: 1 })).toBeNull();
    expect(decodeResult([{ a: 1 }])).toEqual([{ a: 1 }]);
    expect(decodeResult(undefined)).toBeUndefined();
  });
});

describe('answers from the member', () => {
  it('returns a 400 command error unchanged as ok', async () => {
    const message = 'NOSCRIPT No matching script. Please use EVAL.';
    const server = await httpServer((_req, res) => json(res, 400, { error: message }));
    const outcome = await send(transportFor(server.url), cmd('evalsha', 'abc', 0));
    expect(outcome).toMatchObject({ kind: 'ok', status: 400, reply: { error: message } });
  });

  it('returns a 200 {error} as ok', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 200, { error: 'ERR max request size exceeded' }),
    );
    const outcome = await send(transportFor(server.url), cmd('set', 'k', 'v'));
    expect(outcome).toMatchObject({
      kind: 'ok',
      status: 200,
      reply: { error: 'ERR max request size exceeded' },
    });
  });

  it('returns a discarded transaction (400 with one {error}) as ok with that one reply', async () => {
    const error = 'EXECABORT Transaction discarded because of previous errors.';
    const server = await httpServer((_req, res) => json(res, 400, { error }));
    const outcome = await send(transportFor(server.url), {
      kind: 'multi-exec',
      commands: [['set', 'a', 1], ['nosuchcommand']],
    });
    expect(outcome).toMatchObject({ kind: 'ok', status: 400 });
    expect(expectOk(outcome)).toEqual({ error });
  });

  it.each([0, 1, 3])(
    'takes a batch answered with %i replies for 2 commands as malformed (they cannot be matched)',
    async (count) => {
      const server = await httpServer((_req, res) =>
        json(
          res,
          200,
          Array.from({ length: count }, () => ({ result: 'x' })),
        ),
      );
      for (const kind of ['pipeline', 'multi-exec'] as const) {
        const outcome = await send(transportFor(server.url), {
          kind,
          commands: [
            ['get', 'a'],
            ['incr', 'n'],
          ],
        });
        expect(outcome.kind).toBe('unknown-outcome');
        expect(reasonOf(outcome)).toBe('malformed-reply');
      }
    },
  );

  it('returns another 4xx with an {error} body as ok (the member refused the command)', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 413, { error: 'ERR request too large' }),
    );
    const outcome = await send(transportFor(server.url), cmd('set', 'k', 'v'));
    expect(outcome).toMatchObject({
      kind: 'ok',
      status: 413,
      reply: { error: 'ERR request too large' },
    });
  });

  it.each([401, 403])(
    'reports HTTP %i as config, naming the member and not the token',
    async (status) => {
      const server = await httpServer((_req, res) =>
        json(res, status, { error: `Unauthorized ${TOKEN}` }),
      );
      const outcome = await send(transportFor(server.url), cmd('get', 'k'));
      expect(outcome.kind).toBe('config');
      expect(outcome.kind !== 'ok' && outcome.error.message).toBe(
        `member "b" rejected the token (HTTP ${status})`,
      );
      expect(outcome.status).toBe(status);
      expect(reasonOf(outcome)).toBe('auth');
    },
  );

  it.each([404, 405])('reports HTTP %i as config (the URL is wrong)', async (status) => {
    const server = await httpServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('nope');
    });
    const outcome = await send(transportFor(server.url), cmd('get', 'k'));
    expect(outcome).toMatchObject({ kind: 'config', status });
    expect(reasonOf(outcome)).toBe('wrong-url');
  });

  it('does not follow a redirect (the token stays with the member URL)', async () => {
    const elsewhere = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const server = await httpServer((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/` });
      res.end();
    });
    const outcome = await send(transportFor(server.url), cmd('set', 'k', 'v'));
    expect(outcome).toMatchObject({ kind: 'config', status: 307 });
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('reports a 503 with the gateway marker as not-sent', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 503, { error: 'backend unavailable' }, { [NOT_SENT_HEADER]: '0' }),
    );
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'));
    expect(outcome).toMatchObject({ kind: 'not-sent', status: 503 });
  });

  it("names Redis' refusal from the gateway's header (OOM is not an outage), or says unreachable", async () => {
    const refused = await httpServer((_req, res) =>
      json(res, 503, { error: 'x' }, { [NOT_SENT_HEADER]: '0', [REFUSED_HEADER]: 'OOM' }),
    );
    const unreachable = await httpServer((_req, res) =>
      json(res, 503, { error: 'backend unavailable' }, { [NOT_SENT_HEADER]: '0' }),
    );
    const odd = await httpServer((_req, res) =>
      json(res, 503, {}, { [NOT_SENT_HEADER]: '0', [REFUSED_HEADER]: TOKEN }),
    );
    const message = async (url: string) => {
      const outcome = await send(transportFor(url), cmd('incr', 'n'));
      expect(outcome.kind).toBe('not-sent');
      return outcome.kind !== 'ok' && outcome.error.message;
    };
    expect(await message(refused.url)).toBe(
      'member "b" did not run the request (HTTP 503: Redis refused it (OOM))',
    );
    expect(await message(unreachable.url)).toBe(
      'member "b" did not run the request (HTTP 503: its Redis is unreachable)',
    );
    // Anything but a plain Redis code is not repeated.
    expect(await message(odd.url)).toBe(
      'member "b" did not run the request (HTTP 503: its Redis is unreachable)',
    );
  });

  it('decides a 503 with the marker from its headers: a body that stalls holds nothing up', async () => {
    const stalled = await httpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', [NOT_SENT_HEADER]: '0' });
      res.write('{"error":"backend unav');
    });
    const started = performance.now();
    const outcome = await send(transportFor(stalled.url), cmd('incr', 'n'), { timeoutMs: 2000 });
    expect(outcome.kind).toBe('not-sent');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('reports a 503 without the marker (or with another value) as unknown-outcome', async () => {
    const plain = await httpServer((_req, res) => json(res, 503, { error: 'busy' }));
    const other = await httpServer((_req, res) =>
      json(res, 503, { error: 'x' }, { [NOT_SENT_HEADER]: '1' }),
    );
    expect(await send(transportFor(plain.url), cmd('incr', 'n'))).toMatchObject({
      kind: 'unknown-outcome',
      status: 503,
    });
    expect(await send(transportFor(other.url), cmd('incr', 'n'))).toMatchObject({
      kind: 'unknown-outcome',
      status: 503,
    });
  });

  it('reports a non-JSON 502 from a proxy as unknown-outcome', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    });
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'));
    expect(outcome).toMatchObject({ kind: 'unknown-outcome', status: 502 });
  });

  it.each([
    [200, 'text/html', '<html>captive portal</html>'],
    [200, 'application/json', '{"foo": 1}'],
    [200, 'application/json', '[{"result": "T0s="}]'],
    [200, 'application/json', '{"error": 42}'],
    [400, 'text/html', '<html>Bad Request</html>'],
    [429, 'text/plain', 'slow down'],
    [400, 'application/json', '{"result": "T0s="}'],
  ])('reports HTTP %i %s %s for a command as unknown-outcome', async (status, type, body) => {
    const server = await httpServer((_req, res) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    const outcome = await send(transportFor(server.url), cmd('set', 'k', 'v'));
    expect(outcome).toMatchObject({ kind: 'unknown-outcome', status });
  });

  it('reports a batch answered with a result object or a malformed array as unknown-outcome', async () => {
    for (const body of [{ result: 'T0s=' }, [{ result: 'T0s=' }, 'x'], [null]]) {
      const server = await httpServer((_req, res) => json(res, 200, body));
      const outcome = await send(transportFor(server.url), {
        kind: 'pipeline',
        commands: [['ping']],
      });
      expect(outcome).toMatchObject({ kind: 'unknown-outcome', status: 200 });
    }
  });
});

describe('read-your-writes sync token', () => {
  it('echoes the last token of this member, and only to this member', async () => {
    const tokenServer = (prefix: string) => {
      let n = 0;
      return httpServer((_req, res) => {
        n++;
        json(res, 200, { result: 'OK' }, { 'upstash-sync-token': `${prefix}-${n}` });
      });
    };
    const a = await tokenServer('A');
    const b = await tokenServer('B');
    const ta = transportFor(a.url, 'a');
    const tb = transportFor(b.url, 'b');
    for (let i = 0; i < 3; i++) {
      await send(ta, cmd('set', 'k', i));
      await send(tb, cmd('get', 'k'));
    }
    expect(a.requests.map((r) => r.headers['upstash-sync-token'])).toEqual([
      undefined,
      'A-1',
      'A-2',
    ]);
    expect(b.requests.map((r) => r.headers['upstash-sync-token'])).toEqual([
      undefined,
      'B-1',
      'B-2',
    ]);
    expect(ta.syncToken).toBe('A-3');
    expect(tb.syncToken).toBe('B-3');
  });

  it('keeps the token when a 2xx has none, and ignores tokens on non-2xx replies', async () => {
    let reply = 0;
    const server = await httpServer((_req, res) => {
      reply++;
      if (reply === 1) json(res, 200, { result: 'OK' }, { 'upstash-sync-token': 't1' });
      else if (reply === 2) json(res, 200, { result: 'OK' });
      else if (reply === 3) json(res, 400, { error: 'ERR' }, { 'upstash-sync-token': 'bad' });
      else json(res, 503, { error: 'x' }, { 'upstash-sync-token': 'bad2' });
    });
    const transport = transportFor(server.url);
    for (let i = 0; i < 5; i++) await send(transport, cmd('get', 'k'));
    expect(server.requests.map((r) => r.headers['upstash-sync-token'])).toEqual([
      undefined,
      't1',
      't1',
      't1',
      't1',
    ]);
    expect(transport.syncToken).toBe('t1');
  });

  it('neither sends nor stores a token when readYourWrites is false', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 200, { result: 'OK' }, { 'upstash-sync-token': 'tok' }),
    );
    const transport = transportFor(server.url, 'b', { readYourWrites: false });
    await send(transport, cmd('get', 'k'));
    await send(transport, cmd('get', 'k'));
    expect(server.requests.map((r) => r.headers['upstash-sync-token'])).toEqual([
      undefined,
      undefined,
    ]);
    expect(transport.syncToken).toBe('');
  });

  it('takes tokens from pipeline replies too', async () => {
    const server = await httpServer((_req, res) =>
      json(res, 200, [{ result: 'OK' }], { 'upstash-sync-token': 'p1' }),
    );
    const transport = transportFor(server.url);
    await send(transport, { kind: 'pipeline', commands: [['set', 'a', 1]] });
    await send(transport, cmd('get', 'a'));
    expect(server.requests[1]?.headers['upstash-sync-token']).toBe('p1');
  });
});

describe('network failures', () => {
  it('reports connection refused as not-sent', async () => {
    const port = await closedPort();
    const outcome = await send(transportFor(`http://127.0.0.1:${port}`), cmd('incr', 'n'));
    expect(outcome.kind).toBe('not-sent');
    expect(outcome.kind !== 'ok' && outcome.error.message).toContain('ECONNREFUSED');
    expect(reasonOf(outcome)).toBe('network');
  });

  it('reports a DNS failure as not-sent', async () => {
    const outcome = await send(
      transportFor('http://member.does-not-exist.invalid'),
      cmd('incr', 'n'),
    );
    expect(outcome.kind).toBe('not-sent');
  });

  it.each(['not a url', 'ftp://example.com', ''])(
    'reports the invalid URL %j as config without a request',
    async (url) => {
      let calls = 0;
      const countingFetch: typeof fetch = (input, init) => {
        calls++;
        return fetch(input, init);
      };
      const outcome = await send(transportFor(url, 'b', { fetch: countingFetch }), cmd('get', 'k'));
      expect(outcome.kind).toBe('config');
      expect(outcome.kind !== 'ok' && outcome.error.message).toBe(
        'member "b" has an invalid URL (expected http:// or https://)',
      );
      expect(calls).toBe(0);
    },
  );

  it('reports a connection reset before any reply as unknown-outcome', async () => {
    const server = await tcpServer((socket) => socket.resetAndDestroy());
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'));
    expect(outcome.kind).toBe('unknown-outcome');
  });

  it('reports a connection closed before any reply as unknown-outcome', async () => {
    const server = await tcpServer((socket) => socket.end());
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'));
    expect(outcome.kind).toBe('unknown-outcome');
  });

  it('reports a reset in the middle of the reply body as unknown-outcome', async () => {
    const server = await tcpServer((socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"res',
      );
      setTimeout(() => socket.resetAndDestroy(), 20);
    });
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'));
    expect(outcome).toMatchObject({ kind: 'unknown-outcome', status: 200 });
  });
});

describe('timeouts and aborts', () => {
  it('ends a silent member as unknown-outcome within timeoutMs plus a small margin', async () => {
    const server = await tcpServer(() => {});
    const started = performance.now();
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'), { timeoutMs: 200 });
    const took = performance.now() - started;
    expect(outcome.kind).toBe('unknown-outcome');
    expect(outcome.kind !== 'ok' && outcome.error.message).toBe(
      'member "b" did not answer within 200 ms',
    );
    expect(reasonOf(outcome)).toBe('timeout');
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(200 + 150);
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(195);
  });

  it('times out a reply whose body stalls after the headers', async () => {
    const server = await tcpServer((socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"res',
      );
    });
    const started = performance.now();
    const outcome = await send(transportFor(server.url), cmd('get', 'k'), { timeoutMs: 150 });
    expect(outcome.kind).toBe('unknown-outcome');
    expect(reasonOf(outcome)).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(150 + 150);
  });

  it('times out even when the fetch implementation ignores the signal', async () => {
    const server = await tcpServer(() => {});
    const deafFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal: null });
    const started = performance.now();
    const outcome = await send(
      transportFor(server.url, 'b', { fetch: deafFetch }),
      cmd('get', 'k'),
      {
        timeoutMs: 100,
      },
    );
    expect(outcome.kind).toBe('unknown-outcome');
    expect(performance.now() - started).toBeLessThan(100 + 150);
  });

  it("ends the attempt as unknown-outcome when the caller's signal aborts mid-flight", async () => {
    const server = await tcpServer(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('hedge lost')), 50);
    const started = performance.now();
    const outcome = await send(transportFor(server.url), cmd('get', 'k'), {
      timeoutMs: 5000,
      signal: controller.signal,
    });
    expect(outcome.kind).toBe('unknown-outcome');
    expect(outcome.kind !== 'ok' && outcome.error.message).toBe(
      'request to member "b" was aborted by the caller',
    );
    expect(reasonOf(outcome)).toBe('aborted');
    expect(performance.now() - started).toBeLessThan(50 + 150);
  });

  it('sends nothing and reports not-sent when the signal is already aborted', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const outcome = await send(transportFor(server.url), cmd('incr', 'n'), {
      signal: AbortSignal.abort(),
    });
    expect(outcome.kind).toBe('not-sent');
    expect(reasonOf(outcome)).toBe('aborted');
    expect(server.requests).toHaveLength(0);
  });

  it('leaves no timer or listener behind after an answer', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const controller = new AbortController();
    const transport = transportFor(server.url);
    expect(
      expectOk(
        await send(transport, cmd('get', 'k'), { timeoutMs: 30, signal: controller.signal }),
      ),
    ).toEqual({
      result: 'OK',
    });
    // A late abort or the expired timer must not turn into anything (e.g. an unhandled rejection).
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(server.requests).toHaveLength(1);
  });
});

describe('lazy cancellation', () => {
  /** A fetch that records whether each request carried a signal, then fetches for real. */
  function recordingFetch() {
    const signals: Array<AbortSignal | undefined> = [];
    const recording: typeof fetch = (input, init) => {
      signals.push(init?.signal ?? undefined);
      return fetch(input, init);
    };
    return { signals, fetch: recording };
  }

  /** An HTTP peer that answers, or holds every request until told to answer. */
  async function switchableServer() {
    const held: ServerResponse[] = [];
    const closedEarly: number[] = [];
    let hanging = false;
    let seen = 0;
    const server = await httpServer((_req, res) => {
      const index = seen++;
      res.on('close', () => {
        if (!res.writableFinished) closedEarly.push(index);
      });
      if (hanging) held.push(res);
      else json(res, 200, { result: b64('v') });
    });
    return {
      server,
      closedEarly,
      hang: () => {
        hanging = true;
      },
      answerAll: () => {
        hanging = false;
        for (const res of held.splice(0)) json(res, 200, { result: b64('late') });
      },
    };
  }

  it('sends no signal to a member that has not failed, and one to every attempt for CANCEL_WINDOW_MS after it timed out', async () => {
    const peer = await switchableServer();
    const recorder = recordingFetch();
    const transport = transportFor(peer.server.url, 'b', { fetch: recorder.fetch });

    expect(expectOk(await send(transport, cmd('get', 'k')))).toEqual({ result: 'v' });
    expect(recorder.signals[0]).toBeUndefined();

    peer.hang();
    // Bounded by the timer alone: it ends on time, but the request stays open on the wire.
    const started = performance.now();
    const abandoned = await send(transport, cmd('get', 'k'), { timeoutMs: 150 });
    expect(abandoned.kind).toBe('unknown-outcome');
    expect(reasonOf(abandoned)).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(150 + 150);
    expect(recorder.signals[1]).toBeUndefined();

    // The member has timed out once: now the attempt is really cancelled on the wire.
    const cancelled = await send(transport, cmd('get', 'k'), { timeoutMs: 150 });
    expect(reasonOf(cancelled)).toBe('timeout');
    expect(recorder.signals[2]?.aborted).toBe(true);
    await expect.poll(() => peer.closedEarly, { timeout: 2000 }).toContain(2);
    expect(peer.closedEarly).not.toContain(1);

    // The abandoned request's late answer is taken and dropped; the member answers again,
    // and attempts stay cancellable for the rest of the window.
    peer.answerAll();
    expect(expectOk(await send(transport, cmd('get', 'k')))).toEqual({ result: 'v' });
    expect(recorder.signals[3]).toBeInstanceOf(AbortSignal);
    expect(recorder.signals[3]?.aborted).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(peer.closedEarly).not.toContain(1);

    // Once the window has passed without another failure, the signal goes again.
    const now = performance.now.bind(performance);
    const later = vi.spyOn(performance, 'now').mockImplementation(() => now() + CANCEL_WINDOW_MS);
    try {
      expectOk(await send(transport, cmd('get', 'k')));
    } finally {
      later.mockRestore();
    }
    expect(recorder.signals[4]).toBeUndefined();
  });

  it('makes a member cancellable after a connection it lost, not after a refused one', async () => {
    const recorder = recordingFetch();
    const refused = transportFor(`http://127.0.0.1:${await closedPort()}`, 'b', {
      fetch: recorder.fetch,
    });
    expect((await send(refused, cmd('get', 'k'))).kind).toBe('not-sent');
    expect((await send(refused, cmd('get', 'k'))).kind).toBe('not-sent');
    expect(recorder.signals).toEqual([undefined, undefined]);

    const dropping = await tcpServer((socket) => socket.destroy());
    const lost = transportFor(dropping.url, 'b', { fetch: recorder.fetch });
    expect((await send(lost, cmd('get', 'k'))).kind).toBe('unknown-outcome');
    expect((await send(lost, cmd('get', 'k'))).kind).toBe('unknown-outcome');
    expect(recorder.signals[2]).toBeUndefined();
    expect(recorder.signals[3]).toBeInstanceOf(AbortSignal);
  });

  it('gives every attempt a signal with cancelAlways, before and after a timeout', async () => {
    const silent = await tcpServer(() => {});
    const recorder = recordingFetch();
    const transport = transportFor(silent.url, 'b', { fetch: recorder.fetch, cancelAlways: true });
    for (let i = 0; i < 2; i++) {
      const outcome = await send(transport, cmd('get', 'k'), { timeoutMs: 50 });
      expect(reasonOf(outcome)).toBe('timeout');
    }
    expect(recorder.signals.map((s) => s?.aborted)).toEqual([true, true]);
  });

  it('reports a supplied fetch that throws instead of rejecting as an outcome, not an exception', async () => {
    const throwing: typeof fetch = () => {
      throw new TypeError('boom');
    };
    const outcome = await send(
      transportFor('http://127.0.0.1:9', 'b', { fetch: throwing }),
      cmd('get', 'k'),
    );
    expect(outcome.kind).toBe('unknown-outcome');
    expect(reasonOf(outcome)).toBe('network');
  });

  it('keeps the token out of the outcome when fetch refuses the request quoting its header', async () => {
    // What undici does with a token holding a line break: the header, token and all, in the text.
    const quoting: typeof fetch = async () => {
      throw new TypeError(`Headers.append: "Bearer ${TOKEN}" is an invalid header value.`, {
        cause: new Error(`invalid header value "Bearer ${TOKEN}"`),
      });
    };
    const outcome = await send(
      transportFor('http://127.0.0.1:9', 'b', { fetch: quoting }),
      cmd('get', 'k'),
    );
    expect(outcome.kind).not.toBe('ok');
    const error = (outcome as { error: Error }).error;
    expect(error.message).toContain('fetch refused the request');
    expect(inspect(error, { depth: 10 })).not.toContain(TOKEN);
  });

  it('keeps only names, codes and messages of a fetch error as cause: nothing a logger could print the token from', async () => {
    const rejections: unknown[] = [
      // a wrapper that rejects with text, or with an error carrying the request it made
      `request failed: Authorization: Bearer ${TOKEN}`,
      Object.assign(new Error('socket hang up'), {
        code: 'ECONNRESET',
        request: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    ];
    for (const rejection of rejections) {
      const failing: typeof fetch = () => Promise.reject(rejection);
      const outcome = await send(
        transportFor('http://127.0.0.1:9', 'b', { fetch: failing }),
        cmd('get', 'k'),
      );
      const error = (outcome as { error: Error }).error;
      expect(inspect(error, { depth: 10 })).not.toContain(TOKEN);
      expect(JSON.stringify(error)).not.toContain(TOKEN);
    }
    // What helps debugging stays: the chain's names, codes and messages.
    const refused: typeof fetch = () =>
      Promise.reject(
        new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
            code: 'ECONNREFUSED',
          }),
        }),
      );
    const outcome = await send(
      transportFor('http://127.0.0.1:9', 'b', { fetch: refused }),
      cmd('get', 'k'),
    );
    const cause = (outcome as { error: Error }).error.cause as Error & {
      cause: Error & { code: string };
    };
    expect(cause).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
    expect(cause.cause).toMatchObject({
      message: 'connect ECONNREFUSED 127.0.0.1:9',
      code: 'ECONNREFUSED',
    });
  });

  it('always gives the attempt a signal when the caller passes one', async () => {
    const server = await httpServer((_req, res) => json(res, 200, { result: 'OK' }));
    const recorder = recordingFetch();
    const transport = transportFor(server.url, 'b', { fetch: recorder.fetch });
    const controller = new AbortController();
    expectOk(await send(transport, cmd('get', 'k'), { signal: controller.signal }));
    expect(recorder.signals[0]).toBeInstanceOf(AbortSignal);
  });

  for (const state of ['has not failed', 'is within its cancellation window'] as const) {
    it(`times out a silent member and a stalled body on time when the member ${state}`, async () => {
      const silent = await tcpServer(() => {});
      const stalled = await tcpServer((socket) => {
        socket.write(
          'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"res',
        );
      });
      for (const server of [silent, stalled]) {
        const recorder = recordingFetch();
        const transport = transportFor(server.url, 'b', { fetch: recorder.fetch });
        if (state !== 'has not failed') await send(transport, cmd('get', 'k'), { timeoutMs: 20 });
        const started = performance.now();
        const outcome = await send(transport, cmd('get', 'k'), { timeoutMs: 150 });
        expect(outcome.kind).toBe('unknown-outcome');
        expect(reasonOf(outcome)).toBe('timeout');
        expect(performance.now() - started).toBeLessThan(150 + 150);
        expect(recorder.signals.at(-1) === undefined).toBe(state === 'has not failed');
      }
    });
  }
});

describe('classifyFetchError', () => {
  const undici = (code: string, message = 'x') =>
    Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error(message), { code }),
    });

  it.each([
    'ECONNREFUSED',
    'ENOTFOUND',
    'EAI_AGAIN',
    'ENETUNREACH',
    'EHOSTUNREACH',
    'UND_ERR_CONNECT_TIMEOUT',
    'CERT_HAS_EXPIRED',
    'ERR_TLS_CERT_ALTNAME_INVALID',
  ])('treats undici %s as not-sent', (code) => {
    expect(classifyFetchError(undici(code))).toBe('not-sent');
  });

  it.each(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT'])(
    'treats undici %s as unknown-outcome',
    (code) => {
      expect(classifyFetchError(undici(code))).toBe('unknown-outcome');
    },
  );

  it('recognises not-sent errors without a code (undici, Deno, Bun)', () => {
    expect(
      classifyFetchError(
        Object.assign(new TypeError('fetch failed'), { cause: new Error('bad port') }),
      ),
    ).toBe('not-sent');
    expect(
      classifyFetchError(
        new TypeError(
          'error sending request for url (http://h/): client error (Connect): tcp connect error: Connection refused (os error 111)',
        ),
      ),
    ).toBe('not-sent');
    expect(
      classifyFetchError(
        new TypeError('error sending request: dns error: failed to lookup address information'),
      ),
    ).toBe('not-sent');
    expect(
      classifyFetchError(
        Object.assign(new Error('Unable to connect'), { code: 'ConnectionRefused' }),
      ),
    ).toBe('not-sent');
  });

  it('treats every refused address of a happy-eyeballs attempt as not-sent, a mix as unknown', () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const all = new AggregateError([refused('::1'), refused('127.0.0.1')]);
    const mixed = new AggregateError([refused('::1'), reset]);
    expect(classifyFetchError(Object.assign(new TypeError('fetch failed'), { cause: all }))).toBe(
      'not-sent',
    );
    expect(classifyFetchError(Object.assign(new TypeError('fetch failed'), { cause: mixed }))).toBe(
      'unknown-outcome',
    );
  });

  it('treats ambiguous runtime errors as unknown-outcome', () => {
    // workerd reports refused and dropped connections with the same text
    expect(classifyFetchError(new Error('Network connection lost.'))).toBe('unknown-outcome');
    expect(classifyFetchError(new TypeError('terminated'))).toBe('unknown-outcome');
    expect(classifyFetchError(new TypeError('Failed to fetch'))).toBe('unknown-outcome');
    expect(classifyFetchError(new TypeError('Load failed'))).toBe('unknown-outcome');
    expect(classifyFetchError(new Error('internal error'))).toBe('unknown-outcome');
    expect(classifyFetchError('string')).toBe('unknown-outcome');
    expect(classifyFetchError(null)).toBe('unknown-outcome');
    expect(classifyFetchError(undefined)).toBe('unknown-outcome');
  });

  it('survives a cause cycle', () => {
    const a: { message: string; cause?: unknown } = { message: 'a' };
    a.cause = a;
    expect(classifyFetchError(a)).toBe('unknown-outcome');
  });
});

describe('secrets', () => {
  it('no error message, cause or field of any test carries the token or a command argument', async () => {
    // A few more failures whose errors carry secrets in the server's body or in arguments.
    const leaky = await httpServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`upstream said ${TOKEN} ${SECRET_ARG}`);
    });
    await send(transportFor(leaky.url), cmd('set', 'k', SECRET_ARG));
    const port = await closedPort();
    await send(transportFor(`http://127.0.0.1:${port}`), cmd('set', 'k', SECRET_ARG));
    const silent = await tcpServer(() => {});
    await send(transportFor(silent.url), cmd('set', 'k', SECRET_ARG), { timeoutMs: 50 });

    expect(producedErrors.length).toBeGreaterThan(20);
    for (const error of producedErrors) {
      const texts: string[] = [];
      let current: unknown = error;
      for (let depth = 0; depth < 5 && current; depth++) {
        texts.push(String(current), (current as Error).stack ?? '');
        current = (current as { cause?: unknown }).cause;
      }
      texts.push(JSON.stringify({ ...error }));
      for (const text of texts) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(SECRET_ARG);
        expect(text).not.toContain('Bearer');
      }
    }
  });
});

afterAll(() => {
  producedErrors.length = 0;
});
