import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import {
  ConfigError,
  createFailoverRedis,
  type FailoverRedis,
  kvHealthCache,
  resetHealthStores,
  type SharedHealth,
  type StoreSnapshot,
} from '../../src/index.js';
import {
  envSuffix,
  failoverFromEnv,
  failoverOptionsFromEnv,
  type KVNamespaceLike,
  membersFromEnv,
  scheduledRefresh,
  withFailover,
} from '../../src/workers/index.js';
import { devVars } from '../../workers/sample/dev-vars.js';
import { StrictExecutionContext } from './support.js';

/**
 * The Workers helpers in Node: env parsing and its errors, `withFailover` with an execution
 * context that throws on detached `waitUntil`, and `scheduledRefresh` publishing to a KV
 * double. The same code runs in workerd in test/worker.
 */
const cluster = inject('cluster');

beforeEach(() => {
  resetHealthStores();
});

const SECRET = 's3cr3t-token-value';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** A Workers KV namespace in memory: JSON values, like `get(key, 'json')`. */
class MemoryKv implements KVNamespaceLike {
  readonly values = new Map<string, string>();
  readonly puts: Array<{ key: string; ttl: number | undefined }> = [];
  async get(key: string, _type: 'json'): Promise<unknown> {
    const value = this.values.get(key);
    return value === undefined ? null : JSON.parse(value);
  }
  async put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void> {
    this.values.set(key, value);
    this.puts.push({ key, ttl: options?.expirationTtl });
  }
}

/** KV refusing every write, the way it answers a second write to a key within a second. */
class RateLimitedKv extends MemoryKv {
  override async put(key: string, _value: string, options?: { expirationTtl?: number }) {
    this.puts.push({ key, ttl: options?.expirationTtl });
    throw new Error('KV PUT failed: 429 Too Many Requests');
  }
}

