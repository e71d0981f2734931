/**
 * Options, their defaults (in one place), and validation that names the offending field.
 *
 * Validation is hand-written rather than a schema library: the checks are few, the errors must
 * name the member without echoing its token, and the client bundle has a 10 KB budget.
 */
import type { CircuitSettings } from './circuit.js';
import { ConfigError } from './errors.js';
import type { FailoverListener } from './events.js';
import type { ProbePolicy } from './health/policy.js';
import type { CustomProbe } from './health/probes.js';
import type { HealthCache } from './health/shared.js';
import type { MemberLocation } from './selector.js';

export interface AvailabilityConfig {
  /** Base URL of the cluster REST API, e.g. `https://cluster.example.com:9443`. */
  url: string;
  /** Database uid; discovered through `/v1/bdbs?fields=uid,endpoints` when omitted. */
  bdbUid?: number;
  username: string;
  password: string;
  /** Most replication lag (ms) this member may have to be failed back to; default 5000. */
  lagToleranceMs?: number;
  /** Use `/v1/local/bdbs/{uid}/endpoint/availability` (the node answers for itself). */
  local?: boolean;
}

export interface MemberConfig {
  /** Unique name, used in events, errors and `setActiveMember`. */
  name: string;
  /** REST base URL of the member (Upstash, or this project's gateway). */
  url: string;
  /** Bearer token; sent to this member's URL only. */
  token: string;
  /** Priority: the healthy member with the highest weight is preferred. Default 1. */
  weight?: number;
  location?: MemberLocation;
  availability?: AvailabilityConfig;
}

export interface CircuitOptions {
  /** Trip after this many member failures in a row; `false` disables. Default 3. */
  consecutiveFailures?: number | false;
  /** Trip on a failure rate over a window; `false` disables. */
  failureRate?: { threshold?: number; minimumFailures?: number; windowMs?: number } | false;
}

export interface HealthOptions {
  /** Probe members in the background at all. Default true. */
  enabled?: boolean;
  /** A store older than this is refreshed by the next request (stale-while-revalidate). Default 5000. */
  intervalMs?: number;
  /** Probes per member per check. Default 1 (the anchors use 3; see the README). */
  probes?: number;
  /** Pause between probes of one check. Default 500. */
  probeDelayMs?: number;
  /** Timeout of one probe. Default 1000. */
  probeTimeoutMs?: number;
  /** How many probes must pass: `all` (default), `majority` or `any`. */
  policy?: ProbePolicy;
  /**
   * `auto` (default): the availability API where configured, else REST `PING`; `ping`;
   * `availability`; or your own function.
   */
  probe?: 'auto' | 'ping' | 'availability' | CustomProbe;
  /**
   * When the availability API cannot be reached but the member might be fine: `ping` (default)
   * asks the member itself; `unhealthy` treats the member as down.
   */
  onSourceUnreachable?: 'ping' | 'unhealthy';
  /** Random spread of the interval, as a fraction. Default 0.1. */
  jitter?: number;
  /** Let a cold isolate's first request wait (bounded) for a first verdict. Off by default. */
  initialization?: { policy: 'one' | 'majority' | 'all'; timeoutMs: number };
  /** Shared health between isolates (Workers KV or Cache API). */
  cache?: HealthCache;
  /** A shared record older than this is ignored. Default 120000 (two cron minutes). */
  sharedMaxAgeMs?: number;
  /** How long a cold isolate's first request waits for the shared record. Default 250. */
  sharedColdStartWaitMs?: number;
}

