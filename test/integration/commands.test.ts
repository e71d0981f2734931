import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis';
import { describe, expect, inject, it } from 'vitest';
import { resolveOptions } from '../../src/config.js';
import { healthStoreFor } from '../../src/health/store.js';
import { createFailoverRedis, FailoverError } from '../../src/index.js';

/**
 * The failover client must be a drop-in `Redis`: the same command sequence gives the same
 * results (and the same errors) through it as through a plain client on one member.
 */
const { members } = inject('cluster');
const a = members[0]!;
const plain = new Redis({ url: a.url, token: a.token });
const failover = createFailoverRedis({ members });

type Step = (r: Redis, k: (name: string) => string) => Promise<unknown>;

const sample: Array<[string, Step]> = [
  ['set/get', async (r, k) => [await r.set(k('s'), 'v'), await r.get(k('s'))]],
  ['set ex / ttl', async (r, k) => [await r.set(k('t'), 1, { ex: 100 }), await r.ttl(k('t'))]],
  ['json value', async (r, k) => [await r.set(k('j'), { x: 1, y: [1, 2] }), await r.get(k('j'))]],
  ['base64-looking strings', async (r, k) => [await r.set(k('b'), 'PONG'), await r.get(k('b'))]],
  ['unicode', async (r, k) => [await r.set(k('u'), 'héllo ✓ 🚀'), await r.get(k('u'))]],
  [
    'incr/decr',
    async (r, k) => [await r.incr(k('n')), await r.incrby(k('n'), 5), await r.decr(k('n'))],
  ],
  [
    'mset/mget',
    async (r, k) => [
      await r.mset({ [k('m1')]: 'x', [k('m2')]: 2 }),
      await r.mget(k('m1'), k('m2'), k('none')),
    ],
  ],
  [
    'append/strlen',
    async (r, k) => [
      await r.append(k('ap'), 'ab'),
      await r.append(k('ap'), 'cd'),
      await r.strlen(k('ap')),
    ],
  ],
  [
    'hash',
    async (r, k) => [
      await r.hset(k('h'), { f1: 'a', f2: 2 }),
      await r.hget(k('h'), 'f1'),
      await r.hgetall(k('h')),
      await r.hincrby(k('h'), 'f2', 3),
      await r.hdel(k('h'), 'f1'),
    ],
  ],
  [
    'list',
    async (r, k) => [
      await r.rpush(k('l'), 'a', 'b', 'c'),
      await r.lpush(k('l'), 'z'),
      await r.lrange(k('l'), 0, -1),
      await r.lpop(k('l')),
      await r.llen(k('l')),
    ],
  ],
  [
    'set',
    async (r, k) => [
      await r.sadd(k('st'), 'a', 'b'),
      await r.sismember(k('st'), 'a'),
      (await r.smembers(k('st'))).sort(),
      await r.scard(k('st')),
    ],
  ],
  [
    'zset',
    async (r, k) => [
      await r.zadd(k('z'), { score: 1, member: 'one' }, { score: 2, member: 'two' }),
      await r.zrange(k('z'), 0, -1, { withScores: true }),
      await r.zincrby(k('z'), 5, 'one'),
      await r.zscore(k('z'), 'one'),
    ],
  ],
  [
    'stream',
    async (r, k) => {
      await r.xadd(k('x'), '1-1', { f: 'v' });
      return [await r.xlen(k('x')), await r.xrange(k('x'), '-', '+')];
    },
  ],
  [
    'bitmap',
    async (r, k) => [
      await r.setbit(k('bit'), 7, 1),
      await r.getbit(k('bit'), 7),
      await r.bitcount(k('bit'), 0, -1),
    ],
  ],
  [
    'hyperloglog',
    async (r, k) => [await r.pfadd(k('hll'), 'a', 'b', 'c'), await r.pfcount(k('hll'))],
  ],
  [
    'geo',
    async (r, k) => [
      await r.geoadd(
        k('g'),
        { longitude: 13.361389, latitude: 38.115556, member: 'Palermo' },
        { longitude: 15.087269, latitude: 37.502669, member: 'Catania' },
      ),
      await r.geodist(k('g'), 'Palermo', 'Catania', 'KM'),
    ],
  ],
  [
    'keys/expire/exists',
    async (r, k) => [
      await r.set(k('e'), 1),
      await r.expire(k('e'), 50),
      await r.exists(k('e'), k('none')),
      await r.persist(k('e')),
      await r.del(k('e')),
    ],
  ],
  ['eval', async (r) => [await r.eval('return {KEYS[1], ARGV[1]}', ['k'], ['v'])]],
  [
    'script with NOSCRIPT fallback',
    async (r, k) => {
      const script = r.createScript<number>(
        `return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${Math.random()}`,
      );
      return [await script.exec([k('sc')], ['2']), await script.exec([k('sc')], ['3'])];
    },
  ],
  ['pipeline', async (r, k) => r.pipeline().set(k('p'), 1).incr(k('p')).get(k('p')).exec()],
  ['multi', async (r, k) => r.multi().set(k('mx'), 'a').append(k('mx'), 'b').get(k('mx')).exec()],
  [
    'large value',
    async (r, k) => {
      const big = 'x'.repeat(1024 * 1024);
      await r.set(k('big'), big);
      return ((await r.get<string>(k('big'))) ?? '').length;
    },
  ],
];