describe('membersFromEnv', () => {
  const members =
    '[{"name":"us-east","url":"https://a.example","weight":2},{"name":"eu","url":"https://b.example"}]';

  it('reads members from JSON and each token from its own variable', () => {
    const env = { REDIS_MEMBERS: members, REDIS_TOKEN_US_EAST: 't1', REDIS_TOKEN_EU: 't2' };
    expect(membersFromEnv(env)).toEqual([
      { name: 'us-east', url: 'https://a.example', weight: 2, token: 't1' },
      { name: 'eu', url: 'https://b.example', token: 't2' },
    ]);
    // wrangler.toml [vars] may hold the array itself rather than a string.
    const asArray = { ...env, REDIS_MEMBERS: JSON.parse(members) };
    expect(membersFromEnv(asArray)).toHaveLength(2);
    expect(envSuffix('us-east-1')).toBe('US_EAST_1');
  });

  it('honours tokenVar and custom variable names', () => {
    const env = {
      DB: '[{"name":"a","url":"https://a.example","tokenVar":"A_SECRET"}]',
      A_SECRET: 't',
    };
    expect(membersFromEnv(env, { membersVar: 'DB' })[0]?.token).toBe('t');
  });

  it('refuses a misspelt member or availability field instead of dropping it silently', () => {
    const member = { name: 'a', url: 'https://a.example', tokenVar: 'A_TOKEN' };
    const env = (m: object) => ({ REDIS_MEMBERS: JSON.stringify([m]), A_TOKEN: SECRET });
    expect(errorOf(() => membersFromEnv(env({ ...member, wieght: 5 }))).field).toBe(
      'env.REDIS_MEMBERS[0].wieght',
    );
    const availability = { url: 'https://c.example:9443', username: 'u', lagToleranceMS: 100 };
    const error = errorOf(() =>
      membersFromEnv({ ...env({ ...member, availability }), REDIS_AVAILABILITY_PASSWORD_A: 'p' }),
    );
    expect(error.field).toBe('env.REDIS_MEMBERS[0].availability.lagToleranceMS');
    expect(error.message).not.toContain(SECRET);
  });

  it('reads a tuning variable only from a number or its text (true is not 1 ms)', () => {
    const env = { REDIS_MEMBERS: members, REDIS_TOKEN_US_EAST: 't1', REDIS_TOKEN_EU: 't2' };
    expect(failoverOptionsFromEnv({ ...env, REDIS_TIMEOUT_MS: '800' }).timeoutMs).toBe(800);
    expect(failoverOptionsFromEnv({ ...env, REDIS_TIMEOUT_MS: 800 }).timeoutMs).toBe(800);
    for (const value of [true, ['5000']]) {
      expect(errorOf(() => failoverOptionsFromEnv({ ...env, REDIS_TIMEOUT_MS: value })).field).toBe(
        'env.REDIS_TIMEOUT_MS',
      );
    }
  });

  it('refuses a tokenVar that is not a variable name without quoting it (a token pasted there)', () => {
    const pasted = JSON.stringify([
      { name: 'a', url: 'https://a.example', tokenVar: `${SECRET}=` },
    ]);
    const error = errorOf(() => membersFromEnv({ REDIS_MEMBERS: pasted }));
    expect(error.field).toBe('env.REDIS_MEMBERS[0].tokenVar');
    expect(error.message).not.toContain(SECRET);
  });

  it('names the missing variable and never prints a value', () => {
    const missingMembers = errorOf(() => membersFromEnv({}));
    expect(missingMembers.field).toBe('env.REDIS_MEMBERS');
    expect(missingMembers.message).toMatch(/is not set/);

    const missingToken = errorOf(() =>
      membersFromEnv({ REDIS_MEMBERS: members, REDIS_TOKEN_US_EAST: SECRET }),
    );
    expect(missingToken.field).toBe('env.REDIS_TOKEN_EU');
    expect(missingToken.message).toMatch(/wrangler secret put REDIS_TOKEN_EU/);
    expect(missingToken.message).toMatch(/member "eu"/);
    expect(missingToken.message).not.toContain(SECRET);

    // JSON.parse's own message quotes the input; ours does not.
    const badJson = errorOf(() => membersFromEnv({ REDIS_MEMBERS: `[{"token":"${SECRET}"` }));
    expect(badJson.message).toBe('Invalid option env.REDIS_MEMBERS: is not valid JSON');

    const inline = errorOf(() =>
      membersFromEnv({
        REDIS_MEMBERS: `[{"name":"a","url":"https://a.example","token":"${SECRET}"}]`,
      }),
    );
    expect(inline.field).toBe('env.REDIS_MEMBERS[0].token');
    expect(inline.message).toMatch(/REDIS_TOKEN_A/);
    expect(inline.message).not.toContain(SECRET);

    const empty = errorOf(() => membersFromEnv({ REDIS_MEMBERS: '[]' }));
    expect(empty.message).toMatch(/non-empty/);
    const nameless = errorOf(() => membersFromEnv({ REDIS_MEMBERS: '[{"url":"x"}]' }));
    expect(nameless.field).toBe('env.REDIS_MEMBERS[0].name');
  });

  it('refuses two members that would share a token variable', () => {
    const env = { REDIS_MEMBERS: '[{"name":"us-east","url":"x"},{"name":"us_east","url":"y"}]' };
    expect(errorOf(() => membersFromEnv(env)).message).toMatch(/REDIS_TOKEN_US_EAST/);
  });

  it('accepts a clashing name when one of the two has its own tokenVar, in either order', () => {
    const a = { name: 'us-east', url: 'https://a.example' };
    const b = { name: 'us_east', url: 'https://b.example', tokenVar: 'TOKEN_B' };
    const env = (order: unknown[]) => ({
      REDIS_MEMBERS: JSON.stringify(order),
      REDIS_TOKEN_US_EAST: 'ta',
      TOKEN_B: 'tb',
    });
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const tokens = Object.fromEntries(membersFromEnv(env(order)).map((m) => [m.name, m.token]));
      expect(tokens).toEqual({ 'us-east': 'ta', us_east: 'tb' });
    }
    // The availability password variable has no override: that clash is still refused.
    const availability = { url: 'https://admin.example', username: 'u' };
    const both = env([
      { ...a, availability },
      { ...b, availability },
    ]);
    const clash = errorOf(() =>
      membersFromEnv({ ...both, REDIS_AVAILABILITY_PASSWORD_US_EAST: 'p' }),
    );
    expect(clash.field).toBe('env.REDIS_MEMBERS[1].name');
    expect(clash.message).toMatch(/REDIS_AVAILABILITY_PASSWORD_US_EAST/);
  });

  it('reads availability passwords from their own variables', () => {
    const env = devVars(cluster.members);
    expect(env.REDIS_MEMBERS).not.toContain(cluster.members[0]!.token);
    expect(env.REDIS_MEMBERS).not.toContain(cluster.members[0]!.availability.password);
    const parsed = membersFromEnv(env);
    expect(parsed[0]?.availability?.password).toBe(cluster.members[0]!.availability.password);
    const { REDIS_AVAILABILITY_PASSWORD_B: _dropped, ...withoutB } = env;
    expect(errorOf(() => membersFromEnv(withoutB)).field).toBe('env.REDIS_AVAILABILITY_PASSWORD_B');
  });
});

