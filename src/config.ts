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
   * the anchors' routing: a call tries the active member only, and traffic moves only when the
   * circuit or a health check says so (without their retries on that member).
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
  /**
   * When a timed-out attempt's request is also aborted on the wire. Every attempt ends at its
   * timeout either way. `'after-failure'` (default): only attempts to a member that timed out
   * or dropped a connection in the last 5 minutes carry an AbortSignal, the others a timer
   * alone (Node 20's undici spends ~25 µs of CPU on any signal). `'always'`: every attempt;
   * the default on Cloudflare Workers, where a request abandoned without a signal would keep
   * one of the six connections an invocation may have waiting for headers.
   */
  cancellation?: 'after-failure' | 'always';
  /** Batch commands issued in the same tick into one pipeline (as `@upstash/redis` does). Default false. */
  enableAutoPipelining?: boolean;
  /** Parse string replies as JSON, as `@upstash/redis` does by default. Default true. */
  automaticDeserialization?: boolean;
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
  cancellation: 'after-failure' | 'always';
  enableAutoPipelining: boolean;
  automaticDeserialization: boolean;
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

/*
 * Validation. Each rule and each message lives once, in the helpers below, and groups of
 * numeric options are read in a loop over their DEFAULTS: the client bundle has a 10 KB gzip
 * budget. No message echoes the rejected value, so a token in the wrong option is never logged.
 */

/** Every message says what the option must be. */
function mustBe(field: string, expected: string): never {
  throw new ConfigError(field, `must be ${expected}`);
}

/** Any non-null object (arrays included, as they always were). */
function obj<T>(field: string, value: unknown): T {
  if (typeof value !== 'object' || value === null) mustBe(field, 'an object');
  return value as T;
}

/** A string, non-empty unless `empty` is set. */
function str(field: string, value: unknown, empty = false): string {
  if (typeof value !== 'string' || !(empty || value)) {
    mustBe(field, empty ? 'a string' : 'a non-empty string');
  }
  return value;
}

/** The kinds of number an option can be; each name is also what its error message says. */
const NUMBER_RULES = {
  'positive number': (n: number) => n > 0,
  'positive integer': (n: number) => n > 0 && Number.isInteger(n),
  'number >= 0': (n: number) => n >= 0,
  'number in (0, 1]': (n: number) => n > 0 && n <= 1,
  'number in [0, 1)': (n: number) => n >= 0 && n < 1,
};
type NumberRule = keyof typeof NUMBER_RULES;

/**
 * The longest delay a timer keeps: larger ones fire at once in every JavaScript runtime, so a
 * duration option (its name ends in `Ms`) is capped here; `3e9` still means "practically never".
 */
const MAX_DELAY_MS = 2_147_483_647;

/** A finite number following `rule`, or `fallback` when the option is absent. */
function num<F extends number | undefined>(
  field: string,
  value: unknown,
  fallback: F,
  rule: NumberRule = 'positive number',
): number | F {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || !NUMBER_RULES[rule](value as number)) mustBe(field, `a ${rule}`);
  const n = (value as number) || 0; // -0 is returned as 0
  return field.endsWith('Ms') ? Math.min(n, MAX_DELAY_MS) : n;
}

/**
 * A group of numeric options in one loop: each key of `defaults` is read from `input`, checked
 * (a positive number unless `rules` says otherwise) and named `${path}${key}` in errors.
 */
function numbers<D extends Record<string, number | undefined>>(
  path: string,
  input: object,
  defaults: D,
  rules: { [K in keyof D]?: NumberRule } = {},
): { [K in keyof D]: number | D[K] } {
  const out: Record<string, number | undefined> = {};
  for (const key in defaults) {
    out[key] = num(path + key, (input as D)[key], defaults[key], rules[key]);
  }
  return out as { [K in keyof D]: number | D[K] };
}

/** One of `allowed`; absent means `fallback`, the first allowed value unless given. */
function oneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T = allowed[0]!,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) mustBe(field, `one of '${allowed.join("', '")}'`);
  return value as T;
}

