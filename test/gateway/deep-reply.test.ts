import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { NOT_SENT_HEADER, startGateway } from '../../src/gateway/index.js';
import { createFailoverRedis } from '../../src/index.js';
import { startLocalCluster } from '../../src/testing/index.js';
import { useRedisWithGateway } from './fixture.js';
import { post, READONLY_TOKEN, request, TOKEN, waitFor } from './helpers.js';

/**
 * A script can return a Lua table nested thousands of levels deep, and Redis sends it (7.0
 * stops near 8000). That must cost the caller an error, never the process: ioredis' reply
 * parser recursed per level inside a socket listener and overflowed the stack (an uncaught
 * exception: the gateway exited), and at ~2500 levels the gateway's own encoding did (a 500).
 */
const fixture = useRedisWithGateway({ readonlyToken: READONLY_TOKEN });

/** `EVAL_RO` (allowed for the read-only token) of a script returning `levels` nested tables. */
const nested = (levels: number) => [
  'EVAL_RO',
  `local t = {} local cur = t for i = 2, ${levels} do local n = {} cur[1] = n cur = n end return t`,
  '0',
];

function readonlyPost(url: string, path: string, body: unknown) {
  return request(url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${READONLY_TOKEN}` },
    body: JSON.stringify(body),
  });
}

/** Levels of arrays in a JSON value nested one element deep, counted without recursion. */
function depthOf(value: unknown): number {
  let depth = 0;
  while (Array.isArray(value)) {
    depth++;
    value = value[0];
  }
  return depth;
}

/** Client ids of the gateway's pool connections, as Redis sees them. */
async function poolIds(): Promise<string[]> {
  return String(await fixture.direct.call('CLIENT', 'LIST', 'TYPE', 'normal'))
    .split('\n')
    .filter((line) => line.includes('name=redis-edge-gateway'))
    .map((line) => /^id=(\d+)/.exec(line)?.[1] ?? '');
}

const TOO_DEEP = {
  error:
    'ERR the reply is nested more than 1000 levels deep, which this gateway does not pass on; the command did run',
  code: 'REPLY_TOO_DEEP',
};
const LOST = {
  error: 'backend connection lost; the command may or may not have run',
  code: 'BACKEND_CONNECTION_LOST',
};

describe('deeply nested replies', () => {
  it("pass on up to 1000 levels; deeper is the command's error (the script did run), not a 500", async () => {
    const ok = await readonlyPost(fixture.gw.url, '/', nested(1000));
    expect(ok.status).toBe(200);
    expect(depthOf((ok.body as { result: unknown }).result)).toBe(1000);

    // A command error, not a 5xx: every member would answer the same, and a failover client
    // counts a 5xx against each member it tries.
    for (const levels of [1001, 2000]) {
      const deep = await readonlyPost(fixture.gw.url, '/', nested(levels));
      expect(deep.status).toBe(400);
      expect(deep.headers.get(NOT_SENT_HEADER)).toBeNull();
      expect(deep.body).toEqual(TOO_DEEP);
    }
    // In a batch, in that command's place; the others keep their results.
    for (const [i, path] of ['/pipeline', '/multi-exec'].entries()) {
      const batch = await post(fixture.gw.url, path, [['INCR', 'deep-counter'], nested(2000)]);
      expect(batch.status).toBe(200);
      expect(batch.body).toEqual([{ result: i + 1 }, TOO_DEEP]);
    }
    expect(await fixture.direct.get('deep-counter')).toBe('2');
    expect(fixture.gw.logs.filter((line) => line.includes('unexpected'))).toEqual([]);
  });

  it('the deepest a script gets from Redis is an error; the gateway and its pool serve on', async () => {
    const before = await poolIds();
    expect(before).toHaveLength(4);
    // Redis cuts the table off near 8000 levels. Whether ioredis' parser copes with that
    // depends on how far V8 has optimized it (its stack frames shrink): then the gateway's
    // limit answers, otherwise the connection is dropped (the next test forces that case).
    const deep = await readonlyPost(fixture.gw.url, '/', nested(20_000));
    expect(deep.headers.get(NOT_SENT_HEADER)).toBeNull();
    expect([
      [400, TOO_DEEP],
      [502, LOST],
    ]).toContainEqual([deep.status, deep.body]);

    await waitFor(async () => (await poolIds()).length === 4, 3000, 'a full pool');
    const pings = await Promise.all(
      Array.from({ length: 16 }, () => post(fixture.gw.url, '/', ['PING'])),
    );
    expect(pings.map((r) => r.body)).toEqual(pings.map(() => ({ result: 'PONG' })));
    expect(fixture.gw.logs.filter((line) => line.includes('unexpected'))).toEqual([]);
  });

  it('through the failover client: the caller gets the error, and no member is counted as failing', async () => {
    const cluster = await startLocalCluster({ members: 2 });
    const switches: unknown[] = [];
    try {
      const redis = createFailoverRedis({
        members: cluster.members,
        health: { enabled: false },
        on: { switch: (e) => switches.push(e) },
      });
      const [, script] = nested(1500);
      for (let i = 0; i < 3; i++) {
        await expect(redis.evalRo(script!, [], [])).rejects.toThrow(
          /nested more than 1000 levels deep.*the command did run/,
        );
      }
      expect(switches).toEqual([]);
      expect(
        redis.snapshot().members.map((m) => [m.name, m.circuit, m.consecutiveFailures]),
      ).toEqual([
        ['a', 'closed', 0],
        ['b', 'closed', 0],
      ]);
    } finally {
      await cluster.stop();
    }
  });

  it("too deep for ioredis' parser: a 502, that connection is replaced, the rest serves on", async () => {
    const fake = await deepReplyServer();
    const logs: string[] = [];
    const gateway = await startGateway({
      redisUrl: `redis://127.0.0.1:${fake.port}`,
      token: TOKEN,
      log: (line) => logs.push(line),
    });
    try {
      await waitFor(() => fake.live() === 4, 3000, 'the pool to connect');
      const single = await post(gateway.url, '/', ['DEEP']);
      expect(single.status).toBe(502);
      expect(single.headers.get(NOT_SENT_HEADER)).toBeNull();
      expect(single.body).toEqual(LOST);
      expect(logs).toContain(
        `backend 127.0.0.1:${fake.port}: a reply could not be parsed (RangeError); reconnecting that connection`,
      );
      // The gateway closed exactly the connection that read it, and opened a new one.
      await waitFor(() => fake.live() === 4 && fake.accepted() === 5, 3000, 'a new connection');
      expect(fake.accepted() - fake.live()).toBe(1);
      const pings = await Promise.all(
        Array.from({ length: 16 }, () => post(gateway.url, '/', ['PING'])),
      );
      expect(pings.map((r) => r.body)).toEqual(pings.map(() => ({ result: 'PONG' })));

      const batch = await post(gateway.url, '/pipeline', [['PING'], ['DEEP']]);
      expect(batch.status).toBe(502);
      expect(batch.body).toEqual(LOST);
      await waitFor(() => fake.live() === 4 && fake.accepted() === 6, 3000, 'a new connection');
      expect((await post(gateway.url, '/', ['PING'])).body).toEqual({ result: 'PONG' });
    } finally {
      await gateway.close();
      await fake.close();
    }
  });
});