describe('failoverOptionsFromEnv', () => {
  it('reads tuning variables, which win over code, and wires the HEALTH KV', () => {
    const kv = new MemoryKv();
    const env = {
      ...devVars(cluster.members),
      REDIS_GRACE_PERIOD_MS: '1500',
      REDIS_TIMEOUT_MS: 800,
      REDIS_PROXIMITY: 'true',
      REDIS_HEALTH_INTERVAL_MS: '250',
      HEALTH: kv,
    };
    const options = failoverOptionsFromEnv(env, {}, { gracePeriodMs: 60_000, deadlineMs: 4000 });
    expect(options).toMatchObject({
      gracePeriodMs: 1500,
      timeoutMs: 800,
      deadlineMs: 4000,
      proximity: true,
      health: { intervalMs: 250 },
    });
    expect(options.health?.cache).toBeDefined();
    expect(failoverOptionsFromEnv(env, { healthKv: false }).health?.cache).toBeUndefined();
  });

  it('names a bad tuning variable', () => {
    const env = { ...devVars(cluster.members), REDIS_GRACE_PERIOD_MS: 'soon' };
    expect(errorOf(() => failoverOptionsFromEnv(env)).field).toBe('env.REDIS_GRACE_PERIOD_MS');
    const proximity = { ...devVars(cluster.members), REDIS_PROXIMITY: 'yes please' };
    expect(errorOf(() => failoverOptionsFromEnv(proximity)).field).toBe('env.REDIS_PROXIMITY');
  });

  it('refuses a near miss of a tuning variable, which would be ignored, and leaves other REDIS_* alone', () => {
    for (const [variable, meant] of [
      ['REDIS_GRACE_PERIOD', 'REDIS_GRACE_PERIOD_MS'],
      ['REDIS_GRACEPERIOD_MS', 'REDIS_GRACE_PERIOD_MS'],
      ['REDIS_timeout_ms', 'REDIS_TIMEOUT_MS'],
      ['REDIS_HEALTH_PROBE_TIMEOUT', 'REDIS_HEALTH_PROBE_TIMEOUT_MS'],
      ['REDIS_Proximity', 'REDIS_PROXIMITY'],
      ['redis_deadline_ms', 'REDIS_DEADLINE_MS'],
    ] as const) {
      const env = { ...devVars(cluster.members), [variable]: '1500' };
      const error = errorOf(() => failoverOptionsFromEnv(env));
      expect(error.field).toBe(`env.${variable}`);
      expect(error.message).toContain(`did you mean ${meant}?`);
      expect(error.message).not.toContain('1500');
    }
    // The app's own variables, the members and their secrets are not tuning near misses.
    const env = {
      ...devVars(cluster.members),
      REDIS_URL: 'redis://elsewhere',
      REDIS_TIMEOUT_SECONDS: '5',
      REDIS_PROXIMITY_KM: '100',
      REDIS_TIMEOUT_MS: '900',
    };
    expect(failoverOptionsFromEnv(env).timeoutMs).toBe(900);
    // With its own prefix the client reads only its own variables.
    const mine = {
      ...devVars(cluster.members),
      REDIS_GRACE_PERIOD: '5',
      EDGE_GRACE_PERIOD_MS: '700',
    };
    expect(failoverOptionsFromEnv(mine, { tuningPrefix: 'EDGE_' }).gracePeriodMs).toBe(700);
  });
});

