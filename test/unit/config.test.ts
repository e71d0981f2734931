import { describe, expect, it, vi } from 'vitest';
import { createFailoverRedis } from '../../src/client.js';
import {
  type AvailabilityConfig,
  type CircuitOptions,
  DEFAULTS,
  type FailoverOptions,
  type HealthOptions,
  type MemberConfig,
  resolveOptions,
} from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import type { MemberLocation } from '../../src/selector.js';
import { clientFor } from '../../src/serverless/adapter.js';
import { workerClientSource } from '../../src/workers/fetch.js';

const SECRET = 'tok-very-secret-123';
const member = (over: Record<string, unknown> = {}) => ({
  name: 'a',
  url: 'https://a.example.com',
  token: SECRET,
  ...over,
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain(SECRET);
    return (e as ConfigError).field;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveOptions', () => {
  it('fills defaults in one place', () => {
    const o = resolveOptions({ members: [member()] });
    expect(o.timeoutMs).toBe(DEFAULTS.timeoutMs);
    expect(o.deadlineMs).toBe(DEFAULTS.deadlineMs);
    expect(o.members[0]!.weight).toBe(1);
    expect(o.circuit.consecutive).toEqual({ threshold: 3 });
    expect(o.circuit.gracePeriodMs).toBe(60_000);
    expect(o.retryAmbiguousWrites).toBe(false);
    expect(o.hedgeAfterMs).toBeUndefined();
    expect(o.cancellation).toBe('after-failure');
    expect(resolveOptions({ members: [member()], cancellation: 'always' }).cancellation).toBe(
      'always',
    );
  });

  it('cancels every attempt by default on Cloudflare Workers (navigator.userAgent), and not elsewhere', () => {
    vi.stubGlobal('navigator', { userAgent: 'Cloudflare-Workers' });
    try {
      expect(resolveOptions({ members: [member()] }).cancellation).toBe('always');
      expect(
        resolveOptions({ members: [member()], cancellation: 'after-failure' }).cancellation,
      ).toBe('after-failure');
    } finally {
      vi.unstubAllGlobals();
    }
    vi.stubGlobal('navigator', { userAgent: 'Mozilla/5.0' });
    try {
      expect(resolveOptions({ members: [member()] }).cancellation).toBe('after-failure');
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('fills circuit and health defaults from DEFAULTS', () => {
    const o = resolveOptions({ members: [member()] });
    expect(o.circuit.rate).toEqual(DEFAULTS.failureRate);
    const { policy, ...numbers } = DEFAULTS.health;
    expect(o.health).toMatchObject({ ...numbers, policy, enabled: true, probe: 'auto' });
    expect(o.health.onSourceUnreachable).toBe('ping');
    expect(o.health.initialization).toBeUndefined();
    // per probe up to six calls of probeTimeoutMs plus the delay, one more timeout, doubled
    expect(o.health.staleRefreshMs).toBe(2 * (1 * (6 * 1000 + 500 + 100) + 1000));
    expect(o.automaticDeserialization).toBe(true);
    expect(
      resolveOptions({ members: [member()], automaticDeserialization: false })
        .automaticDeserialization,
    ).toBe(false);
    expect(Object.keys(o).sort()).toEqual(
      [
        'members',
        'timeoutMs',
        'deadlineMs',
        'hedgeAfterMs',
        'retryAmbiguousWrites',
        'requestFailover',
        'circuit',
        'health',
        'proximity',
        'allowInsecureHttp',
        'readYourWrites',
        'cancellation',
        'enableAutoPipelining',
        'automaticDeserialization',
        'fetch',
        'now',
      ].sort(),
    );
  });

  it('keeps the values given, including the edges each rule allows', () => {
    const o = resolveOptions({
      members: [member({ weight: 2.5 })],
      hedgeAfterMs: 30,
      circuit: { consecutiveFailures: false, failureRate: { threshold: 1 } },
      health: {
        probes: 3,
        probeDelayMs: -0,
        jitter: 0,
        policy: 'majority',
        initialization: { policy: 'all', timeoutMs: 200 },
      },
    });
    expect(o.members[0]!.weight).toBe(2.5);
    expect(o.hedgeAfterMs).toBe(30);
    expect(o.circuit.consecutive).toBe(false);
    expect(o.circuit.rate).toEqual({ ...DEFAULTS.failureRate, threshold: 1 });
    expect(o.health.probeDelayMs).toBe(0);
    expect(o.health.jitter).toBe(0);
    expect(o.health.policy).toBe('majority');
    expect(o.health.initialization).toEqual({ policy: 'all', timeoutMs: 200 });
    expect(o.health.staleRefreshMs).toBe(2 * (3 * (6 * 1000 + 0 + 100) + 1000));
    expect(
      resolveOptions({ members: [member()], health: { initialization: {} as never } }).health
        .initialization,
    ).toEqual({ policy: 'one', timeoutMs: 1000 });
    expect(
      resolveOptions({ members: [member()], circuit: { failureRate: false } }).circuit.rate,
    ).toBe(false);
  });

  it('strips a trailing slash from member URLs', () => {
    expect(
      resolveOptions({ members: [member({ url: 'https://a.example.com/' })] }).members[0]!.url,
    ).toBe('https://a.example.com');
  });

  it('names the offending field', () => {
    expect(fieldOf(() => resolveOptions({ members: [] }))).toBe('members');
    expect(fieldOf(() => resolveOptions({ members: [member(), member()] }))).toBe(
      'members[1].name',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ weight: 0 })] }))).toBe(
      'members[0] ("a").weight',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ weight: -2 })] }))).toBe(
      'members[0] ("a").weight',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ token: '' })] }))).toBe(
      'members[0] ("a").token',
    );
    // The availability API takes whole milliseconds of lag tolerance.
    const availability = { url: 'https://cluster.example.com:9443', username: 'u', password: 'p' };
    expect(
      fieldOf(() =>
        resolveOptions({
          members: [member({ availability: { ...availability, lagToleranceMs: 2500.5 } })],
        }),
      ),
    ).toBe('members[0] ("a").availability.lagToleranceMs');
    // `health.probe: 'availability'` is a promise that every member has one.
    expect(
      fieldOf(() =>
        resolveOptions({
          members: [member({ availability }), member({ name: 'b' })],
          health: { probe: 'availability' },
        }),
      ),
    ).toBe('members[1] ("b").availability');
    const strict = { members: [member({ availability })], health: { probe: 'availability' } };
    expect(() => resolveOptions(strict as never)).not.toThrow();
    const redis = createFailoverRedis(strict as never);
    expect(fieldOf(() => redis.addMember(member({ name: 'b' })))).toBe(
      'addMember(member) ("b").availability',
    );
    // A token must be a valid header value: fetch would throw with it in the message.
    for (const token of [`${SECRET}\n`, `${SECRET}\u0000x`, `${SECRET} x`, `${SECRET}é`]) {
      expect(fieldOf(() => resolveOptions({ members: [member({ token })] }))).toBe(
        'members[0] ("a").token',
      );
    }
    expect(fieldOf(() => resolveOptions({ members: [member({ name: '' })] }))).toBe(
      'members[0].name',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ url: 'not a url' })] }))).toBe(
      'members[0] ("a").url',
    );
    expect(fieldOf(() => resolveOptions({ members: [member()], timeoutMs: 0 }))).toBe('timeoutMs');
    expect(
      fieldOf(() => resolveOptions({ members: [member()], cancellation: 'never' as 'always' })),
    ).toBe('cancellation');
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member()], circuit: { failureRate: { threshold: 2 } } }),
      ),
    ).toBe('circuit.failureRate.threshold');
    expect(fieldOf(() => resolveOptions({ members: [member({ location: { lat: 100 } })] }))).toBe(
      'members[0] ("a").location.lat',
    );
    expect(
      fieldOf(() =>
        resolveOptions({
          members: [
            member({ availability: { url: 'https://c:9443', username: '', password: 'p' } }),
          ],
        }),
      ),
    ).toBe('members[0] ("a").availability.username');
  });

  it('names nested fields and says what each must be', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ health: { probes: 1.5 } }, 'health.probes', /must be a positive integer/],
      [{ health: { probeDelayMs: -1 } }, 'health.probeDelayMs', /must be a number >= 0/],
      [{ health: { jitter: 1 } }, 'health.jitter', /must be a number in \[0, 1\)/],
      [{ health: { intervalMs: '5' } }, 'health.intervalMs', /must be a positive number$/],
      [{ health: { policy: 'some' } }, 'health.policy', /must be one of 'all', 'majority', 'any'/],
      [{ health: { probe: 'http' } }, 'health.probe', /one of 'auto', 'ping', 'availability'/],
      [{ health: { onSourceUnreachable: 'x' } }, 'health.onSourceUnreachable', /'unhealthy'/],
      [{ health: { initialization: 5 } }, 'health.initialization', /must be an object/],
      [
        { health: { initialization: { policy: 'any', timeoutMs: 5 } } },
        'health.initialization.policy',
        /must be one of 'one', 'majority', 'all'/,
      ],
      [{ health: { cache: { get() {} } } }, 'health.cache', /get\(key\) and put\(key, value\)/],
      [{ health: { cache: null } }, 'health.cache', /get\(key\)/],
      [{ health: 'on' }, 'health', /must be an object/],
      [{ circuit: 3 }, 'circuit', /must be an object/],
      [{ circuit: { consecutiveFailures: 0 } }, 'circuit.consecutiveFailures', /positive/],
      [
        { circuit: { failureRate: { threshold: 1.5 } } },
        'circuit.failureRate.threshold',
        /must be a number in \(0, 1\]/,
      ],
      [{ circuit: { failureRate: { windowMs: -1 } } }, 'circuit.failureRate.windowMs', /positive/],
      [{ hedgeAfterMs: 0 }, 'hedgeAfterMs', /must be a positive number/],
      [{ deadlineMs: Number.POSITIVE_INFINITY }, 'deadlineMs', /must be a positive number/],
      [{ fetch: 'fetch' }, 'fetch', /must be a function/],
      [{ now: 1 }, 'now', /must be a function/],
      [{ members: 'a' }, 'members', /must be a non-empty array/],
      [{ members: [null] }, 'members[0]', /must be an object/],
      [
        { members: [member({ location: { lon: -181 } })] },
        'members[0] ("a").location.lon',
        /between -180 and 180/,
      ],
      [
        { members: [member({ location: { colos: ['IAD', 1] } })] },
        'members[0] ("a").location.colos',
        /an array of strings/,
      ],
      [
        {
          members: [
            member({
              availability: { url: 'https://c', username: 'u', password: 'p', bdbUid: 1.5 },
            }),
          ],
        },
        'members[0] ("a").availability.bdbUid',
        /must be a positive integer/,
      ],
      [
        { members: [member({ availability: { url: 'https://c', username: 'u' } })] },
        'members[0] ("a").availability.password',
        /must be a string/,
      ],
      [{ members: [member({ url: 'ftp://a.example.com' })] }, 'members[0] ("a").url', /https:\/\//],
    ];
    for (const [options, field, message] of cases) {
      const run = () => resolveOptions({ members: [member()], ...options } as never);
      expect(fieldOf(run), field).toBe(field);
      expect(run, field).toThrow(message);
    }
    expect(() => resolveOptions(null as never)).toThrow(/options: must be an object/);
    expect(() => resolveOptions({ members: [member(), member()] })).toThrow(
      'Invalid option members[1].name: duplicate name "a"',
    );
  });

  it('refuses http:// to non-loopback hosts unless allowed', () => {
    expect(
      fieldOf(() => resolveOptions({ members: [member({ url: 'http://redis.example.com' })] })),
    ).toBe('members[0] ("a").url');
    expect(
      resolveOptions({
        members: [member({ url: 'http://redis.example.com' })],
        allowInsecureHttp: true,
      }).members[0]!.url,
    ).toBe('http://redis.example.com');
    for (const url of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:2']) {
      expect(resolveOptions({ members: [member({ url })] }).members[0]!.url).toBe(url);
    }
  });

  it('refuses credentials in URLs (they would leak into logs)', () => {
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member({ url: 'https://user:pw@a.example.com' })] }),
      ),
    ).toBe('members[0] ("a").url');
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member({ url: `https://a.example.com/?_token=${SECRET}` })] }),
      ),
    ).toBe('members[0] ("a").url');
  });

  it('never echoes a token even when the token is what is wrong', () => {
    expect(() => resolveOptions({ members: [member({ url: SECRET })] })).toThrow(ConfigError);
    // A token pasted where a URL or a number goes, or a URL whose scheme is a token.
    for (const bad of [
      { url: SECRET },
      { url: `${SECRET}:x` },
      { weight: SECRET },
      { location: { colos: [SECRET, 1] } },
    ]) {
      expect(fieldOf(() => resolveOptions({ members: [member(bad)] }))).toMatch(/^members\[0\]/);
    }
    expect(
      fieldOf(() => resolveOptions({ members: [member()], health: { policy: SECRET } as never })),
    ).toBe('health.policy');
  });
});

