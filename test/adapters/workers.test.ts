import { beforeEach, describe, expect, inject, it } from 'vitest';
import { ConfigError, type FailoverRedis, resetHealthStores } from '../../src/index.js';
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
});