describe('withFailover (workers)', () => {
  it('gives the handler a request-scoped client and uses ctx.waitUntil as a method', async () => {
    const env = devVars(cluster.members);
    const seen: FailoverRedis[] = [];
    const fetch = withFailover(
      async (_request, _env, _ctx, redis) => {
        seen.push(redis);
        await redis.set('adapters:workers', 'w');
        return new Response(await redis.get<string>('adapters:workers'));
      },
      { memberHeader: true },
    );
    const ctx = new StrictExecutionContext();
    const res = await fetch(new Request('https://worker.test/'), env, ctx);
    expect(await res.text()).toBe('w');
    expect(res.headers.get('x-redis-member')).toBe('a');
    // A cold isolate: the first command started a refresh, handed to ctx.
    expect(ctx.promises.length).toBeGreaterThan(0);
    await ctx.settle();

    await fetch(new Request('https://worker.test/'), env, new StrictExecutionContext());
    expect(seen[0]).not.toBe(seen[1]);
    // One client per env (isolate), one scope per request.
    expect(failoverFromEnv(env)).toBe(failoverFromEnv(env));
  });

  it('answers a clear error when env is incomplete', async () => {
    const fetch = withFailover(async () => new Response('unreachable'));
    const { REDIS_TOKEN_B: _dropped, ...env } = devVars(cluster.members);
    await expect(
      fetch(new Request('https://worker.test/'), env, new StrictExecutionContext()),
    ).rejects.toThrow(/env\.REDIS_TOKEN_B: is not set/);
  });
});