/**
 * Jedis / redis-py option names and what we have instead. An unknown key, lower-cased and
 * without `_`, gets the first entry whose name it contains, unless it matched one of the
 * options of its own object that way (which also turns `gracePeriod` into `gracePeriodMs`).
 * Whole anchor names, not words: `retryDelay` or `readPolicy` are no probe settings.
 */
const FAILBACK = 'failback follows gracePeriodMs and cannot be switched off';
const ANCHORS: Record<string, string> = {
  failback: FAILBACK, // failbackSupported, failbackCheckInterval
  autofallback: FAILBACK, // auto_fallback_interval (not fallbackExceptionList)
  retryonfailover: 'requestFailover',
  failoverattempts: 'deadlineMs', // maxNumFailoverAttempts, delayInBetweenFailoverAttempts
  maxattempts: 'deadlineMs',
  failoverdelay: 'deadlineMs',
  delayinbetweenprobes: 'health.probeDelayMs',
  checkdelay: 'health.probeDelayMs', // health_check_delay
  numprobes: 'health.probes',
  checkprobes: 'health.probes', // healthCheckProbes, health_check_probes
  checkinterval: 'health.intervalMs', // healthCheckInterval, health_check_interval
  checktimeout: 'health.probeTimeoutMs',
  initializationpolicy: 'health.initialization',
  initialhealthcheck: 'health.initialization', // initial_health_check_policy
  checkpolicy: 'health.policy', // health_check_policy
  probingpolicy: 'health.policy',
  minnum: 'circuit.failureRate.minimumFailures', // minNumOfFailures, min_num_failures
  failureratethreshold: 'circuit.failureRate.threshold',
  windowmincalls: 'circuit.failureRate.minimumFailures', // slidingWindowMinCalls
  slidingwindow: 'circuit.failureRate.windowMs', // slidingWindowSize
  detectionwindow: 'circuit.failureRate.windowMs', // failures_detection_window
  grace: 'gracePeriodMs', // grace_period (a member's, in redis-py)
  lagaware: 'members[].availability.lagToleranceMs', // lagAwareTolerance
  lagtolerance: 'members[].availability.lagToleranceMs', // availabilityLagTolerance
};

/** A key as compared: `timeoutMS`, `timeout` and `timeout_ms` all match `timeoutMs`. */
const loose = (key: string) => key.toLowerCase().replace(/_|ms$/g, '');

/**
 * Refuses a key of `value` that `keys` (names separated by spaces or commas) does not list: a
 * misspelt or foreign option would otherwise leave its default in place without a word. The
 * message names the option meant when there is an obvious one; a key that could be a token or
 * a URL is not shown.
 */
function known(path: string, value: object, keys: string): void {
  const list = keys.split(/\W/);
  for (const key in value) {
    if (!list.includes(key)) {
      const n = loose(key);
      const hint =
        list.find((k) => loose(k) === n) ??
        ANCHORS[Object.keys(ANCHORS).find((a) => n.includes(a))!];
      throw new ConfigError(
        path + (/^\w{1,40}$/.test(key) ? key : '?'),
        `is not an option${hint ? `; ${hint.includes(' ') ? hint : `did you mean ${hint}?`}` : ''}`,
      );
    }
  }
}

const LOOPBACK = /^(localhost|\[::1\]|127(\.\d+){3})$/;

export function validateUrl(field: string, value: unknown, allowInsecureHttp: boolean): string {
  let url: URL | undefined;
  try {
    url = new URL(value as string);
  } catch {
    // not a URL: reported below, with every other way a URL can be wrong
  }
  // No credentials: a URL is shown in snapshots and is part of the shared-health key.
  // Plain http only to this machine (a local gateway), unless explicitly allowed.
  if (
    typeof value !== 'string' ||
    !url ||
    url.username ||
    url.password ||
    url.searchParams.has('_token') ||
    (url.protocol !== 'https:' &&
      (url.protocol !== 'http:' || !(allowInsecureHttp || LOOPBACK.test(url.hostname))))
  ) {
    mustBe(
      field,
      'an https:// URL without credentials (http:// only to loopback or with allowInsecureHttp)',
    );
  }
  return value.replace(/\/+$/, '');
}

