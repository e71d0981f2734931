/**
 * Client configuration from a Worker's `env`: the member list as JSON in one plain var, each
 * member's token in its own secret. Tokens never sit in the JSON (a `[vars]` value is committed
 * to `wrangler.toml` and shown in the dashboard), and a rotated token is one `wrangler secret
 * put`. Errors name the variable to set and never print a value.
 */
import type { AvailabilityConfig, FailoverOptions, MemberConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { type KVNamespaceLike, kvHealthCache } from '../health/shared.js';
import type { MemberLocation } from '../selector.js';

/** Names of the variables read from `env`, and what may come from them. */
export interface EnvOptions {
  /** Variable holding the members as JSON (string, or an array in `[vars]`). Default `REDIS_MEMBERS`. */
  membersVar?: string;
  /** Token of member `name` is read from `<tokenPrefix><NAME>`. Default `REDIS_TOKEN_`. */
  tokenPrefix?: string;
  /** Availability API password of member `name`: `<prefix><NAME>`. Default `REDIS_AVAILABILITY_PASSWORD_`. */
  availabilityPasswordPrefix?: string;
  /**
   * Accept `token` / `availability.password` inside the members JSON (only sensible when the
   * whole JSON is itself a secret). Default false.
   */
  allowInlineSecrets?: boolean;
  /** Prefix of the tuning variables (`REDIS_TIMEOUT_MS`...). Default `REDIS_`. */
  tuningPrefix?: string;
  /**
   * KV binding for shared health (written by `scheduledRefresh`, read by requests); `false`
   * to not use one. Used when the binding exists. Default `HEALTH`.
   */
  healthKv?: string | false;
}

export const ENV_DEFAULTS = {
  membersVar: 'REDIS_MEMBERS',
  tokenPrefix: 'REDIS_TOKEN_',
  availabilityPasswordPrefix: 'REDIS_AVAILABILITY_PASSWORD_',
  tuningPrefix: 'REDIS_',
  healthKv: 'HEALTH',
} as const;

/** `us-east-1` -> `US_EAST_1`: the suffix of a member's secret variables. */
export function envSuffix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

function envError(variable: string, problem: string): ConfigError {
  return new ConfigError(`env.${variable}`, problem);
}

/** The fields a member of the members variable, and its `availability`, may have. */
const MEMBER_KEYS = ['name', 'url', 'token', 'tokenVar', 'weight', 'location', 'availability'];
const AVAILABILITY_KEYS = ['url', 'bdbUid', 'username', 'password', 'lagToleranceMs', 'local'];

/**
 * This JSON has no type checker: a misspelt field (`wieght`, `availabilty`, `lagToleranceMS`)
 * would silently fall back to its default. The message names the field, not its value.
 */
function onlyKnown(object: object, keys: string[], field: string): void {
  for (const key of Object.keys(object)) {
    if (!keys.includes(key)) throw envError(`${field}.${key}`, `is not one of ${keys.join(', ')}`);
  }
}

function read(env: unknown, name: string): unknown {
  if (typeof env !== 'object' || env === null) return undefined;
  return (env as Record<string, unknown>)[name];
}

/** A secret var: a non-empty string. The message says where to set it, never what it holds. */
function secret(env: unknown, variable: string, what: string): string {
  const value = read(env, variable);
  if (value === undefined || value === null) {
    throw envError(
      variable,
      `is not set (${what}); add it with \`wrangler secret put ${variable}\`, or to .dev.vars for wrangler dev`,
    );
  }
  if (typeof value !== 'string') throw envError(variable, `must be a string (${what})`);
  if (value.trim() === '') throw envError(variable, `is empty (${what})`);
  return value.trim();
}

function parseMembers(env: unknown, variable: string): unknown[] {
  const raw = read(env, variable);
  if (raw === undefined || raw === null) {
    throw envError(
      variable,
      'is not set; set it to a JSON array of members, e.g. [{"name":"a","url":"https://...","weight":2}], in wrangler.toml [vars] or .dev.vars',
    );
  }
  let parsed: unknown = raw;
  if (typeof raw === 'string') {
    try {
      parsed = JSON.parse(raw);
    } catch {
      // The parser's message quotes the input, which may hold a token pasted by mistake.
      throw envError(variable, 'is not valid JSON');
    }
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw envError(variable, 'must be a non-empty JSON array of members');
  }
  return parsed;
}

interface MemberJson {
  name?: unknown;
  url?: unknown;
  weight?: unknown;
  location?: unknown;
  availability?: unknown;
  token?: unknown;
  /** Read the token from this variable instead of `<tokenPrefix><NAME>`. */
  tokenVar?: unknown;
}

/**
 * Members from `env`: `REDIS_MEMBERS` = `[{ name, url, weight?, location?, availability? }]`,
 * token of member `a` in `REDIS_TOKEN_A` (or the variable named by its `tokenVar`), and, for
 * members with `availability`, the API password in `REDIS_AVAILABILITY_PASSWORD_A`. Field
 * values (URLs, weights...) are checked by `createFailoverRedis` with field-named errors.
 */
export function membersFromEnv(env: unknown, options: EnvOptions = {}): MemberConfig[] {
  const membersVar = options.membersVar ?? ENV_DEFAULTS.membersVar;
  const tokenPrefix = options.tokenPrefix ?? ENV_DEFAULTS.tokenPrefix;
  const passwordPrefix =
    options.availabilityPasswordPrefix ?? ENV_DEFAULTS.availabilityPasswordPrefix;
  const inline = options.allowInlineSecrets === true;
  const entries = parseMembers(env, membersVar);
  // Members reading `<tokenPrefix><SUFFIX>` (no tokenVar), and members reading
  // `<passwordPrefix><SUFFIX>` (availability without an inline password), by suffix.
  const tokenSuffixes = new Map<string, string>();
  const passwordSuffixes = new Map<string, string>();

  return entries.map((entry, i) => {
    const field = `${membersVar}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw envError(field, 'must be an object');
    }
    const m = entry as MemberJson;
    onlyKnown(m, MEMBER_KEYS, field);
    if (typeof m.name !== 'string' || m.name.trim() === '') {
      throw envError(`${field}.name`, 'must be a non-empty string');
    }
    const name = m.name;
    const suffix = envSuffix(name);
    // A member with its own tokenVar reads no derived token variable, so it clashes with none.
    if (m.tokenVar === undefined) {
      const clash = tokenSuffixes.get(suffix);
      if (clash !== undefined) {
        throw envError(
          `${field}.name`,
          `"${name}" and "${clash}" would both read ${tokenPrefix}${suffix}; rename one or give it a tokenVar`,
        );
      }
      tokenSuffixes.set(suffix, name);
    }

    let token: string;
    if (m.token !== undefined) {
      if (!inline) {
        throw envError(
          `${field}.token`,
          `tokens do not belong in ${membersVar} (a plain var); put member "${name}"'s token in the secret ${tokenPrefix}${suffix}`,
        );
      }
      if (typeof m.token !== 'string' || m.token === '') {
        throw envError(`${field}.token`, 'must be a non-empty string');
      }
      token = m.token;
    } else {
      // A name, checked before it goes into any message: a token pasted here by mistake must not.
      if (
        m.tokenVar !== undefined &&
        (typeof m.tokenVar !== 'string' || !/^[A-Za-z_]\w*$/.test(m.tokenVar))
      ) {
        throw envError(`${field}.tokenVar`, 'must be the name of a variable (letters, digits, _)');
      }
      const variable = (m.tokenVar as string | undefined) ?? `${tokenPrefix}${suffix}`;
      token = secret(env, variable, `the token of member "${name}"`);
    }

    const member: MemberConfig = { name, url: m.url as string, token };
    if (m.weight !== undefined) member.weight = m.weight as number;
    if (m.location !== undefined) member.location = m.location as MemberLocation;
    if (m.availability !== undefined) {
      const a = m.availability as Partial<AvailabilityConfig> | null;
      if (typeof a !== 'object' || a === null) {
        throw envError(`${field}.availability`, 'must be an object');
      }
      onlyKnown(a, AVAILABILITY_KEYS, `${field}.availability`);
      let password = a.password;
      if (password !== undefined && !inline) {
        throw envError(
          `${field}.availability.password`,
          `passwords do not belong in ${membersVar}; put it in the secret ${passwordPrefix}${suffix}`,
        );
      }
      if (password === undefined) {
        const clash = passwordSuffixes.get(suffix);
        if (clash !== undefined) {
          throw envError(
            `${field}.name`,
            `"${name}" and "${clash}" would both read ${passwordPrefix}${suffix}; rename one`,
          );
        }
        passwordSuffixes.set(suffix, name);
        password = secret(
          env,
          `${passwordPrefix}${suffix}`,
          `the availability API password of member "${name}"`,
        );
      }
      member.availability = { ...a, password } as AvailabilityConfig;
    }
    return member;
  });
}

