import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type LocalCluster, type LocalMember, startLocalCluster } from '../../src/testing/index.js';
import { redisProcessId } from '../../src/testing/redis-process.js';

// Everything here is observed from outside, the way a client would see it: the REST API with
// plain fetch, raw RESP over TCP to redis-server, and the availability API with Basic auth.

function rest(member: LocalMember, command: unknown[], timeoutMs = 2000): Promise<Response> {
  return fetch(member.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${member.token}` },
    body: JSON.stringify(command),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

async function restPing(member: LocalMember): Promise<unknown> {
  const response = await rest(member, ['PING']);
  expect(response.status).toBe(200);
  return ((await response.json()) as { result: unknown }).result;
}

async function availability(member: LocalMember, toleranceMs = 100) {
  const { url, bdbUid, username, password } = member.availability;
  const response = await fetch(
    `${url}/v1/bdbs/${bdbUid}/availability?extend_check=lag&availability_lag_tolerance_ms=${toleranceMs}`,
    {
      headers: {
        authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
        accept: 'application/json',
      },
      signal: AbortSignal.timeout(2000),
    },
  );
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : null,
  };
}

type TcpOutcome = 'PONG' | 'refused' | 'timeout' | 'other';

/** A RESP PING straight to a TCP port. */
function tcpPing(port: number, timeoutMs = 300): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const finish = (outcome: TcpOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(String(data).startsWith('+PONG') ? 'PONG' : 'other'));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(error.code === 'ECONNREFUSED' ? 'refused' : 'other'),
    );
  });
}

const portOf = (url: string) => Number(new URL(url).port);

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  let value = await probe();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await probe();
  }
  return value;
}

describe('startLocalCluster (destructive: its own cluster)', () => {
  let cluster: LocalCluster;
  const member = (name: string) => cluster.members.find((m) => m.name === name)!;
  const redisPort = (name: string) => portOf(cluster.redisUrls![name]!);

  beforeAll(async () => {
    cluster = await startLocalCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts a, b, c with descending weights, distinct secrets, and every surface answering', async () => {
    expect(cluster.members.map((m) => [m.name, m.weight])).toEqual([
      ['a', 3],
      ['b', 2],
      ['c', 1],
    ]);
    expect(new Set(cluster.members.map((m) => m.token)).size).toBe(3);
    expect(new Set(cluster.members.map((m) => m.url)).size).toBe(3);
    for (const m of cluster.members) {
      expect(m.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(m.availability).toMatchObject({ bdbUid: 1, username: 'admin@local' });
      expect(await restPing(m)).toBe('PONG');
      expect(await tcpPing(redisPort(m.name))).toBe('PONG');
      expect((await availability(m)).status).toBe(200);
    }
  });

  it('kill: the URL refuses connections, redis is gone; restart brings both back empty, same URL', async () => {
    const a = member('a');
    const before = a.url;
    expect((await (await rest(a, ['SET', 'k', 'v'])).json()) as unknown).toEqual({ result: 'OK' });

    await cluster.kill('a');
    // fetch's first attempt may land on a pooled keep-alive socket the gateway just closed
    // ("other side closed"); once that is gone, new connections are refused.
    const failure = () =>
      rest(a, ['PING']).then(
        () => 'answered',
        (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.name,
      );
    expect(await eventually(failure, (code) => code === 'ECONNREFUSED', 2000)).toBe('ECONNREFUSED');
    expect(await tcpPing(portOf(a.url))).toBe('refused');
    expect(await tcpPing(redisPort('a'))).toBe('refused');
    // The other members are untouched.
    expect(await restPing(member('b'))).toBe('PONG');

    await cluster.restart('a');
    expect(a.url).toBe(before);
    expect(await restPing(a)).toBe('PONG');
    expect(await tcpPing(redisPort('a'))).toBe('PONG');
    // No persistence: a restarted member comes back empty.
    expect(await (await rest(a, ['GET', 'k'])).json()).toEqual({ result: null });
  });

  it('killBackend: the gateway answers 503 "not sent"; restart reconnects it', async () => {
    const b = member('b');
    await cluster.killBackend('b');
    expect(await tcpPing(redisPort('b'))).toBe('refused');
    const response = await eventually(
      () => rest(b, ['PING']),
      (r) => r.status === 503,
    );
    expect(response.status).toBe(503);
    expect(response.headers.get('x-redis-edge-sent')).toBe('0');

    await cluster.restart('b');
    expect(await restPing(b)).toBe('PONG');
  });

  it('pause: commands hang (REST and raw TCP); resume: they answer again', async () => {
    const c = member('c');
    await cluster.pause('c');
    const hung = await rest(c, ['PING'], 500).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    expect(hung).toBe('TimeoutError');
    expect(await tcpPing(redisPort('c'), 300)).toBe('timeout');

    await cluster.resume('c');
    expect(await restPing(c)).toBe('PONG');
    expect(await tcpPing(redisPort('c'))).toBe('PONG');
    // Resuming twice is harmless.
    await cluster.resume('c');
  });

  it('setAvailability forces the availability answer; null reports the real state again', async () => {
    const a = member('a');
    await cluster.setAvailability('a', {
      status: 503,
      errorCode: 'no_quorum',
      description: 'forced by test',
    });
    const forced = await availability(a);
    expect(forced.status).toBe(503);
    expect(forced.body?.error_code).toBe('no_quorum');
    // Only the availability answer is forced: the data path still works.
    expect(await restPing(a)).toBe('PONG');

    await cluster.setAvailability('a', null);
    expect((await availability(a)).status).toBe(200);
  });

  it('setLag beyond the tolerance makes the lag-aware check fail; 0 restores it', async () => {
    const b = member('b');
    await cluster.setLag('b', 5000);
    expect((await availability(b, 100)).status).toBe(503);
    await cluster.setLag('b', 0);
    expect((await availability(b, 100)).status).toBe(200);
  });

  it('rejects with clear errors: unknown member, killed backend, killed gateway, bad lag', async () => {
    await expect(cluster.kill('zz')).rejects.toThrow(/unknown member "zz" \(members: a, b, c\)/);
    await expect(cluster.setLag('a', -1)).rejects.toThrow(/ms must be a number >= 0/);
    await cluster.kill('c');
    await expect(cluster.pause('c')).rejects.toThrow(/redis-server is not running/);
    await expect(cluster.setLag('c', 10)).rejects.toThrow(/gateway is not running/);
    await cluster.restart('c');
    expect(await restPing(member('c'))).toBe('PONG');
  });
});

describe('stop and process death leave nothing running', () => {
  it('stop() is idempotent, closes everything, and refuses later operations', async () => {
    const cluster = await startLocalCluster({ members: 2 });
    await cluster.pause('b'); // stop() must also end a SIGSTOPped redis-server.
    const ports = [
      ...cluster.members.map((m) => portOf(m.url)),
      ...Object.values(cluster.redisUrls!).map(portOf),
    ];
    await Promise.all([cluster.stop(), cluster.stop()]);
    await cluster.stop();
    for (const port of ports) expect(await tcpPing(port)).toBe('refused');
    await expect(cluster.restart('a')).rejects.toThrow(/stopped/);
  });

  const fixture = fileURLToPath(new URL('./fixtures/cluster-child.ts', import.meta.url));

  it.each([
    ['SIGKILL', 'wait'],
    ['SIGTERM', 'wait'],
    ['an uncaught exception', 'throw'],
  ] as const)('a parent killed by %s takes its redis-servers along', async (how, mode) => {
    // node --import tsx (not the tsx CLI, which would put a second process in between).
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      child.once('exit', () => reject(new Error(`fixture exited early:\n${stderr}`)));
    });
    const { redisUrls } = JSON.parse(line) as { redisUrls: Record<string, string> };
    const ports = Object.values(redisUrls).map(portOf);
    for (const port of ports) expect(await tcpPing(port)).toBe('PONG');

    if (how !== 'an uncaught exception') child.kill(how);
    await exited;
    for (const port of ports) {
      expect(
        await eventually(
          () => tcpPing(port),
          (o) => o === 'refused',
          5000,
        ),
      ).toBe('refused');
    }
  });

  it("an app's own process.once('SIGINT') handler shuts down gracefully, undisturbed", async () => {
    const onceFixture = fileURLToPath(new URL('./fixtures/once-sigint-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', onceFixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
      });
      child.once('exit', () => reject(new Error(`fixture exited early:\n${stderr}`)));
    });
    const { redisUrls } = JSON.parse(line) as { redisUrls: Record<string, string> };
    const ports = Object.values(redisUrls).map(portOf);
    const pids = await Promise.all(ports.map((port) => redisProcessId(port, 2000)));
    expect(pids.every((pid) => typeof pid === 'number')).toBe(true);

    child.kill('SIGINT');
    expect(await exited, stderr).toEqual([0, null]);
    expect(stdout.split('\n')).toContain('stopped');
    for (const port of ports) expect(await tcpPing(port)).toBe('refused');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (const pid of pids as number[]) {
      expect(
        await eventually(
          async () => alive(pid),
          (a) => !a,
          5000,
        ),
      ).toBe(false);
    }
  });
});

describe('global setup', () => {
  it('injects the shared cluster, and it is reachable', async () => {
    const shared = inject('cluster');
    expect(shared.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(shared.adminToken).toEqual(expect.any(String));
    for (const m of shared.members) {
      expect(await restPing(m)).toBe('PONG');
      expect(await tcpPing(portOf(shared.redisUrls[m.name]!))).toBe('PONG');
    }
  });
});