export interface FailoverOptions {
  members: MemberConfig[];
  /** Per-attempt timeout (ms). Default 1500. */
  timeoutMs?: number;
  /** Budget for one command across all its attempts (ms). Default 5000. */
  deadlineMs?: number;
  /** Send a read to the next member too if the first has not answered after this many ms. */
  hedgeAfterMs?: number;
  /** Retry non-idempotent writes whose outcome is unknown (may run them twice). Default false. */
  retryAmbiguousWrites?: boolean;
  /**
   * Move a failed call to the next member within the same call. Default true. `false` gives
   * the anchors' behaviour: a call tries the active member only, and traffic moves only when
   * the circuit or a health check says so.
   */
  requestFailover?: boolean;
  circuit?: CircuitOptions;
  /** How long a failed member stays out, and how long it must be healthy before failback. */
  gracePeriodMs?: number;
  /** Background health checks and shared health. */
  health?: HealthOptions;
  /** Rank members by distance to the request (`request.cf`) instead of weight alone. */
  proximity?: boolean;
  /** Allow `http://` URLs to non-loopback hosts. Default false. */
  allowInsecureHttp?: boolean;
  /** Echo each member's own `upstash-sync-token` back to it. Default true. */
  readYourWrites?: boolean;
  /** Batch commands issued in the same tick into one pipeline (as `@upstash/redis` does). Default false. */
  enableAutoPipelining?: boolean;
  /** `fetch` to use (defaults to the global one). */
  fetch?: typeof fetch;
  /** Event listeners, same as calling `on()` after construction. */
  on?: {
    switch?: FailoverListener<'switch'>;
    health?: FailoverListener<'health'>;
    failure?: FailoverListener<'failure'>;
  };
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

export interface ResolvedMember {
  name: string;
  url: string;
  token: string;
  weight: number;
  location?: MemberLocation;
  availability?: AvailabilityConfig;
}

export interface ResolvedHealthOptions {
  enabled: boolean;
  intervalMs: number;
  probes: number;
  probeDelayMs: number;
  probeTimeoutMs: number;
  policy: ProbePolicy;
  probe: 'auto' | 'ping' | 'availability' | CustomProbe;
  onSourceUnreachable: 'ping' | 'unhealthy';
  jitter: number;
  initialization: { policy: 'one' | 'majority' | 'all'; timeoutMs: number } | undefined;
  cache: HealthCache | undefined;
  sharedMaxAgeMs: number;
  sharedColdStartWaitMs: number;
  /** A refresh running longer than this is presumed lost (its request ended). */
  staleRefreshMs: number;
}

export interface ResolvedOptions {
  members: ResolvedMember[];
  timeoutMs: number;
  deadlineMs: number;
  hedgeAfterMs: number | undefined;
  retryAmbiguousWrites: boolean;
  requestFailover: boolean;
  circuit: CircuitSettings;
  health: ResolvedHealthOptions;
  proximity: boolean;
  allowInsecureHttp: boolean;
  readYourWrites: boolean;
  enableAutoPipelining: boolean;
  fetch: typeof fetch | undefined;
  now: () => number;
}

/**
 * Defaults, and why they differ from the Jedis / redis-py ones: an edge isolate sees a handful
 * of requests, so a breaker needing 1000 failures would never trip; a few consecutive failures
 * are the signal we get. Everything else follows the anchors.
 */
export const DEFAULTS = {
  weight: 1,
  timeoutMs: 1500,
  deadlineMs: 5000,
  consecutiveFailures: 3,
  failureRate: { threshold: 0.5, minimumFailures: 3, windowMs: 10_000 },
  gracePeriodMs: 60_000,
  lagToleranceMs: 5000,
  health: {
    intervalMs: 5000,
    probes: 1,
    probeDelayMs: 500,
    probeTimeoutMs: 1000,
    policy: 'all',
    jitter: 0.1,
    sharedMaxAgeMs: 120_000,
    sharedColdStartWaitMs: 250,
  },
} as const;

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function positiveNumber(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a positive number, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'number' ? String(value) : typeof value;
}

export function validateUrl(field: string, value: unknown, allowInsecureHttp: boolean): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ConfigError(field, 'must be a non-empty URL string');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(field, 'is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(field, `must use https:// (got ${url.protocol})`);
  }
  // A URL is shown in snapshots and is part of the shared-health key: no secrets in it.
  if (url.username || url.password || url.searchParams.has('_token')) {
    throw new ConfigError(field, 'must not contain credentials; use the token option');
  }
  if (url.protocol === 'http:' && !allowInsecureHttp && !isLoopback(url.hostname)) {
    throw new ConfigError(
      field,
      'uses http:// to a non-loopback host; use https:// or set allowInsecureHttp',
    );
  }
  return value.replace(/\/+$/, '');
}

function validateLocation(field: string, value: unknown): MemberLocation | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null)
    throw new ConfigError(field, 'must be an object');
  const loc = value as MemberLocation;
  if (loc.lat !== undefined && (typeof loc.lat !== 'number' || Math.abs(loc.lat) > 90)) {
    throw new ConfigError(`${field}.lat`, 'must be a latitude between -90 and 90');
  }
  if (loc.lon !== undefined && (typeof loc.lon !== 'number' || Math.abs(loc.lon) > 180)) {
    throw new ConfigError(`${field}.lon`, 'must be a longitude between -180 and 180');
  }
  if (
    loc.colos !== undefined &&
    (!Array.isArray(loc.colos) || loc.colos.some((c) => typeof c !== 'string'))
  ) {
    throw new ConfigError(`${field}.colos`, 'must be an array of strings');
  }
  return loc;
}

