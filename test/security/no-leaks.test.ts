import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  createFailoverRedis,
  type FailoverOptions,
  type FailoverRedis,
  kvHealthCache,
  resetHealthStores,
} from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/testing/index.js';
import { basic, deepText, leaks, type RecordedRequest, recordingFetch } from './helpers.js';

/**
 * Design 4.8: no token, sync token, password or Basic credential in any error (cause chain
 * included), event, log line (the gateways' and the console) or snapshot, collected while
 * failing over, killing and freezing members, and with wrong tokens and wrong availability
 * passwords. Wrong credentials are secrets too: a typo'd token is usually one character off
 * the real one.
 */
let cluster: LocalCluster;
const gatewayLog: string[] = [];
const consoleLines: string[] = [];
const collected: unknown[] = [];
const secrets: Record<string, string> = {};

beforeAll(async () => {
  cluster = await startLocalCluster({
    members: 3,
    gateway: { log: (line, member) => gatewayLog.push(`${member}: ${line}`) },
  });
  for (const m of cluster.members) {
    secrets[`token of ${m.name}`] = m.token;
    secrets[`availability password of ${m.name}`] = m.availability.password;
    secrets[`availability Basic of ${m.name}`] = basic(
      m.availability.username,
      m.availability.password,
    ).slice('Basic '.length);
  }
  secrets['admin token'] = cluster.adminToken;
});
afterAll(async () => {
  await cluster?.stop();
});
beforeEach(() => {
  resetHealthStores();
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map((a) => deepText(a)).join(' '));
    });
  }
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const m of cluster.members) {
    await cluster.resume(m.name).catch(() => {});
    await cluster.restart(m.name).catch(() => {});
  }
});

/** A client whose every event, error and snapshot is collected for the scan. */
function client(options: Partial<FailoverOptions> & Pick<FailoverOptions, 'members'>) {
  const requests: RecordedRequest[] = [];
  const redis = createFailoverRedis({
    timeoutMs: 400,
    deadlineMs: 3000,
    gracePeriodMs: 1000,
    health: { intervalMs: 100, probeTimeoutMs: 300 },
    fetch: recordingFetch(requests),
    on: {
      switch: (e) => collected.push(e),
      health: (e) => collected.push(e),
      failure: (e) => collected.push(e),
    },
    ...options,
  });
  return { redis, requests };
}

/** Runs `fn`; a rejection is collected (it is what a caller would log), never rethrown. */
async function attempt(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    collected.push(error);
  }
}

function snapshot(redis: FailoverRedis): void {
  const snap = redis.snapshot();
  collected.push(snap, JSON.stringify(snap));
}

/** Sync tokens the members issued during a test are secrets too (read-your-writes state). */
function addSyncTokens(requests: RecordedRequest[]): void {
  for (const r of requests) {
    if (r.responseSyncToken) secrets[`sync token ${r.responseSyncToken}`] = r.responseSyncToken;
  }
}

