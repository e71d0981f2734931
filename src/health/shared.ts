/**
 * Shared health between isolates (beyond the anchors). One place (the cron helper) probes every
 * member, decides the active member and publishes both; isolates read the record instead of
 * probing, and follow the published active member unless they see it fail themselves. That
 * keeps thousands of isolates from splitting writes between members during a flap.
 */
import type { HealthStatus } from '../events.js';

export interface SharedMemberHealth {
  status: HealthStatus;
  reason?: string;
  checkedAt: number;
  healthySince?: number;
  lagging?: boolean;
  /**
   * The publisher left it as the active member for failing: not to lead again before this time
   * (grace period). Absent in records from older versions: no grace.
   */
  graceUntil?: number;
}

export interface SharedHealth {
  version: 1;
  /**
   * Fingerprint of the member config the record describes (names, URLs, weights, locations,
   * availability settings; no secrets): see `storeKey`.
   */
  key: string;
  /** When the record was made. */
  at: number;
  active?: string;
  /** Since when `active` has been the active member (grace rules span cron runs). */
  activeSince?: number;
  members: Record<string, SharedMemberHealth>;
}

/** Where shared health lives. `key` is short and already specific to one member list. */
export interface HealthCache {
  get(key: string): Promise<SharedHealth | undefined>;
  put(key: string, value: SharedHealth): Promise<void>;
}

/** FNV-1a, 32 bit, as 8 hex digits: short and stable, not a secret-keeping hash. */
export function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** The cache key of a member-list fingerprint. */
export function cacheKeyFor(storeKey: string): string {
  return `redis-edge-failover:health:${fnv1a(storeKey)}`;
}

/** The record, if `value` is one: a cache can hold anything (another format, a stray write). */
function parse(value: unknown): SharedHealth | undefined {
  const v = value as SharedHealth | null | undefined;
  return v &&
    typeof v === 'object' &&
    v.version === 1 &&
    typeof v.at === 'number' &&
    typeof v.members === 'object' &&
    (v.key === undefined || typeof v.key === 'string')
    ? v
    : undefined;
}

/** The subset of a Workers KV namespace this needs. */
export interface KVNamespaceLike {
  get(key: string, type: 'json'): Promise<unknown>;
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>;
}

export interface KvHealthCacheOptions {
  /** Drop the record after this many seconds (KV's minimum is 60). Default 600. */
  ttlSeconds?: number;
  /** Skip writes closer together than this; KV allows one write per key per second. Default 1000. */
  minWriteIntervalMs?: number;
}

/**
 * When each key of a KV binding was last written, per binding: every `kvHealthCache` over the
 * same namespace shares it. `failoverOptionsFromEnv` builds a new cache on each call (each cron
 * invocation, say), so a per-cache record would let two crons of one minute write the same key
 * twice within a second, and KV answers that with 429. Weak, so a dropped binding frees it.
 */
const kvLastWrites = new WeakMap<KVNamespaceLike, Map<string, number>>();

/** Workers KV: global and eventually consistent (about 60 s), fine for a cron-fed record. */
export function kvHealthCache(
  kv: KVNamespaceLike,
  options: KvHealthCacheOptions = {},
): HealthCache {
  const ttl = Math.max(60, options.ttlSeconds ?? 600);
  const minInterval = options.minWriteIntervalMs ?? 1000;
  const written = kvLastWrites.get(kv) ?? new Map<string, number>();
  kvLastWrites.set(kv, written);
  return {
    get: async (key) => parse(await kv.get(key, 'json')),
    async put(key, value) {
      const now = Date.now();
      if (now - (written.get(key) ?? -Infinity) < minInterval) return;
      // Taken before the write, so a concurrent put skips; kept when it fails (a 429 is a
      // reason to wait, not to retry at once).
      written.set(key, now);
      await kv.put(key, JSON.stringify(value), { expirationTtl: ttl });
    },
  };
}

/** The subset of the Workers Cache API this needs (`caches.default` or `await caches.open()`). */
export interface CacheLike {
  match(request: Request): Promise<Response | undefined>;
  put(request: Request, response: Response): Promise<void>;
}

export interface CacheApiHealthCacheOptions {
  /** Origin used to build cache keys; never fetched. Default `https://redis-edge-failover.internal`. */
  origin?: string;
  ttlSeconds?: number;
}

/** Workers Cache API: per data centre, fast, not available on workers.dev. */
export function cacheApiHealthCache(
  cache: CacheLike,
  options: CacheApiHealthCacheOptions = {},
): HealthCache {
  const origin = options.origin ?? 'https://redis-edge-failover.internal';
  const ttl = options.ttlSeconds ?? 600;
  const requestFor = (key: string) => new Request(`${origin}/${encodeURIComponent(key)}`);
  return {
    get: async (key) => {
      const response = await cache.match(requestFor(key));
      return response ? parse(await response.json()) : undefined;
    },
    async put(key, value) {
      await cache.put(
        requestFor(key),
        new Response(JSON.stringify(value), {
          headers: { 'content-type': 'application/json', 'cache-control': `max-age=${ttl}` },
        }),
      );
    },
  };
}
