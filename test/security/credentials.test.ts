import { describe, expect, it } from 'vitest';
import { AllMembersFailedError, createFailoverRedis, type MemberConfig } from '../../src/index.js';
import type { LocalCluster } from '../../src/testing/index.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { basic, type RecordedRequest, recordingFetch } from './helpers.js';

/**
 * Design 4.8: a member's token and sync token go only to that member's URL; availability
 * credentials only to the availability URL. Every request the client makes goes through a
 * recording `fetch`, and each one is checked against the member its URL belongs to.
 *
 * The local gateways serve the REST API and the availability API on the same origin, so the
 * path tells them apart: `/v1/...` is the availability API.
 */
let cluster: LocalCluster;
useOwnCluster((c) => {
  cluster = c;
});

function memberOf(url: URL): LocalMember {
  const m = cluster.members.find((x) => new URL(x.url).origin === url.origin);
  if (!m) throw new Error(`request to a URL of no member: ${url.origin}`);
  return m;
}
type LocalMember = LocalCluster['members'][number];

/** Checks every recorded request; returns what was seen, for "the test did exercise it" checks. */
function checkRouting(log: RecordedRequest[], members: readonly MemberConfig[] = cluster.members) {
  const syncTokensFrom = new Map<string, Set<string>>();
  const seen = { rest: new Set<string>(), availability: new Set<string>(), syncTokensSent: 0 };
  const allSecrets = cluster.members.flatMap((m) => [
    m.token,
    m.availability.password,
    basic(m.availability.username, m.availability.password),
  ]);
  for (const r of log) {
    const member = memberOf(r.url);
    const config = members.find((m) => m.name === member.name)!;
    const where = `${r.method} ${r.url.pathname} (member ${member.name})`;
    const authorization = r.headers.get('authorization');
    const syncToken = r.headers.get('upstash-sync-token');
    expect(r.url.searchParams.has('_token'), `${where}: token in the URL`).toBe(false);
    expect(r.url.username + r.url.password, `${where}: credentials in the URL`).toBe('');

    if (r.url.pathname.startsWith('/v1/')) {
      seen.availability.add(member.name);
      const a = config.availability!;
      expect(authorization, `${where}: availability credentials`).toBe(
        basic(a.username, a.password),
      );
      expect(syncToken, `${where}: sync token sent to the availability API`).toBeNull();
    } else {
      seen.rest.add(member.name);
      expect(authorization, `${where}: REST token`).toBe(`Bearer ${config.token}`);
      if (syncToken !== null && syncToken !== '') {
        seen.syncTokensSent += 1;
        const fromThisMember = syncTokensFrom.get(member.name) ?? new Set();
        expect(
          fromThisMember.has(syncToken),
          `${where}: sync token ${syncToken} was not issued by this member`,
        ).toBe(true);
      }
    }
    // No other credential anywhere in the request (headers, URL or body).
    const own = r.url.pathname.startsWith('/v1/')
      ? [basic(config.availability!.username, config.availability!.password)]
      : [config.token];
    const text = `${r.url.href}\n${[...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${r.body}`;
    for (const secret of allSecrets) {
      if (own.includes(secret)) continue;
      expect(text.includes(secret), `${where}: carries another credential`).toBe(false);
    }
    if (r.responseSyncToken && !r.url.pathname.startsWith('/v1/')) {
      const set = syncTokensFrom.get(member.name) ?? new Set<string>();
      set.add(r.responseSyncToken);
      syncTokensFrom.set(member.name, set);
    }
  }
  return seen;
}