function validateLocation(field: string, value: unknown): MemberLocation {
  const loc = obj<MemberLocation>(field, value);
  known(`${field}.`, loc, 'lat lon colos');
  for (const [key, max] of [
    ['lat', 90],
    ['lon', 180],
  ] as const) {
    const v = loc[key];
    if (v !== undefined && (typeof v !== 'number' || Math.abs(v) > max)) {
      mustBe(`${field}.${key}`, `a number between -${max} and ${max}`);
    }
  }
  const colos: unknown = loc.colos;
  if (colos !== undefined && !(Array.isArray(colos) && colos.every((c) => typeof c === 'string'))) {
    mustBe(`${field}.colos`, 'an array of strings');
  }
  return loc;
}

function validateAvailability(
  field: string,
  value: unknown,
  allowInsecureHttp: boolean,
): AvailabilityConfig {
  const a = obj<AvailabilityConfig>(field, value);
  known(`${field}.`, a, 'url bdbUid username password lagToleranceMs local');
  const url = validateUrl(`${field}.url`, a.url, allowInsecureHttp);
  str(`${field}.username`, a.username);
  str(`${field}.password`, a.password, true);
  num(`${field}.bdbUid`, a.bdbUid, undefined, 'positive integer');
  return {
    ...a,
    url,
    // The API takes whole milliseconds: a fraction is answered 400, which would turn lag off.
    lagToleranceMs: num(
      `${field}.lagToleranceMs`,
      a.lagToleranceMs,
      DEFAULTS.lagToleranceMs,
      'positive integer',
    ),
  };
}

export function validateMember(
  field: string,
  value: unknown,
  allowInsecureHttp: boolean,
): ResolvedMember {
  const m = obj<MemberConfig>(field, value);
  const name = str(`${field}.name`, m.name);
  // From here on errors name the member, which helps with several; never its token.
  const at = `${field} ("${name}")`;
  known(`${at}.`, m, 'name url token weight location availability');
  const token = str(`${at}.token`, m.token);
  // It goes into a header: a line break or control character (two env lines joined, say)
  // would make fetch throw with the header, token and all, in its message.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    mustBe(`${at}.token`, 'printable ASCII without spaces or line breaks');
  }
  const member: ResolvedMember = {
    name,
    url: validateUrl(`${at}.url`, m.url, allowInsecureHttp),
    token,
    weight: num(`${at}.weight`, m.weight, DEFAULTS.weight),
  };
  if (m.location !== undefined) member.location = validateLocation(`${at}.location`, m.location);
  if (m.availability !== undefined) {
    member.availability = validateAvailability(
      `${at}.availability`,
      m.availability,
      allowInsecureHttp,
    );
  }
  return member;
}

function resolveCircuit(value: unknown, gracePeriodMs: number): CircuitSettings {
  const c = obj<CircuitOptions>('circuit', value ?? {});
  known('circuit.', c, 'consecutiveFailures failureRate');
  // Not checked to be an object (it never was): a non-object just has no settings in it.
  const rate = c.failureRate || {};
  if (typeof rate === 'object') {
    known('circuit.failureRate.', rate, `${Object.keys(DEFAULTS.failureRate)}`);
  }
  return {
    consecutive: c.consecutiveFailures !== false && {
      threshold: num(
        'circuit.consecutiveFailures',
        c.consecutiveFailures,
        DEFAULTS.consecutiveFailures,
      ),
    },
    rate:
      c.failureRate !== false &&
      numbers('circuit.failureRate.', rate, DEFAULTS.failureRate, {
        threshold: 'number in (0, 1]',
      }),
    gracePeriodMs,
  };
}