describe('scheduledRefresh', () => {
  const controller = { cron: '* * * * *', scheduledTime: Date.now(), type: 'scheduled' };

  it('probes every member and publishes the verdict to the HEALTH KV', async () => {
    const kv = new MemoryKv();
    const env = { ...devVars(cluster.members), HEALTH: kv };
    const snapshots: unknown[] = [];
    const scheduled = scheduledRefresh<typeof env>({ onRefresh: (s) => void snapshots.push(s) });
    await scheduled(controller, env, new StrictExecutionContext());
    expect(kv.puts).toHaveLength(1);
    expect(kv.puts[0]!.ttl).toBeGreaterThanOrEqual(60);
    const record = JSON.parse([...kv.values.values()][0]!);
    expect(record).toMatchObject({ version: 1, active: 'a' });
    expect(Object.keys(record.members).sort()).toEqual(['a', 'b', 'c']);
    expect(JSON.stringify(record)).not.toContain(cluster.members[0]!.token);
    expect(snapshots).toHaveLength(1);
  });

  it('runs only for its crons, and says which binding is missing', async () => {
    const kv = new MemoryKv();
    const env = { ...devVars(cluster.members), HEALTH: kv };
    await scheduledRefresh({ crons: ['0 * * * *'] })(controller, env, new StrictExecutionContext());
    expect(kv.puts).toHaveLength(0);

    const { HEALTH: _none, ...unbound } = env;
    await expect(
      scheduledRefresh()(controller, unbound, new StrictExecutionContext()),
    ).rejects.toThrow(/env\.HEALTH: is not bound/);
  });

  it('refuses a client with no health.cache, which it could only pretend to publish to', async () => {
    const client = createFailoverRedis({ members: cluster.members });
    expect(client.sharesHealth).toBe(false);
    const env = devVars(cluster.members);
    await expect(
      scheduledRefresh({ client })(controller, env, new StrictExecutionContext()),
    ).rejects.toThrow(/client: has no health\.cache/);
    const kv = new MemoryKv();
    const shared = createFailoverRedis({
      members: cluster.members,
      health: { cache: kvHealthCache(kv) },
    });
    expect(shared.sharesHealth).toBe(true);
    await scheduledRefresh({ client: shared })(controller, env, new StrictExecutionContext());
    expect(kv.puts).toHaveLength(1);
  });

  it('two crons of one minute write the record once (KV takes one write per key per second)', async () => {
    const kv = new MemoryKv();
    const env = { ...devVars(cluster.members), HEALTH: kv };
    // Each invocation builds its own options, and so its own kvHealthCache, over the binding.
    const scheduled = scheduledRefresh<typeof env>();
    await Promise.all([
      scheduled(controller, env, new StrictExecutionContext()),
      scheduled({ ...controller, cron: '*/5 * * * *' }, env, new StrictExecutionContext()),
    ]);
    expect(kv.puts).toHaveLength(1);
  });

  it('a failed publish is reported, and the refresh still applies and does not reject', async () => {
    const kv = new RateLimitedKv();
    const env = { ...devVars(cluster.members), HEALTH: kv };
    const errors: unknown[] = [];
    const snapshots: StoreSnapshot[] = [];
    const scheduled = scheduledRefresh<typeof env>({
      onPublishError: (error) => void errors.push(error),
      onRefresh: (s) => void snapshots.push(s),
    });
    await expect(scheduled(controller, env, new StrictExecutionContext())).resolves.toBeUndefined();
    expect(kv.puts).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toMatch(/429/);
    // The verdicts of this refresh are in the snapshot, and in the isolate's client.
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.active).toBe('a');
    expect(snapshots[0]!.members.every((m) => m.status === 'healthy')).toBe(true);
    expect(snapshots[0]!.stats.refreshes).toBe(1);
    expect(failoverFromEnv(env).snapshot().active).toBe('a');
  });

  it('without onPublishError, a failed publish is logged, not thrown', async () => {
    const env = { ...devVars(cluster.members), HEALTH: new RateLimitedKv() };
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await expect(
        scheduledRefresh<typeof env>()(controller, env, new StrictExecutionContext()),
      ).resolves.toBeUndefined();
      expect(log).toHaveBeenCalledTimes(1);
      expect(String(log.mock.calls[0]![0])).toMatch(/publishing shared health failed.*429/);
    } finally {
      log.mockRestore();
    }
  });
});

describe('kvHealthCache write throttle', () => {
  const record: SharedHealth = { version: 1, key: 'k', at: 0, members: {} };

  afterEach(() => {
    vi.useRealTimers();
  });

  it('is shared by every cache over one binding: one write per key per second', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const kv = new MemoryKv();
    const first = kvHealthCache(kv);
    const second = kvHealthCache(kv);
    await first.put('one', record);
    await second.put('one', record);
    // What scheduledRefresh builds on every invocation: a new cache each time, same binding.
    const env = { ...devVars(cluster.members), HEALTH: kv };
    await failoverOptionsFromEnv(env).health!.cache!.put('one', record);
    await failoverOptionsFromEnv(env).health!.cache!.put('one', record);
    expect(kv.puts.map((p) => p.key)).toEqual(['one']);
    // Other keys, and other bindings, have their own second.
    await second.put('two', record);
    const other = new MemoryKv();
    await kvHealthCache(other).put('one', record);
    expect(kv.puts.map((p) => p.key)).toEqual(['one', 'two']);
    expect(other.puts).toHaveLength(1);

    vi.setSystemTime(1_000_999);
    await second.put('one', record);
    expect(kv.puts).toHaveLength(2);
    vi.setSystemTime(1_001_000);
    await second.put('one', record);
    expect(kv.puts.map((p) => p.key)).toEqual(['one', 'two', 'one']);
  });

  it('a rejected write still counts, so the next one waits its second', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(2_000_000);
    const kv = new RateLimitedKv();
    await expect(kvHealthCache(kv).put('k', record)).rejects.toThrow(/429/);
    await kvHealthCache(kv).put('k', record);
    expect(kv.puts).toHaveLength(1);
  });
});