/** The tuning variables `failoverOptionsFromEnv` reads (after the `REDIS_` prefix). */
const NUMERIC_VARS = {
  TIMEOUT_MS: 'timeoutMs',
  DEADLINE_MS: 'deadlineMs',
  GRACE_PERIOD_MS: 'gracePeriodMs',
  HEDGE_AFTER_MS: 'hedgeAfterMs',
} as const;

const HEALTH_NUMERIC_VARS = {
  HEALTH_INTERVAL_MS: 'intervalMs',
  HEALTH_PROBE_TIMEOUT_MS: 'probeTimeoutMs',
} as const;

const TUNING_SUFFIXES = [
  ...Object.keys(NUMERIC_VARS),
  ...Object.keys(HEALTH_NUMERIC_VARS),
  'PROXIMITY',
];

/** `GRACE_PERIOD_MS`, `GracePeriod`, `GRACEPERIOD_MS` and `GRACE_PERIOD` all read `GRACEPERIOD`. */
const looseSuffix = (suffix: string) => suffix.toUpperCase().replace(/_|MS$/g, '');

/**
 * A variable that is a near miss of a tuning variable (`REDIS_GRACE_PERIOD`, `REDIS_TimeoutMs`)
 * would be ignored silently, and the deployed worker keep its defaults. Only near misses are
 * refused: an app's env holds other `REDIS_*` variables of its own.
 */