function resolveHealth(value: unknown): ResolvedHealthOptions {
  const h = obj<HealthOptions>('health', value ?? {});
  known(
    'health.',
    h,
    `${Object.keys(DEFAULTS.health)} enabled probe onSourceUnreachable initialization cache`,
  );
  // Every health default but `policy` is a number.
  const { policy, ...numeric } = DEFAULTS.health;
  const n = numbers('health.', h, numeric, {
    probes: 'positive integer',
    probeDelayMs: 'number >= 0',
    jitter: 'number in [0, 1)',
  });
  const { cache, initialization: init } = h;
  if (init !== undefined) {
    known('health.initialization.', obj('health.initialization', init), 'policy timeoutMs');
  }
  if (
    cache !== undefined &&
    (typeof cache?.get !== 'function' || typeof cache.put !== 'function')
  ) {
    mustBe('health.cache', 'an object with get(key) and put(key, value)');
  }
  return {
    ...n,
    enabled: h.enabled !== false,
    policy: oneOf('health.policy', h.policy, ['all', 'majority', 'any'] as const, policy),
    probe:
      typeof h.probe === 'function'
        ? h.probe
        : oneOf('health.probe', h.probe, ['auto', 'ping', 'availability'] as const),
    onSourceUnreachable: oneOf('health.onSourceUnreachable', h.onSourceUnreachable, [
      'ping',
      'unhealthy',
    ] as const),
    initialization:
      init === undefined
        ? undefined
        : {
            policy: oneOf('health.initialization.policy', init.policy, [
              'one',
              'majority',
              'all',
            ] as const),
            timeoutMs: num('health.initialization.timeoutMs', init.timeoutMs, 1000),
          },
    cache,
    // The longest a refresh can take, doubled: per probe an availability check may make five
    // calls (discovery and its retry, the lag check and its retry, the plain check), each up to
    // probeTimeoutMs, then a PING fallback; plus the shared-tier read.
    staleRefreshMs:
      2 * (n.probes * (6 * n.probeTimeoutMs + n.probeDelayMs + 100) + n.probeTimeoutMs),
  };
}

/** `health.probe: 'availability'` asks for the availability API: a member without one is a mistake. */
export function checkProbeSource(field: string, m: ResolvedMember, health: ResolvedHealthOptions) {
  if (health.probe === 'availability' && !m.availability) {
    mustBe(`${field} ("${m.name}").availability`, "set: health.probe is 'availability'");
  }
}

export function resolveOptions(options: FailoverOptions): ResolvedOptions {
  const o = obj<FailoverOptions>('options', options);
  if (o.on != null) known('on.', obj('on', o.on), 'switch health failure');
  const allowInsecureHttp = o.allowInsecureHttp === true;
  if (!Array.isArray(o.members) || o.members.length === 0) {
    mustBe('members', 'a non-empty array');
  }
  const members = o.members.map((m, i) => validateMember(`members[${i}]`, m, allowInsecureHttp));
  const seen = new Set<string>();
  members.forEach((m, i) => {
    // Worded like addMember's refusal of a taken name.
    if (seen.has(m.name)) throw new ConfigError(`members[${i}].name`, `duplicate name "${m.name}"`);
    seen.add(m.name);
  });
  const { gracePeriodMs, ...times } = numbers('', o, {
    gracePeriodMs: DEFAULTS.gracePeriodMs,
    timeoutMs: DEFAULTS.timeoutMs,
    deadlineMs: DEFAULTS.deadlineMs,
    hedgeAfterMs: undefined,
  });
  for (const key of ['fetch', 'now'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') mustBe(key, 'a function');
  }
  const health = resolveHealth(o.health);
  for (const [i, m] of members.entries()) checkProbeSource(`members[${i}]`, m, health);
  const resolved: ResolvedOptions = {
    members,
    ...times,
    retryAmbiguousWrites: o.retryAmbiguousWrites === true,
    requestFailover: o.requestFailover !== false,
    circuit: resolveCircuit(o.circuit, gracePeriodMs),
    health,
    proximity: o.proximity === true,
    allowInsecureHttp,
    readYourWrites: o.readYourWrites !== false,
    cancellation: oneOf(
      'cancellation',
      o.cancellation,
      ['after-failure', 'always'] as const,
      // Cloudflare's documented way to tell Workers apart; read per client, not at module load.
      globalThis.navigator?.userAgent === 'Cloudflare-Workers' ? 'always' : 'after-failure',
    ),
    enableAutoPipelining: o.enableAutoPipelining === true,
    automaticDeserialization: o.automaticDeserialization !== false,
    fetch: o.fetch,
    now: o.now ?? Date.now,
  };
  // Every option is resolved under its own name but these two (`on` is read by the client).
  known('', o, `${Object.keys(resolved)} gracePeriodMs on`);
  return resolved;
}