/**
 * A minimal RESP server: enough for ioredis' handshake and PING, and `DEEP`, answered with an
 * array nested a million levels deep, which no recursive parser reads. Redis itself never sends
 * one that deep, but how deep the parser gets depends on V8's optimization of it; this way the
 * test does not.
 */
async function deepReplyServer() {
  const DEEP = Buffer.from(`${'*1\r\n'.repeat(1_000_000)}*0\r\n`);
  const INFO = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = parseCommand(pending);
        if (!parsed) break;
        pending = pending.subarray(parsed.length);
        const name = parsed.args[0]?.toUpperCase();
        if (name === 'DEEP') socket.write(DEEP);
        else if (name === 'PING') socket.write('+PONG\r\n');
        else if (name === 'INFO') socket.write(`$${INFO.length}\r\n${INFO}\r\n`);
        else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    live: () => sockets.size,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One RESP command (an array of bulk strings) from the start of `buf`, if complete. */
function parseCommand(buf: Buffer): { args: string[]; length: number } | undefined {
  let pos = 0;
  const line = () => {
    const end = buf.indexOf('\r\n', pos);
    if (end < 0) return undefined;
    const text = buf.subarray(pos, end).toString();
    pos = end + 2;
    return text;
  };
  const head = line();
  if (head === undefined) return undefined;
  const args: string[] = [];
  for (let i = 0; i < Number(head.slice(1)); i++) {
    const size = line();
    if (size === undefined) return undefined;
    const n = Number(size.slice(1));
    if (buf.length < pos + n + 2) return undefined;
    args.push(buf.subarray(pos, pos + n).toString());
    pos += n + 2;
  }
  return { args, length: pos };
}