describe('durations and scope options', () => {
  it('caps durations at the longest delay a timer keeps (2^31 - 1 ms), not below', () => {
    const o = resolveOptions({
      members: [member()],
      hedgeAfterMs: 3e9,
      timeoutMs: 1e12,
      health: { probeTimeoutMs: 5e9, initialization: { policy: 'all', timeoutMs: 4e9 } },
    });
    expect(o.hedgeAfterMs).toBe(2_147_483_647);
    expect(o.timeoutMs).toBe(2_147_483_647);
    expect(o.health.probeTimeoutMs).toBe(2_147_483_647);
    expect(o.health.initialization?.timeoutMs).toBe(2_147_483_647);
    // not a duration: left as given
    expect(resolveOptions({ members: [member({ weight: 3e9 })] }).members[0]!.weight).toBe(3e9);
  });

  it('refuses a scope deadline that is not a number >= 0 (NaN would switch timeouts off)', () => {
    const redis = createFailoverRedis({ members: [member()], health: { enabled: false } });
    for (const deadlineMs of [Number.NaN, -1, '100' as unknown as number]) {
      expect(fieldOf(() => redis.scope({ deadlineMs }))).toBe('scope(options).deadlineMs');
    }
    expect(() => redis.scope({ deadlineMs: 0 })).not.toThrow();
  });
});