function validateAvailability(
  field: string,
  value: unknown,
  allowInsecureHttp: boolean,
): AvailabilityConfig | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null)
    throw new ConfigError(field, 'must be an object');
  const a = value as AvailabilityConfig;
  const url = validateUrl(`${field}.url`, a.url, allowInsecureHttp);
  if (typeof a.username !== 'string' || a.username.length === 0) {
    throw new ConfigError(`${field}.username`, 'must be a non-empty string');
  }
  if (typeof a.password !== 'string')
    throw new ConfigError(`${field}.password`, 'must be a string');
  if (a.bdbUid !== undefined && (!Number.isInteger(a.bdbUid) || a.bdbUid <= 0)) {
    throw new ConfigError(`${field}.bdbUid`, 'must be a positive integer');
  }
  return {
    ...a,
    url,
    lagToleranceMs: positiveNumber(
      `${field}.lagToleranceMs`,
      a.lagToleranceMs,
      DEFAULTS.lagToleranceMs,
    ),
  };
}

export function validateMember(
  field: string,
  value: unknown,
  allowInsecureHttp: boolean,
): ResolvedMember {
  if (typeof value !== 'object' || value === null)
    throw new ConfigError(field, 'must be an object');
  const m = value as MemberConfig;
  if (typeof m.name !== 'string' || m.name.length === 0) {
    throw new ConfigError(`${field}.name`, 'must be a non-empty string');
  }
  const at = `${field} ("${m.name}")`;
  if (typeof m.token !== 'string' || m.token.length === 0) {
    throw new ConfigError(`${at}.token`, 'must be a non-empty string');
  }
  const member: ResolvedMember = {
    name: m.name,
    url: validateUrl(`${at}.url`, m.url, allowInsecureHttp),
    token: m.token,
    weight: positiveNumber(`${at}.weight`, m.weight, DEFAULTS.weight),
  };
  const location = validateLocation(`${at}.location`, m.location);
  if (location) member.location = location;
  const availability = validateAvailability(
    `${at}.availability`,
    m.availability,
    allowInsecureHttp,
  );
  if (availability) member.availability = availability;
  return member;
}

function resolveCircuit(options: FailoverOptions, gracePeriodMs: number): CircuitSettings {
  const c = options.circuit ?? {};
  if (typeof c !== 'object') throw new ConfigError('circuit', 'must be an object');
  const consecutive =
    c.consecutiveFailures === false
      ? false
      : {
          threshold: positiveNumber(
            'circuit.consecutiveFailures',
            c.consecutiveFailures,
            DEFAULTS.consecutiveFailures,
          ),
        };
  let rate: CircuitSettings['rate'] = false;
  if (c.failureRate !== false) {
    const r = c.failureRate ?? {};
    const threshold = positiveNumber(
      'circuit.failureRate.threshold',
      r.threshold,
      DEFAULTS.failureRate.threshold,
    );
    if (threshold > 1) throw new ConfigError('circuit.failureRate.threshold', 'must be at most 1');
    rate = {
      threshold,
      minimumFailures: positiveNumber(
        'circuit.failureRate.minimumFailures',
        r.minimumFailures,
        DEFAULTS.failureRate.minimumFailures,
      ),
      windowMs: positiveNumber(
        'circuit.failureRate.windowMs',
        r.windowMs,
        DEFAULTS.failureRate.windowMs,
      ),
    };
  }
  return { consecutive, rate, gracePeriodMs };
}

function oneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new ConfigError(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return value as T;
}