describe('credentials stay with their own member', () => {
  it('commands, batches, hedged reads, health checks and a failover', async () => {
    const log: RecordedRequest[] = [];
    const redis = createFailoverRedis({
      members: cluster.members,
      fetch: recordingFetch(log),
      timeoutMs: 800,
      hedgeAfterMs: 1,
      gracePeriodMs: 300,
      health: { intervalMs: 100, probeTimeoutMs: 500 },
    });
    await redis.set('sec:cred', 'v');
    for (let i = 0; i < 5; i++) await redis.get('sec:cred');
    await redis.pipeline().set('sec:p', 1).get('sec:p').exec();
    await redis.multi().incr('sec:m').get('sec:m').exec();
    await redis.refreshAll();
    // Hedged reads send the same command to a second member: each with its own token.
    await Promise.all(Array.from({ length: 10 }, () => redis.get('sec:cred')));

    await cluster.kill('a');
    for (let i = 0; i < 5; i++) await redis.get('sec:cred');
    await redis.set('sec:after', 'b');
    await redis.refreshAll();
    await cluster.restart('a');
    // Back: its circuit's grace period over, a check closes it (a manual switch to a member
    // known to be out is refused).
    await new Promise((r) => setTimeout(r, 400));
    await redis.refreshAll();
    redis.setActiveMember('a');
    await redis.get('sec:cred');
    await redis.refreshAll();

    const seen = checkRouting(log);
    expect([...seen.rest].sort()).toEqual(['a', 'b', 'c']);
    expect([...seen.availability].sort()).toEqual(['a', 'b', 'c']);
    expect(seen.syncTokensSent).toBeGreaterThan(5);
  });

  it('a client added member and per-request scopes use that member token only', async () => {
    const [a, b, c] = cluster.members as [LocalMember, LocalMember, LocalMember];
    const log: RecordedRequest[] = [];
    const redis = createFailoverRedis({
      members: [a, b],
      fetch: recordingFetch(log),
      health: { enabled: false },
    });
    redis.addMember(c);
    redis.forceActiveMember('c', 60_000);
    for (let i = 0; i < 3; i++) await redis.scope().set(`sec:scope:${i}`, i);
    redis.setActiveMember('b');
    for (let i = 0; i < 3; i++) await redis.scope().get(`sec:scope:${i}`);
    const seen = checkRouting(log);
    expect([...seen.rest].sort()).toEqual(['b', 'c']);
  });

  it('a member moved to another URL by one client never gets another client token for the old URL', async () => {
    const [a, b, c] = cluster.members as [LocalMember, LocalMember, LocalMember];
    const readerLog: RecordedRequest[] = [];
    const admin = createFailoverRedis({ members: [a, b], health: { enabled: false } });
    // Same URLs: one shared health store; the reader holds its own tokens for them.
    const reader = createFailoverRedis({
      members: [a, b],
      fetch: recordingFetch(readerLog),
      health: { enabled: false },
    });
    // The operator moves "b" to another endpoint through the admin client only (here: c's).
    admin.removeMember('b');
    admin.addMember({ ...c, name: 'b' });
    admin.setActiveMember('b');
    expect(await admin.get('sec:moved')).toBeNull(); // admin reaches the new b
    await reader.set('sec:moved', 'reader');
    expect(await reader.get('sec:moved')).toBe('reader');
    // a client that tries one member only (requestFailover: false) takes the first it can reach
    const single = createFailoverRedis({
      members: [a, b],
      fetch: recordingFetch(readerLog),
      health: { enabled: false },
      requestFailover: false,
    });
    expect(await single.get('sec:moved')).toBe('reader');
    // The reader has no token for b's new URL: b is skipped, a serves, and b's old token stays home.
    const cOrigin = new URL(c.url).origin;
    expect(readerLog.some((r) => r.url.origin === cOrigin)).toBe(false);
    expect(checkRouting(readerLog).rest).toEqual(new Set(['a']));

    // Even a lock on the moved member does not strand the reader, which cannot reach it: its
    // commands go to the members it holds tokens for, and the error says why b was not tried.
    admin.forceActiveMember('b', 60_000);
    expect(await reader.get('sec:moved')).toBe('reader');
    expect(readerLog.some((r) => r.url.origin === cOrigin)).toBe(false);
    // the same for the client that tries one member only
    expect(await single.get('sec:moved')).toBe('reader');
    expect(readerLog.some((r) => r.url.origin === cOrigin)).toBe(false);
    await cluster.kill('a');
    const error = await reader.get('sec:moved').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllMembersFailedError);
    expect((error as AllMembersFailedError).failures).toContainEqual({
      member: 'b',
      kind: 'skipped',
      message: 'this client has no token for it',
    });
    await cluster.restart('a');
  });

  it('two clients with different tokens for the same URLs never borrow each other tokens', async () => {
    const [a, b] = cluster.members as [LocalMember, LocalMember];
    const goodLog: RecordedRequest[] = [];
    const badLog: RecordedRequest[] = [];
    const good = createFailoverRedis({
      members: [a, b],
      fetch: recordingFetch(goodLog),
      health: { enabled: false },
    });
    const wrongTokens = [
      { ...a, token: 'wrong-token-for-a-000000' },
      { ...b, token: 'wrong-token-for-b-000000' },
    ];
    // Same member list, so both clients share one health store in this isolate.
    const bad = createFailoverRedis({
      members: wrongTokens,
      fetch: recordingFetch(badLog),
      health: { enabled: false },
    });
    await good.set('sec:two', 'x');
    await expect(bad.get('sec:two')).rejects.toThrow(/rejected the token/);
    await good.get('sec:two');
    checkRouting(goodLog, [a, b]);
    checkRouting(badLog, wrongTokens);
    expect(goodLog.length).toBeGreaterThan(0);
    expect(badLog.length).toBeGreaterThan(0);
  });
});