describe('unknown options', () => {
  const availability = { url: 'https://cluster.example.com:9443', username: 'u', password: 'p' };
  const refusal = (options: Record<string, unknown>) => {
    const run = () => resolveOptions({ members: [member()], ...options } as never);
    const field = fieldOf(run);
    try {
      run();
    } catch (e) {
      return { field, message: (e as Error).message };
    }
    throw new Error('unreachable');
  };

  it('are refused at every level, with the full path as the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ timeoutMS: 100 }, 'timeoutMS'],
      [{ heatlh: { probes: 3 } }, 'heatlh'],
      [{ health: { numProbes: 3 } }, 'health.numProbes'],
      [
        { health: { initialization: { policy: 'one', timeout: 5 } } },
        'health.initialization.timeout',
      ],
      [{ circuit: { minNumOfFailures: 1000 } }, 'circuit.minNumOfFailures'],
      [{ circuit: { failureRate: { treshold: 0.2 } } }, 'circuit.failureRate.treshold'],
      [{ members: [member({ wieght: 2 })] }, 'members[0] ("a").wieght'],
      [{ members: [member(), member({ name: 'b', tokenVar: 'X' })] }, 'members[1] ("b").tokenVar'],
      [{ members: [member({ location: { latitude: 1 } })] }, 'members[0] ("a").location.latitude'],
      [
        { members: [member({ availability: { ...availability, lagTolerance: 100 } })] },
        'members[0] ("a").availability.lagTolerance',
      ],
      [{ on: { swtich: () => {} } }, 'on.swtich'],
    ];
    for (const [options, field] of cases) {
      const r = refusal(options);
      expect(r.field, field).toBe(field);
      expect(r.message, field).toContain(`Invalid option ${field}: is not an option`);
    }
    // A member added at run time too.
    const redis = createFailoverRedis({ members: [member()], health: { enabled: false } });
    expect(fieldOf(() => redis.addMember({ ...member({ name: 'b' }), wieght: 2 } as never))).toBe(
      'addMember(member) ("b").wieght',
    );
    expect(() => createFailoverRedis({ members: [member()], gracePeriod: 1 } as never)).toThrow(
      ConfigError,
    );
  });

  it('names the option meant: a case or `Ms` slip, or the Jedis / redis-py name', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ timeoutMS: 100 }, 'Invalid option timeoutMS: is not an option; did you mean timeoutMs?'],
      [{ gracePeriod: 10_000 }, 'gracePeriod: is not an option; did you mean gracePeriodMs?'],
      [{ grace_period_ms: 1 }, 'did you mean gracePeriodMs?'],
      [
        { health: { interval: 1000 } },
        'health.interval: is not an option; did you mean intervalMs?',
      ],
      [
        { members: [member({ Weight: 2 })] },
        '("a").Weight: is not an option; did you mean weight?',
      ],
      [
        { health: { numProbes: 3 } },
        'health.numProbes: is not an option; did you mean health.probes?',
      ],
      [{ health_check_probes: 3 }, 'did you mean health.probes?'],
      [{ health: { delayInBetweenProbes: 100 } }, 'did you mean health.probeDelayMs?'],
      [{ healthCheckInterval: 1000 }, 'did you mean health.intervalMs?'],
      [
        { circuit: { minNumOfFailures: 1000 } },
        'circuit.minNumOfFailures: is not an option; did you mean circuit.failureRate.minimumFailures?',
      ],
      [{ min_num_failures: 1000 }, 'did you mean circuit.failureRate.minimumFailures?'],
      [
        { circuitBreakerSlidingWindowMinCalls: 10 },
        'did you mean circuit.failureRate.minimumFailures?',
      ],
      [{ circuit: { failureRateThreshold: 10 } }, 'did you mean circuit.failureRate.threshold?'],
      [{ initializationPolicy: 'one' }, 'did you mean health.initialization?'],
      [
        { members: [member({ availability: { ...availability, lagAwareTolerance: 100 } })] },
        'did you mean members[].availability.lagToleranceMs?',
      ],
      [{ maxNumFailoverAttempts: 10 }, 'did you mean deadlineMs?'],
      [{ retryOnFailover: true }, 'did you mean requestFailover?'],
    ];
    for (const [options, message] of cases) {
      expect(refusal(options).message).toContain(message);
    }
    for (const key of ['failbackSupported', 'failbackCheckInterval', 'autoFallbackInterval']) {
      expect(refusal({ [key]: 0 }).message).toBe(
        `Invalid option ${key}: is not an option; failback follows gracePeriodMs and cannot be switched off`,
      );
    }
    // No obvious intended option: no guess.
    expect(refusal({ heatlh: {} }).message).toBe('Invalid option heatlh: is not an option');
    expect(refusal({ retry: { maxAttempts: 3 } }).message).toBe(
      'Invalid option retry: is not an option',
    );
    // Words that only share a part with an anchor's name get no wrong guess.
    for (const key of [
      'retryDelay',
      'readPolicy',
      'retryPolicy',
      'latencyThreshold',
      'featureFlags',
    ]) {
      expect(refusal({ [key]: 1 }).message).toBe(`Invalid option ${key}: is not an option`);
    }
  });

  it('takes `on: null` as no listeners', () => {
    expect(() =>
      createFailoverRedis({
        members: [{ name: 'a', url: 'https://a.example', token: 't' }],
        on: null as never,
      }),
    ).not.toThrow();
  });

  it('refuses the options a Jedis / redis-py user would write instead of keeping the defaults', () => {
    // .scratch/migration/01-defaults.ts: these used to resolve to grace 60000, 1 probe, 3 failures.
    for (const options of [
      { failbackSupported: false },
      { autoFallbackInterval: 0 },
      { gracePeriod: 10_000 },
      { health: { numProbes: 3 } },
      { circuit: { minNumOfFailures: 1000 } },
    ]) {
      expect(() => resolveOptions({ members: [member()], ...options } as never)).toThrow(
        /is not an option/,
      );
    }
  });

  it('still accepts every documented option, at every level', () => {
    const fn = () => {};
    const location: Required<MemberLocation> = { lat: 1, lon: 2, colos: ['IAD'] };
    const fullAvailability: Required<AvailabilityConfig> = {
      ...availability,
      bdbUid: 1,
      lagToleranceMs: 100,
      local: true,
    };
    const fullMember: Required<MemberConfig> = {
      ...member(),
      weight: 2,
      location,
      availability: fullAvailability,
    };
    const circuit: Required<CircuitOptions> = {
      consecutiveFailures: 2,
      failureRate: { threshold: 0.2, minimumFailures: 2, windowMs: 1000 },
    };
    const health: Required<HealthOptions> = {
      enabled: true,
      intervalMs: 1000,
      probes: 3,
      probeDelayMs: 10,
      probeTimeoutMs: 100,
      policy: 'majority',
      probe: 'auto',
      onSourceUnreachable: 'ping',
      jitter: 0.2,
      initialization: { policy: 'one', timeoutMs: 100 },
      cache: { get: async () => undefined, put: async () => {} },
      sharedMaxAgeMs: 1000,
      sharedColdStartWaitMs: 10,
    };
    const options: Required<FailoverOptions> = {
      members: [fullMember],
      timeoutMs: 100,
      deadlineMs: 1000,
      hedgeAfterMs: 50,
      retryAmbiguousWrites: true,
      requestFailover: false,
      circuit,
      gracePeriodMs: 1000,
      health,
      proximity: true,
      allowInsecureHttp: true,
      readYourWrites: false,
      cancellation: 'always',
      enableAutoPipelining: true,
      automaticDeserialization: false,
      fetch,
      on: { switch: fn, health: fn, failure: fn },
      now: Date.now,
    };
    expect(() => resolveOptions(options)).not.toThrow();
    expect(() => createFailoverRedis(options)).not.toThrow();
    // Every key of DEFAULTS is one of them, where it belongs.
    const keys = new Set<string>();
    const collect = (value: unknown) => {
      if (typeof value !== 'object' || value === null) return;
      for (const [k, v] of Object.entries(value)) {
        keys.add(k);
        collect(v);
      }
    };
    collect(options);
    const defaults = new Set<string>();
    const collectDefaults = (value: object) => {
      for (const [k, v] of Object.entries(value)) {
        defaults.add(k);
        if (typeof v === 'object') collectDefaults(v);
      }
    };
    collectDefaults(DEFAULTS);
    expect([...defaults].filter((k) => !keys.has(k))).toEqual([]);
  });

  it('never echoes a token, nor a key that could be one or a URL', () => {
    const { field, message } = refusal({ members: [member({ tokne: SECRET })] });
    expect(field).toBe('members[0] ("a").tokne');
    expect(message).not.toContain(SECRET);
    expect(refusal({ members: [member({ [SECRET]: true })] }).field).toBe('members[0] ("a").?');
    expect(refusal({ 'https://a.example.com': SECRET }).field).toBe('?');
    expect(refusal({ ['A'.repeat(41)]: 1 }).field).toBe('?');
  });

  it('leaves the adapters’ own settings to the adapters', () => {
    const options = { members: [member()], health: { enabled: false } };
    // serverless / hono (`variable`, `hints`) / the status handler (`hideUrls`, `cacheControl`)
    const adapterSource = {
      ...options,
      requestDeadlineMs: 100,
      pin: false,
      memberHeader: true,
      serverTiming: 'redis',
      waitUntil: () => {},
      flushTimeoutMs: 100,
      hints: () => undefined,
      variable: 'cache',
      hideUrls: true,
      cacheControl: 'no-store',
    };
    expect(() => clientFor(adapterSource)).not.toThrow();
    // ... but a client option misspelt there is still refused.
    expect(fieldOf(() => clientFor({ ...adapterSource, timeoutMS: 100 } as never))).toBe(
      'timeoutMS',
    );
    // workers: members from env, the env and scheduledRefresh settings beside client options.
    const env = {
      R_MEMBERS: JSON.stringify([{ name: 'a', url: 'https://a.example.com' }]),
      R_TOKEN_A: SECRET,
    };
    const workerOptions = {
      membersVar: 'R_MEMBERS',
      tokenPrefix: 'R_TOKEN_',
      availabilityPasswordPrefix: 'R_PW_',
      allowInlineSecrets: false,
      tuningPrefix: 'R_',
      healthKv: false as const,
      requestDeadlineMs: 100,
      pin: true,
      memberHeader: true,
      serverTiming: true,
      waitUntil: () => {},
      flushTimeoutMs: 100,
      hints: () => undefined,
      crons: ['* * * * *'],
      onRefresh: () => {},
      onPublishError: () => {},
      health: { enabled: false },
    };
    expect(() => clientFor(workerClientSource(env, workerOptions))).not.toThrow();
    expect(
      fieldOf(() =>
        clientFor(workerClientSource(env, { ...workerOptions, gracePeriod: 1 } as never)),
      ),
    ).toBe('gracePeriod');
  });
});
