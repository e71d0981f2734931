import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/gateway/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';

/**
 * Hostile bodies end as a 4xx, never as a crash or a 500, and the gateway keeps serving:
 * oversized (declared or streamed without a length), deeply nested JSON (arrays and objects,
 * alone and inside batches), wrong shapes, invalid JSON and UTF-8, huge URLs.
 */
const TOKEN = 'body-limits-token-0123456789abc';
const LIMIT = 64 * 1024;
let cluster: LocalCluster;
let small: RunningGateway;
const log: string[] = [];

beforeAll(async () => {
  cluster = await startLocalCluster({ members: 1, gateway: { log: (line) => log.push(line) } });
  small = await startGateway({
    redisUrl: cluster.redisUrls!.a!,
    token: TOKEN,
    maxBodyBytes: LIMIT,
    log: (line) => log.push(line),
  });
});
afterAll(async () => {
  await small?.close();
  await cluster?.stop();
});

async function post(
  base: string,
  token: string,
  path: string,
  body: string | Uint8Array<ArrayBuffer>,
): Promise<[number, string]> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  return [response.status, await response.text()];
}

async function expectServing(base: string, token: string): Promise<void> {
  const [status, text] = await post(base, token, '/', '["PING"]');
  expect(status).toBe(200);
  expect(JSON.parse(text)).toEqual({ result: 'PONG' });
}

/** Streams `total` bytes with chunked encoding (no content-length); resolves with the status. */
function streamChunked(base: string, path: string, total: number): Promise<number> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    // The gateway may close the socket once it has refused the body: that is the point.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    const chunk = Buffer.alloc(16 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

describe('oversized bodies', () => {
  it('a declared length over the limit gets 413 on every endpoint', async () => {
    const big = `["SET","k","${'x'.repeat(LIMIT)}"]`;
    for (const path of ['/', '/pipeline', '/multi-exec', '/set/k']) {
      const body = path === '/pipeline' || path === '/multi-exec' ? `[${big}]` : big;
      const [status, text] = await post(small.url, TOKEN, path, body);
      expect(status, path).toBe(413);
      expect(JSON.parse(text)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    }
    await expectServing(small.url, TOKEN);
  });

  it('a chunked body without a length is cut off at the limit', async () => {
    expect(await streamChunked(small.url, '/', LIMIT * 4)).toBe(413);
    expect(await streamChunked(small.url, '/pipeline', 8 * 1024 * 1024)).toBe(413);
    await expectServing(small.url, TOKEN);
  });

  it('the default limit (10 MiB) holds too', async () => {
    const m = cluster.members[0]!;
    const body = new Uint8Array(10 * 1024 * 1024 + 1).fill(0x20);
    const [status] = await post(m.url, m.token, '/', body);
    expect(status).toBe(413);
    await expectServing(m.url, m.token);
  });
});

describe('deeply nested and malformed bodies', () => {
  const m = () => cluster.members[0]!;
  const deepArray = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

  it('deep nesting is refused with 400, alone and inside batches', async () => {
    const bodies: Array<[string, string]> = [];
    for (const depth of [1_000, 100_000, 1_000_000]) {
      bodies.push(['/', deepArray(depth)]);
      bodies.push(['/', `["SET","k",${deepArray(depth)}]`]);
      bodies.push(['/', `["SET","k",${deepObject(Math.min(depth, 200_000))}]`]);
      bodies.push(['/pipeline', `[["GET","k"],["SET","k",${deepArray(depth)}]]`]);
      bodies.push(['/multi-exec', `[${deepArray(depth)}]`]);
    }
    for (const [path, body] of bodies) {
      const [status, text] = await post(m().url, m().token, path, body);
      expect(status, `${path} ${body.slice(0, 30)}… (${body.length} B)`).toBe(400);
      expect(text.length, 'the answer does not echo the body').toBeLessThan(500);
    }
    await expectServing(m().url, m().token);
  });

  it('wrong shapes, invalid JSON and invalid UTF-8 are refused with 400', async () => {
    const bodies: Array<[string, string | Uint8Array<ArrayBuffer>]> = [
      ['/', ''],
      ['/', '{}'],
      ['/', '[]'],
      ['/', '"GET"'],
      ['/', '[1,2]'],
      ['/', '[null]'],
      ['/', '["GET",{"toString":"x"}]'],
      ['/', '["GET",null]'],
      ['/', '["GET","k"'],
      ['/', '["GET","k"]]'],
      ['/', new Uint8Array([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d])],
      ['/pipeline', '[]'],
      ['/pipeline', '[[]]'],
      ['/pipeline', '["GET","k"]'],
      ['/pipeline', '[["GET","k"],{}]'],
      ['/multi-exec', '{"0":["GET","k"]}'],
      ['/', `["${'\\u0000'.repeat(10)}"]`],
    ];
    for (const [path, body] of bodies) {
      const [status, text] = await post(m().url, m().token, path, body);
      expect(status, `${path} ${String(body).slice(0, 40)}`).toBeGreaterThanOrEqual(400);
      expect(status, `${path} ${String(body).slice(0, 40)}: ${text}`).toBeLessThan(500);
    }
    await expectServing(m().url, m().token);
  });

  it('a huge path-form URL is refused without taking the gateway down', async () => {
    const response = await fetch(`${m().url}/get/${'k'.repeat(64 * 1024)}`, {
      headers: { authorization: `Bearer ${m().token}` },
    }).catch((error: unknown) => error);
    if (response instanceof Response) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
    }
    await expectServing(m().url, m().token);
  });

  it('none of it was an unexpected error inside the gateway', () => {
    expect(log.filter((line) => /unexpected error/i.test(line))).toEqual([]);
  });
});