function resolveHealth(value: unknown): ResolvedHealthOptions {
  const h = (value ?? {}) as HealthOptions;
  if (typeof h !== 'object' || h === null) throw new ConfigError('health', 'must be an object');
  const d = DEFAULTS.health;
  const probes = positiveNumber('health.probes', h.probes, d.probes);
  if (!Number.isInteger(probes)) throw new ConfigError('health.probes', 'must be a whole number');
  const probeDelayMs =
    h.probeDelayMs === 0
      ? 0
      : positiveNumber('health.probeDelayMs', h.probeDelayMs, d.probeDelayMs);
  const probeTimeoutMs = positiveNumber(
    'health.probeTimeoutMs',
    h.probeTimeoutMs,
    d.probeTimeoutMs,
  );
  const jitter = h.jitter === 0 ? 0 : positiveNumber('health.jitter', h.jitter, d.jitter);
  if (jitter >= 1) throw new ConfigError('health.jitter', 'must be below 1');
  const probe =
    typeof h.probe === 'function'
      ? h.probe
      : oneOf('health.probe', h.probe, ['auto', 'ping', 'availability'] as const, 'auto');
  let initialization: ResolvedHealthOptions['initialization'];
  if (h.initialization !== undefined) {
    const i = h.initialization;
    if (typeof i !== 'object' || i === null) {
      throw new ConfigError('health.initialization', 'must be an object');
    }
    initialization = {
      policy: oneOf(
        'health.initialization.policy',
        i.policy,
        ['one', 'majority', 'all'] as const,
        'one',
      ),
      timeoutMs: positiveNumber('health.initialization.timeoutMs', i.timeoutMs, 1000),
    };
  }
  if (
    h.cache !== undefined &&
    (typeof h.cache !== 'object' ||
      typeof h.cache.get !== 'function' ||
      typeof h.cache.put !== 'function')
  ) {
    throw new ConfigError('health.cache', 'must have get(key) and put(key, value)');
  }
  return {
    enabled: h.enabled !== false,
    intervalMs: positiveNumber('health.intervalMs', h.intervalMs, d.intervalMs),
    probes,
    probeDelayMs,
    probeTimeoutMs,
    policy: oneOf('health.policy', h.policy, ['all', 'majority', 'any'] as const, d.policy),
    probe,
    onSourceUnreachable: oneOf(
      'health.onSourceUnreachable',
      h.onSourceUnreachable,
      ['ping', 'unhealthy'] as const,
      'ping',
    ),
    jitter,
    initialization,
    cache: h.cache,
    sharedMaxAgeMs: positiveNumber('health.sharedMaxAgeMs', h.sharedMaxAgeMs, d.sharedMaxAgeMs),
    sharedColdStartWaitMs: positiveNumber(
      'health.sharedColdStartWaitMs',
      h.sharedColdStartWaitMs,
      d.sharedColdStartWaitMs,
    ),
    staleRefreshMs: 2 * probes * (probeTimeoutMs + probeDelayMs) + 2 * probeTimeoutMs,
  };
}

export function resolveOptions(options: FailoverOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object');
  }
  const allowInsecureHttp = options.allowInsecureHttp === true;
  if (!Array.isArray(options.members) || options.members.length === 0) {
    throw new ConfigError('members', 'must be a non-empty array');
  }
  const members = options.members.map((m, i) =>
    validateMember(`members[${i}]`, m, allowInsecureHttp),
  );
  const seen = new Set<string>();
  members.forEach((m, i) => {
    if (seen.has(m.name)) throw new ConfigError(`members[${i}].name`, `duplicate name "${m.name}"`);
    seen.add(m.name);
  });
  const gracePeriodMs = positiveNumber(
    'gracePeriodMs',
    options.gracePeriodMs,
    DEFAULTS.gracePeriodMs,
  );
  const timeoutMs = positiveNumber('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs);
  const deadlineMs = positiveNumber('deadlineMs', options.deadlineMs, DEFAULTS.deadlineMs);
  const hedgeAfterMs =
    options.hedgeAfterMs === undefined
      ? undefined
      : positiveNumber('hedgeAfterMs', options.hedgeAfterMs, 0);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ConfigError('fetch', 'must be a function');
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new ConfigError('now', 'must be a function');
  }
  return {
    members,
    timeoutMs,
    deadlineMs,
    hedgeAfterMs,
    retryAmbiguousWrites: options.retryAmbiguousWrites === true,
    requestFailover: options.requestFailover !== false,
    circuit: resolveCircuit(options, gracePeriodMs),
    health: resolveHealth(options.health),
    proximity: options.proximity === true,
    allowInsecureHttp,
    readYourWrites: options.readYourWrites !== false,
    enableAutoPipelining: options.enableAutoPipelining === true,
    fetch: options.fetch,
    now: options.now ?? Date.now,
  };
}
