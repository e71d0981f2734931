import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../src/gateway/cli-args.js';
import { post, TOKEN } from './helpers.js';
import { RedisProcess } from './redis-process.js';

/** The `redis-edge-gateway` CLI as a real process (through tsx, so no build is needed). */
const CLI = 'src/gateway/cli.ts';
const children = new Set<ChildProcess>();

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, stderr: () => stderr, exited };
}

/** The stdout lines of a process until it exits. */
function lines(child: ChildProcess): AsyncIterableIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

async function readyUrl(started: Run): Promise<string> {
  const stdout = lines(started.child);
  const first = await Promise.race([
    stdout.next(),
    started.exited.then((code) => {
      throw new Error(`CLI exited with ${code}: ${started.stderr()}`);
    }),
  ]);
  const match = /^redis-edge-gateway listening on (http:\/\/\S+)$/.exec(String(first.value));
  if (!match) throw new Error(`unexpected ready line: ${first.value}`);
  return match[1]!;
}

let redisServer: RedisProcess;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redisServer?.stop();
});

describe('redis-edge-gateway', () => {
  it('prints one ready line, serves, and exits 0 on SIGTERM', async () => {
    const started = run([
      '--redis-url',
      redisServer.url,
      '--port',
      '0',
      '--token',
      TOKEN,
      '--allow',
      'flushdb,FLUSHALL',
      '--cors-origin',
      'https://a.example',
      '--cors-origin',
      'https://b.example,https://c.example',
    ]);
    const url = await readyUrl(started);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await post(url, '/', ['SET', 'cli', 'works'])).body).toEqual({ result: 'OK' });
    expect((await post(url, '/', ['GET', 'cli'])).body).toEqual({ result: 'works' });
    expect((await post(url, '/', ['FLUSHDB'])).status).toBe(200);
    const cors = await fetch(`${url}/`, {
      method: 'OPTIONS',
      headers: { origin: 'https://c.example', 'access-control-request-method': 'POST' },
    });
    expect(cors.headers.get('access-control-allow-origin')).toBe('https://c.example');

    let extra = '';
    started.child.stdout?.on('data', (chunk: Buffer) => {
      extra += chunk.toString();
    });
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
    expect(extra).toBe('');
    expect(started.stderr()).toMatch(/stopped/);
    expect(started.stderr()).not.toContain(TOKEN);
  });

  it('takes secrets from the environment and enables the availability API', async () => {
    const started = run(['--redis-url', redisServer.url, '--port', '0', '--bdb-uid', '3'], {
      REDIS_EDGE_TOKEN: 'env-token',
      REDIS_EDGE_ADMIN_TOKEN: 'env-admin',
      REDIS_EDGE_AVAILABILITY_USER: 'u',
      REDIS_EDGE_AVAILABILITY_PASSWORD: 'p',
    });
    const url = await readyUrl(started);
    const ping = await post(url, '/', ['PING'], { authorization: 'Bearer env-token' });
    expect(ping.body).toEqual({ result: 'PONG' });
    const availability = await fetch(`${url}/v1/bdbs/3/availability`, {
      headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` },
    });
    expect(availability.status).toBe(200);
    const state = await fetch(`${url}/admin/state`, {
      headers: { authorization: 'Bearer env-admin' },
    });
    expect(state.status).toBe(200);
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
  });

  it('--help prints usage and exits 0', async () => {
    const started = run(['--help']);
    let out = '';
    started.child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    expect(await started.exited).toBe(0);
    expect(out).toMatch(/^Usage: redis-edge-gateway/);
    expect(out).toContain('--readonly-token');
    // As src/gateway/sse.ts does: only /monitor is cut off, subscriptions get backpressure.
    expect(out).toMatch(/--max-stream-buffer-bytes <n> +bytes queued for a slow \/monitor client/);
    expect(out).toMatch(/\/subscribe and \/psubscribe stop reading\s+Redis instead/);
  });

  // Spawning costs ~1 s each: a few representative cases here, the rest in-process below.
  it.each([
    [['--bogus'], /unknown flag --bogus/],
    [['--redis-url', 'redis://x', '--token', 't', '--port', 'abc'], /--port must be an integer/],
    [['--redis-url', 'redis://x'], /missing --token/],
    // Rejected by startGateway's validation and mapped back to the flag by the CLI.
    [['--redis-url', 'redis://x', '--token', 't', '--allow', 'MULTI'], /--allow cannot include/],
    // A token that lost its flag: named by position on stderr, never printed.
    [
      ['--redis-url', 'redis://x', '--token=', 'S3CRET-stderr-77'],
      /positional argument \(argument 4\)/,
    ],
  ])('%j exits 2 naming the flag', async (args, message) => {
    const started = run(args as string[]);
    expect(await started.exited).toBe(2);
    expect(started.stderr()).toMatch(message);
    expect(started.stderr()).toMatch(/--help/);
    expect(started.stderr()).not.toContain('S3CRET');
  });

  it('exits 1 when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const started = run(['--redis-url', redisServer.url, '--token', 't', '--port', String(port)]);
      expect(await started.exited).toBe(1);
      expect(started.stderr()).toMatch(/address already in use/);
    } finally {
      blocker.close();
    }
  });
});

describe('parseCli', () => {
  it.each([
    [['--redis-url', 'redis://x', '--token', 't', '--port', '70000'], /--port must be/],
    [['--token', 't'], /missing --redis-url/],
    [['--redis-url', 'redis://x', '--token', 't', '--bdb-uid', '2'], /--availability-user/],
    [['--redis-url', 'redis://x', '--token', 't', '--max-body-bytes', '0'], /--max-body-bytes/],
    [['--redis-url', 'redis://x', '--token', ''], /--token must not be empty/],
    [['--redis-url', 'redis://x', '--token'], /--token needs a value/],
    [['positional'], /^unexpected positional argument \(argument 1\)$/],
  ])('%j is a usage error naming the flag', (args, message) => {
    const parsed = parseCli(args, {});
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' && parsed.message).toMatch(message);
  });

  it('never echoes a secret in a usage error', () => {
    const parsed = parseCli(['--token', 'sekrit-value', '--bogus=sekrit-value'], {});
    expect(JSON.stringify(parsed)).not.toContain('sekrit-value');
  });

  // A value that lost its flag (`--token= S3CRET`, `--admin-token "" S3CRET`) is a positional:
  // the usage error names its place, never its text.
  it.each([
    [['--redis-url', 'redis://x', '--token=', 'S3CRET-positional-9a8b'], 4],
    [
      ['--redis-url', 'redis://x', '--token', 't', '--admin-token', '', 'S3CRET-positional-9a8b'],
      7,
    ],
    [['--redis-url', 'redis://x', '--', 'S3CRET-positional-9a8b'], 4],
  ])('never echoes a positional argument: %j', (args, position) => {
    const parsed = parseCli(args, {});
    expect(parsed).toEqual({
      kind: 'error',
      message: `unexpected positional argument (argument ${position})`,
    });
    expect(JSON.stringify(parsed)).not.toContain('S3CRET');
  });

  it('maps flags onto GatewayOptions and lets flags win over env', () => {
    const parsed = parseCli(
      [
        '--redis-url',
        'redis://h:1',
        '--token',
        'flag',
        '--host',
        '0.0.0.0',
        '--pool-size',
        '2',
        '--backend-timeout-ms',
        '500',
        '--max-stream-buffer-bytes',
        '65536',
        '--availability-user',
        'u',
        '--availability-port',
        '9443',
      ],
      { REDIS_EDGE_TOKEN: 'env', REDIS_EDGE_AVAILABILITY_PASSWORD: 'pw' },
    );
    expect(parsed).toEqual({
      kind: 'run',
      options: {
        redisUrl: 'redis://h:1',
        token: 'flag',
        host: '0.0.0.0',
        port: 8080,
        poolSize: 2,
        backendTimeoutMs: 500,
        maxStreamBufferBytes: 65536,
        availability: {
          username: 'u',
          password: 'pw',
          port: 9443,
          bdbUid: undefined,
          dnsName: undefined,
        },
      },
    });
  });
});