describe('createFailoverRedis behaves like a plain Redis on one member', () => {
  for (const [name, step] of sample) {
    it(name, async () => {
      const run = (r: Redis, prefix: string) => step(r, (n) => `cmd:${prefix}:${name}:${n}`);
      const expected = await run(plain, 'plain');
      const actual = await run(failover, 'failover');
      expect(actual).toEqual(expected);
    });
  }

  it('returns command errors unchanged (WRONGTYPE), without retrying elsewhere', async () => {
    await plain.set('cmd:wrongtype', 'string');
    const plainError = await plain.lpush('cmd:wrongtype', 'x').catch((e: Error) => e);
    const ourError = await failover.lpush('cmd:wrongtype', 'x').catch((e: Error) => e);
    expect(ourError).toBeInstanceOf(Error);
    expect(ourError.constructor.name).toBe(plainError.constructor.name);
    expect((ourError as Error).message).toMatch(/^WRONGTYPE/);
    // The plain client wraps it ("Command failed: ..." when auto-pipelining, ", command was:
    // [...]" otherwise); ours passes Redis' text through and never echoes arguments.
    expect((plainError as Error).message).toContain((ourError as Error).message);
    // A command error is an answer, not a member failure.
    expect(failover.snapshot().members.find((m) => m.name === 'a')?.consecutiveFailures).toBe(0);
  });

  it('auto-pipelining (opt-in) batches commands of one tick into one /pipeline request', async () => {
    const sent: Array<{ url: string; body: string }> = [];
    const recording: typeof fetch = (input, init) => {
      sent.push({ url: String(input), body: String(init?.body) });
      return fetch(input, init);
    };
    const batched = createFailoverRedis({ members, enableAutoPipelining: true, fetch: recording });
    await batched.set('cmd:auto:1', 'one');
    sent.length = 0;
    const [one, missing, two] = await Promise.all([
      batched.get('cmd:auto:1'),
      batched.get('cmd:auto:none'),
      batched.get('cmd:auto:1'),
    ]);
    expect([one, missing, two]).toEqual(['one', null, 'one']);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.url).toMatch(/\/pipeline$/);
    expect(JSON.parse(sent[0]!.body)).toHaveLength(3);
  });

  it('automaticDeserialization: false returns the text stored, as @upstash/redis does', async () => {
    const raw = createFailoverRedis({ members, automaticDeserialization: false });
    const plainRaw = new Redis({ url: a.url, token: a.token, automaticDeserialization: false });
    for (const stored of ['null', '123', '"x"', '{"a":1}']) {
      await raw.set('cmd:raw', stored);
      expect(await raw.get('cmd:raw')).toBe(stored);
      expect(await plainRaw.get('cmd:raw')).toBe(stored);
      const [fromPipeline] = await raw.pipeline().get('cmd:raw').exec();
      expect(fromPipeline).toBe(stored);
    }
    // the default parses, like the plain client's
    expect(await failover.get('cmd:raw')).toEqual({ a: 1 });
  });

  it('readYourWrites is per client, even for clients sharing a health store and a fetch', async () => {
    const syncTokens: Array<string | null> = [];
    const recording: typeof fetch = (input, init) => {
      syncTokens.push(new Headers(init?.headers).get('upstash-sync-token'));
      return fetch(input, init);
    };
    const without = createFailoverRedis({
      members,
      fetch: recording,
      readYourWrites: false,
      health: { enabled: false },
    });
    const withTokens = createFailoverRedis({
      members,
      fetch: recording,
      health: { enabled: false },
    });
    await without.scope({ pin: true }).set('cmd:ryw', 1);
    const scoped = withTokens.scope({ pin: true });
    await scoped.set('cmd:ryw', 2);
    syncTokens.length = 0;
    await scoped.get('cmd:ryw');
    expect(syncTokens).toHaveLength(1);
    expect(syncTokens[0]).toMatch(/\S/); // the token of the write before, echoed
    syncTokens.length = 0;
    await without.get('cmd:ryw');
    expect(syncTokens).toEqual([null]);
    // alternating, each keeps its own: the reader of its writes still sends its token
    syncTokens.length = 0;
    await scoped.get('cmd:ryw');
    await without.get('cmd:ryw');
    await scoped.get('cmd:ryw');
    expect(syncTokens[0]).toMatch(/\S/);
    expect(syncTokens[1]).toBeNull();
    expect(syncTokens[2]).toMatch(/\S/);
  });

  it('readYourWritesSyncToken carries a token to another invocation, to its own member only', async () => {
    const writer = createFailoverRedis({ members, health: { enabled: false } });
    await writer.set('cmd:ryw-carry', 1);
    const carried = writer.readYourWritesSyncToken;
    // served by a, so a's token, tagged with a's name and a hash of its URL
    expect(carried).toMatch(/^a@[0-9a-f]{8} \S+$/);
    const token = carried!.split(' ')[1]!;

    // Another invocation: a client with transports of its own (another fetch), which has never
    // talked to the members.
    const sent: Array<{ url: string; token: string | null }> = [];
    const recording: typeof fetch = (input, init) => {
      sent.push({
        url: new URL(String(input)).origin,
        token: new Headers(init?.headers).get('upstash-sync-token'),
      });
      return fetch(input, init);
    };
    const reader = createFailoverRedis({ members, fetch: recording, health: { enabled: false } });
    reader.readYourWritesSyncToken = 'no-member-name'; // cannot be placed: ignored
    reader.readYourWritesSyncToken = carried!.replace(/^a@/, 'c@'); // c's: a never sees it
    // a's name at another URL (moved since): not a's token any more
    reader.readYourWritesSyncToken = carried!.replace(/@[0-9a-f]{8}/, '@00000000');
    expect(await reader.get('cmd:ryw-carry')).toBe(1);
    const origin = (name: string) => new URL(members.find((m) => m.name === name)!.url).origin;
    expect(sent).toEqual([{ url: origin('a'), token: null }]);
    reader.readYourWritesSyncToken = carried!;
    sent.length = 0;
    await reader.get('cmd:ryw-carry');
    expect(sent).toEqual([{ url: origin('a'), token }]);
    // Only the member it belongs to ever gets it.
    sent.length = 0;
    await reader.scope({ pin: true }).get('cmd:ryw-carry');
    expect(sent.map((s) => s.url)).toEqual([origin('a')]);
    expect(sent[0]!.token).toMatch(/\S/); // a's own, advanced by the read
  });

  it('keeps a bounded number of transports per member, one per client setup', async () => {
    // Clients differing only in their fetch: each keeps its own transport (and sync token)...
    const clients = Array.from({ length: 20 }, () =>
      createFailoverRedis({
        members,
        fetch: (input, init) => fetch(input, init),
        health: { enabled: false },
      }).scope({ pin: true }),
    );
    for (const c of clients) await c.set('cmd:setups', 1);
    // ...but no more than a few per member stay cached in the shared store.
    const store = healthStoreFor(resolveOptions({ members }).members);
    expect(store.transports.get('a')!.size).toBeLessThanOrEqual(8);
    expect(store.transports.get('a')!.size).toBeGreaterThanOrEqual(2);
  });

  it('a long-lived client in use keeps its transport (and sync token) among per-request ones', async () => {
    const tokens: Array<string | null> = [];
    const longLived = createFailoverRedis({
      members,
      fetch: (input, init) => {
        tokens.push(new Headers(init?.headers).get('upstash-sync-token'));
        return fetch(input, init);
      },
      health: { enabled: false },
    });
    await longLived.set('cmd:lru', 1);
    for (let i = 0; i < 20; i++) {
      const perRequest = createFailoverRedis({
        members,
        fetch: (input, init) => fetch(input, init),
        health: { enabled: false },
      });
      await perRequest.set('cmd:lru', 2);
      tokens.length = 0;
      await longLived.get('cmd:lru');
      expect(tokens[0]).toMatch(/\S/); // still its transport: the token of its last command
    }
  });

  it("auto-pipelining keeps the client's own methods working, scopes included", async () => {
    const sent: string[] = [];
    const recording: typeof fetch = (input, init) => {
      sent.push(String(input));
      return fetch(input, init);
    };
    const switches: unknown[] = [];
    const batched = createFailoverRedis({
      members,
      enableAutoPipelining: true,
      fetch: recording,
    }).on('switch', (e) => switches.push(e));
    await batched.refreshAll();
    expect(batched.activeMember()).toBe('a');
    expect(batched.snapshot().members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    const scoped = batched.scope();
    sent.length = 0;
    const [x, y] = await Promise.all([scoped.get('cmd:auto:1'), scoped.get('cmd:auto:none')]);
    expect([x, y]).toEqual(['one', null]);
    expect(sent.filter((u) => u.endsWith('/pipeline'))).toHaveLength(1); // the scope batches too
    expect(scoped.pinnedMember).toBe('a');
    expect(scoped.servedBy).toBe('a');
    batched.setActiveMember('b');
    expect(switches).toEqual([expect.objectContaining({ from: 'a', to: 'b', reason: 'forced' })]);
    batched.setActiveMember('a');
  });

  it('is accepted by @upstash/ratelimit', async () => {
    // Pinned, so a background probe that times out on a loaded machine cannot move the count to
    // another member mid-test; an hour-long window, so four calls never straddle a boundary.
    const limiter = new Ratelimit({
      redis: failover.scope({ pin: true }),
      limiter: Ratelimit.fixedWindow(3, '1 h'),
      prefix: `cmd:rl:${Date.now()}`,
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push((await limiter.limit('user')).success);
    expect(results).toEqual([true, true, true, false]);
  });

  it('serves from the highest-weight member and reports it', async () => {
    await failover.get('cmd:any');
    expect(failover.activeMember()).toBe('a');
    const snap = failover.snapshot();
    expect(snap.members.map((m) => m.name).sort()).toEqual(['a', 'b', 'c']);
    expect(JSON.stringify(snap)).not.toContain(a.token);
  });
});

describe('pub/sub', () => {
  it('subscribe and psubscribe throw at once, naming what to use instead (never a token or URL)', async () => {
    const batched = createFailoverRedis({ members, enableAutoPipelining: true });
    for (const client of [failover, batched, failover.scope()]) {
      for (const call of [() => client.subscribe('cmd:news'), () => client.psubscribe(['cmd:*'])]) {
        // Without an `error` listener, @upstash/redis would swallow the failure: nothing ever
        // arrives and nothing is said. It must fail loudly, where it is called.
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(FailoverError);
        const { message } = error as Error;
        expect(message).toMatch(/^Pub\/sub does not go through the failover client/);
        expect(message).toContain('subscribe with a plain @upstash/redis Redis({ url, token })');
        expect(message).toContain(`"${client.activeMember()}" (activeMember())`);
        for (const m of members) {
          expect(message).not.toContain(m.token);
          expect(message).not.toContain(m.url);
        }
      }
    }

    // What it says works: a plain client for the member activeMember() names, at the URL
    // snapshot() gives, receives what the failover client publishes.
    const name = failover.activeMember()!;
    const url = failover.snapshot().members.find((m) => m.name === name)!.url;
    const token = members.find((m) => m.name === name)!.token;
    const subscriber = new Redis({ url, token }).subscribe<string>('cmd:news');
    try {
      await new Promise<void>((resolve, reject) => {
        subscriber.on('subscribe', () => resolve());
        subscriber.on('error', reject);
      });
      const received = new Promise<string>((resolve) => {
        subscriber.on('message', (m) => resolve(m.message));
      });
      await failover.publish('cmd:news', 'hello');
      expect(await received).toBe('hello');
    } finally {
      await subscriber.unsubscribe();
    }
  });
});