describe('no secret in errors, events, logs or snapshots', () => {
  it('failovers: kill -9, SIGSTOP (ambiguous write), every member down', async () => {
    const { redis, requests } = client({ members: cluster.members });
    await redis.set('leak:k', 'v');
    await redis.incr('leak:n');
    await redis.refreshAll();
    snapshot(redis);
    await cluster.kill('a');
    for (let i = 0; i < 5; i++) await attempt(() => redis.get('leak:k'));
    await cluster.pause('b');
    await attempt(() => redis.incr('leak:n'));
    await attempt(() => redis.get('leak:k'));
    await redis.refreshAll();
    snapshot(redis);
    await cluster.kill('c');
    await attempt(() => redis.get('leak:k'));
    await attempt(() => redis.pipeline().get('leak:k').incr('leak:n').exec());
    snapshot(redis);
    addSyncTokens(requests);
    expect(collected.some((c) => c instanceof Error)).toBe(true);
    expect(leaks(deepText(collected), secrets)).toEqual([]);
  });

  it('wrong REST tokens (401) and wrong availability passwords (401)', async () => {
    const wrong = cluster.members.map((m, i) => ({
      ...m,
      // One character off the real secrets, as a typo would be.
      token: `${m.token.slice(0, -1)}${m.token.endsWith('x') ? 'y' : 'x'}`,
      availability: { ...m.availability, password: `${m.availability.password}!${i}` },
    }));
    for (const m of wrong) {
      secrets[`wrong token for ${m.name}`] = m.token;
      secrets[`wrong availability password for ${m.name}`] = m.availability.password;
    }
    const { redis } = client({ members: wrong });
    await attempt(() => redis.get('leak:k'));
    await attempt(() => redis.set('leak:k', 'x'));
    await attempt(() => redis.multi().incr('leak:n').exec());
    await redis.refreshAll();
    snapshot(redis);

    // Right tokens, wrong availability passwords: health falls back to PING and says why.
    resetHealthStores();
    const mixed = cluster.members.map((m, i) => ({ ...m, availability: wrong[i]!.availability }));
    const second = client({ members: mixed });
    await second.redis.refreshAll();
    await second.redis.get('leak:k');
    snapshot(second.redis);
    expect(second.redis.snapshot().members.some((m) => m.configProblem)).toBe(true);

    expect(collected.some((c) => c instanceof Error && c.name === 'MemberConfigError')).toBe(true);
    expect(leaks(deepText(collected), secrets)).toEqual([]);
  });

  it('an unreachable member and an invalid member URL', async () => {
    const { redis } = client({
      members: [
        { name: 'gone', url: 'http://127.0.0.1:1', token: 'gone-token-secret-0001', weight: 2 },
        cluster.members[1]!,
      ],
    });
    secrets['token of an unreachable member'] = 'gone-token-secret-0001';
    await attempt(() => redis.get('leak:k'));
    await redis.refreshAll();
    snapshot(redis);
    // Config errors must name the field, not echo the secret.
    try {
      createFailoverRedis({
        members: [{ name: 'x', url: 'not a url gone-token-secret-0001', token: 't' }],
      });
    } catch (error) {
      collected.push(error);
    }
    try {
      createFailoverRedis({
        members: [
          { name: 'x', url: 'https://user:gone-token-secret-0001@example.com', token: 't' },
        ],
      });
    } catch (error) {
      collected.push(error);
    }
    expect(leaks(deepText(collected), secrets)).toEqual([]);
  });

  it('the gateways log no credential, whatever clients send', async () => {
    const a = cluster.members[0]!;
    const attempts: Array<[string, RequestInit]> = [
      [
        a.url,
        {
          method: 'POST',
          headers: { authorization: 'Bearer wrong-secret-0002' },
          body: '["GET","k"]',
        },
      ],
      [`${a.url}/?_token=wrong-secret-0003`, { method: 'POST', body: '["GET","k"]' }],
      [`${a.url}/get/k?_token=${a.token}`, { method: 'GET' }],
      [
        `${a.url}/pipeline`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${a.token}` },
          body: '[["CONFIG","GET","*"]]',
        },
      ],
      [
        `${a.url}/v1/bdbs/1/availability`,
        { headers: { authorization: basic('admin@local', 'wrong-secret-0004') } },
      ],
      [`${a.url}/admin/state`, { headers: { authorization: 'Bearer wrong-secret-0005' } }],
      [
        a.url,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${a.token}` },
          body: '{not json wrong-secret-0006',
        },
      ],
    ];
    for (const [url, init] of attempts) {
      const response = await fetch(url, init);
      const text = await response.text();
      collected.push(`${response.status} ${text}`);
    }
    for (let i = 2; i <= 6; i++) secrets[`wrong secret ${i}`] = `wrong-secret-000${i}`;
    await cluster.killBackend('a');
    await fetch(a.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}` },
      body: '["GET","k"]',
    });
    await cluster.restart('a');
    expect(gatewayLog.length).toBeGreaterThan(0);
    expect(leaks(gatewayLog.join('\n'), secrets)).toEqual([]);
    expect(leaks(deepText(collected), secrets)).toEqual([]);
  });

  it('a member URL carrying ?_token= is refused, or the token kept out of snapshots and shared health', async () => {
    const a = cluster.members[0]!;
    const kv = new Map<string, string>();
    const cache = kvHealthCache({
      get: async (key) => (kv.has(key) ? JSON.parse(kv.get(key)!) : null),
      put: async (key, value) => {
        kv.set(key, value);
      },
    });
    let redis: FailoverRedis;
    try {
      redis = createFailoverRedis({
        members: [{ name: 'a', url: `${a.url}/?_token=${a.token}`, token: a.token }],
        health: { cache },
      });
    } catch (error) {
      // Refusing it, like credentials in the user-info part, is fine, without echoing it.
      expect(error).toBeInstanceOf(ConfigError);
      expect(leaks(deepText(error), secrets)).toEqual([]);
      return;
    }
    await redis.get('leak:k');
    await redis.refreshAll();
    const exposed = `${JSON.stringify(redis.snapshot())}\n${[...kv.values()].join('\n')}`;
    expect(leaks(exposed, { [`token of ${a.name} (in the member URL)`]: a.token })).toEqual([]);
  });

  it('a custom probe whose errors quote the member credentials it closes over', async () => {
    const byName = new Map(cluster.members.map((m) => [m.name, m]));
    const kv = new Map<string, string>();
    const cache = kvHealthCache({
      get: async (key) => (kv.has(key) ? JSON.parse(kv.get(key)!) : null),
      put: async (key, value) => {
        kv.set(key, value);
      },
    });
    const { redis } = client({
      members: cluster.members,
      health: {
        cache,
        probe: async (m) => {
          const member = byName.get(m.name)!;
          if (m.name === 'a') {
            return {
              healthy: false,
              reason: `403 for Bearer ${member.token}`,
              configProblem: `the API refused Bearer ${member.token}`,
            };
          }
          throw new Error(
            `GET ${m.url} as ${member.availability.username}:${member.availability.password} with Bearer ${member.token} failed`,
          );
        },
      },
    });
    await redis.refreshAll();
    snapshot(redis);
    collected.push([...kv.values()].join('\n'));
    const members = redis.snapshot().members;
    expect(members.find((m) => m.name === 'a')!.configProblem).toMatch(/refused Bearer \*\*\*/);
    expect(members.filter((m) => m.status === 'unhealthy').map((m) => m.name)).toEqual(['b', 'c']);
    expect(leaks(deepText(collected), secrets)).toEqual([]);
  });

  it('a member and an availability API that quote the request credentials back', async () => {
    // Both answer with whatever Authorization they were sent: the REST side in a command error,
    // the availability side in its error_code (503: down; then 401: misconfigured).
    let availabilityStatus = 503;
    const echo = createServer((req, res) => {
      const quoted = `invalid auth ${req.headers.authorization}`;
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/v1/')) {
        res.statusCode = availabilityStatus;
        res.end(JSON.stringify({ error_code: quoted, description: quoted }));
      } else {
        res.end(JSON.stringify({ error: `ERR ${quoted}` }));
      }
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    try {
      const a = cluster.members[0]!;
      const member = { ...a, url, availability: { ...a.availability, url } };
      const { redis } = client({ members: [member], health: { probe: 'ping' } });
      await attempt(() => redis.get('k'));
      await attempt(() => redis.pipeline().get('k').set('k', 'v').exec());
      await redis.refreshAll();
      snapshot(redis);
      resetHealthStores();
      const { redis: checked } = client({ members: [member] });
      await checked.refreshAll();
      snapshot(checked);
      expect(checked.snapshot().members[0]).toMatchObject({ status: 'unhealthy' });
      availabilityStatus = 401;
      resetHealthStores();
      const { redis: refused } = client({ members: [member] });
      await refused.refreshAll();
      snapshot(refused);
      expect(refused.snapshot().members[0]!.configProblem).toContain('***');
      // The command error still reaches the caller, its quote of the token masked.
      expect(deepText(collected)).toContain('ERR invalid auth Bearer ***');
      expect(leaks(deepText(collected), secrets)).toEqual([]);
    } finally {
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('the scan itself finds a secret hidden in an error cause (self-check)', () => {
    const token = cluster.members[0]!.token;
    const error = new Error('outer', { cause: new Error(`inner ${encodeURIComponent(token)}`) });
    expect(leaks(deepText([{ nested: error }]), secrets)).toContain('token of a');
  });

  it('nothing was written to the console', () => {
    expect(leaks(consoleLines.join('\n'), secrets)).toEqual([]);
  });
});