function refuseNearMisses(env: unknown, prefix: string): void {
  if (typeof env !== 'object' || env === null) return;
  for (const variable of Object.keys(env)) {
    if (!variable.toUpperCase().startsWith(prefix.toUpperCase())) continue;
    const suffix = variable.slice(prefix.length);
    if (TUNING_SUFFIXES.includes(suffix)) continue;
    const meant = TUNING_SUFFIXES.find((known) => looseSuffix(known) === looseSuffix(suffix));
    if (meant) {
      throw envError(
        variable,
        `is not read; did you mean ${prefix}${meant}? (or set tuningPrefix if this variable is not for redis-edge-failover)`,
      );
    }
  }
}

function numberVar(env: unknown, variable: string): number | undefined {
  const value = read(env, variable);
  if (value === undefined || value === null || value === '') return undefined;
  // A number or its text only: Number(true) is 1 and Number(["5000"]) 5000.
  const n = typeof value === 'number' || typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) throw envError(variable, 'must be a positive number');
  return n;
}

function booleanVar(env: unknown, variable: string): boolean | undefined {
  const value = read(env, variable);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  const text = String(value).toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw envError(variable, 'must be true or false');
}

function isKv(value: unknown): value is KVNamespaceLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as KVNamespaceLike).get === 'function' &&
    typeof (value as KVNamespaceLike).put === 'function'
  );
}

/** The KV namespace for shared health, when the binding exists. */
export function healthKvFromEnv(env: unknown, options: EnvOptions = {}) {
  const binding = options.healthKv ?? ENV_DEFAULTS.healthKv;
  if (binding === false) return undefined;
  const kv = read(env, binding);
  if (kv === undefined) return undefined;
  if (!isKv(kv)) throw envError(binding, 'must be a KV namespace binding');
  return kv;
}

/**
 * Client options from `env`: members (see `membersFromEnv`), tuning from `REDIS_TIMEOUT_MS`,
 * `REDIS_DEADLINE_MS`, `REDIS_GRACE_PERIOD_MS`, `REDIS_HEDGE_AFTER_MS`, `REDIS_PROXIMITY`,
 * `REDIS_HEALTH_INTERVAL_MS`, `REDIS_HEALTH_PROBE_TIMEOUT_MS` when set, and shared health
 * from the `HEALTH` KV binding when bound. `base` supplies everything else (listeners,
 * circuit...); a variable that is set wins over `base`, so operators can retune a deployed
 * worker without a code change.
 */
export function failoverOptionsFromEnv(
  env: unknown,
  options: EnvOptions = {},
  base: Partial<FailoverOptions> = {},
): FailoverOptions {
  const prefix = options.tuningPrefix ?? ENV_DEFAULTS.tuningPrefix;
  refuseNearMisses(env, prefix);
  const result: FailoverOptions = {
    ...base,
    members: base.members ?? membersFromEnv(env, options),
  };
  for (const [suffix, key] of Object.entries(NUMERIC_VARS)) {
    const value = numberVar(env, `${prefix}${suffix}`);
    if (value !== undefined) result[key] = value;
  }
  const proximity = booleanVar(env, `${prefix}PROXIMITY`);
  if (proximity !== undefined) result.proximity = proximity;
  const health = { ...base.health };
  let healthChanged = false;
  for (const [suffix, key] of Object.entries(HEALTH_NUMERIC_VARS)) {
    const value = numberVar(env, `${prefix}${suffix}`);
    if (value !== undefined) {
      health[key] = value;
      healthChanged = true;
    }
  }
  if (health.cache === undefined) {
    const kv = healthKvFromEnv(env, options);
    if (kv) {
      // A new cache per call is fine: its write throttle is kept per binding, not per cache.
      health.cache = kvHealthCache(kv);
      healthChanged = true;
    }
  }
  if (healthChanged) result.health = health;
  return result;
}
