/**
 * `createFailoverRedis`: an `@upstash/redis` `Redis` (every command, pipelines, transactions,
 * scripts) whose requests go through the failover requester, plus the controls of design 4.6/4.7.
 */
import { Redis } from '@upstash/redis';
import { circuitPhase } from './circuit.js';
import {
  checkProbeSource,
  type FailoverOptions,
  type MemberConfig,
  resolveOptions,
  validateMember,
} from './config.js';
import { ConfigError, FailoverError, MemberUnavailableError } from './errors.js';
import { Emitter, type FailoverEvents, type FailoverListener } from './events.js';
import { fnv1a } from './health/shared.js';
import { healthStoreFor, type MemberRecord, type StoreSnapshot } from './health/store.js';
import { FailoverCore, FailoverRequester, type RequestScope } from './requester.js';
import type { RequestHints } from './selector.js';

/** What `scope()` takes from a request; adapters build it from `request.cf` and the context. */
export interface ScopeOptions {
  /** `request.cf` (or anything with `colo`, `latitude`, `longitude`), for proximity. */
  cf?: { colo?: unknown; latitude?: unknown; longitude?: unknown } | null;
  hints?: RequestHints;
  waitUntil?: (promise: Promise<unknown>) => void;
  signal?: AbortSignal;
  /** Budget for the whole request (ms from now); each command still has `deadlineMs`. */
  deadlineMs?: number;
  /** Keep every command of the request on one member unless it fails. Default true. */
  pin?: boolean;
}

/** Turns `request.cf` (strings for coordinates) into hints; ignores what it cannot parse. */
export function hintsFromCf(cf: ScopeOptions['cf']): RequestHints | undefined {
  if (!cf) return undefined;
  const hints: RequestHints = {};
  if (typeof cf.colo === 'string' && cf.colo) hints.colo = cf.colo;
  const lat = Number.parseFloat(String(cf.latitude));
  const lon = Number.parseFloat(String(cf.longitude));
  if (Number.isFinite(lat) && Number.isFinite(lon)) {
    hints.lat = lat;
    hints.lon = lon;
  }
  return hints.colo !== undefined || hints.lat !== undefined ? hints : undefined;
}

export class FailoverRedis extends Redis {
  readonly #core: FailoverCore;
  readonly #requester: FailoverRequester;
  /** What users hold: `this`, or the auto-pipelining proxy around it. */
  #outer: this = this;

  /** @internal use `createFailoverRedis` */
  constructor(core: FailoverCore, scope: RequestScope) {
    const requester = new FailoverRequester(core, scope);
    super(requester);
    // The Requester form of the constructor takes no command options: set them as the base
    // class does, where every command reads them.
    if (!core.options.automaticDeserialization) this.opts = { automaticDeserialization: false };
    this.#core = core;
    this.#requester = requester;
    if (core.options.enableAutoPipelining) {
      // The Requester form of the constructor skips @upstash/redis' auto-pipeline proxy;
      // returning it from the constructor is how the library itself enables it. The proxy hands
      // out methods unbound, and ours read private fields, which only `this` has: bind them.
      for (const name of Object.getOwnPropertyNames(FailoverRedis.prototype)) {
        const method = Object.getOwnPropertyDescriptor(FailoverRedis.prototype, name)?.value;
        if (name !== 'constructor' && typeof method === 'function') {
          Object.defineProperty(this, name, { value: method.bind(this), configurable: true });
        }
      }
      this.#outer = this.autoPipeline() as this;
      // biome-ignore lint/correctness/noConstructorReturn: mirrors @upstash/redis
      return this.#outer;
    }
  }

  /** A client bound to one request: hints, deadline, `waitUntil`, and a pinned member. */
  scope(options: ScopeOptions = {}): FailoverRedis {
    const scope: RequestScope = { pin: options.pin !== false };
    const hints = options.hints ?? hintsFromCf(options.cf);
    if (hints) scope.hints = hints;
    if (options.waitUntil) scope.waitUntil = options.waitUntil;
    if (options.signal) scope.signal = options.signal;
    const { deadlineMs } = options;
    if (deadlineMs !== undefined) {
      // NaN (Number() of an unset variable, say) would switch every attempt's timeout off.
      if (typeof deadlineMs !== 'number' || !(deadlineMs >= 0)) {
        throw new ConfigError('scope(options).deadlineMs', 'must be a number >= 0');
      }
      scope.deadlineAt = this.#core.now() + deadlineMs;
    }
    return new FailoverRedis(this.#core, scope);
  }

  /** The member this scope is pinned to, once its first command has been served. */
  get pinnedMember(): string | undefined {
    return this.#requester.scope.pinned;
  }

  /** The member that answered this scope's latest command, whether or not the scope is pinned. */
  get servedBy(): string | undefined {
    return this.#requester.scope.servedBy;
  }
  /**
   * `@upstash/redis`' way to carry read-your-writes to the next invocation, per member here:
   * the token of the member that served the latest command, tagged with that member's name and
   * a hash of its URL (`a@1f2e3d4c 1234`), since a token means nothing to another member, nor
   * to the same name at a new URL. Set, it goes to that member at that URL only; anything else
   * is ignored (it cannot be placed). An accessor of this class, not of the requester, whose
   * field `@upstash/redis` reads on every command.
   */
  override get readYourWritesSyncToken(): string {
    const name = this.servedBy;
    const own = name === undefined ? undefined : this.#core.credentials.get(name);
    const token = own && this.#core.transport(name!)?.syncToken;
    return token ? `${name}@${fnv1a(own!.url)} ${token}` : '';
  }

  override set readYourWritesSyncToken(value: string | undefined) {
    const [, name, hash, token] = /^(.+)@([0-9a-f]{8}) (\S+)$/.exec(value ?? '') ?? [];
    const own = name === undefined ? undefined : this.#core.credentials.get(name);
    if (own && fnv1a(own.url) === hash) this.#core.transport(name!)?.adoptSyncToken?.(token!);
  }

  /** Whether this client shares health through a cache (`health.cache`) the cron publishes to. */
  get sharesHealth(): boolean {
    return this.#core.options.health.cache !== undefined;
  }

  /** The member new requests go to first. */
  activeMember(): string | undefined {
    const store = this.#core.store;
    return store.active ?? this.#core.select(undefined).active;
  }

  /**
   * Probes every member now (the full probe plan), re-selects, publishes health and the active
   * member to the shared tier if one is configured, and returns the snapshot. Meant for a cron
   * trigger, so request paths need no probes at all.
   */
  async refreshAll(): Promise<StoreSnapshot> {
    await this.#core.refreshAll();
    return this.snapshot();
  }

  snapshot(): StoreSnapshot {
    return this.#core.store.snapshot(this.#core.now());
  }

  on<K extends keyof FailoverEvents>(event: K, listener: FailoverListener<K>): this {
    this.#core.emitter.on(event, listener);
    return this.#outer;
  }

  off<K extends keyof FailoverEvents>(event: K, listener: FailoverListener<K>): this {
    this.#core.emitter.off(event, listener);
    return this.#outer;
  }

  /**
   * Make `name` the active member of this isolate now (it stays while healthy; failback rules
   * still apply, and it is kept over a shared record's choice for a grace period). Throws
   * `MemberUnavailableError` for a member known to be out.
   */
  setActiveMember(name: string): void {
    this.#requireIn(this.#requireMember('setActiveMember', name), false);
    this.#switchTo(name, Number.NEGATIVE_INFINITY);
  }

  /**
   * Make `name` the active member of this isolate and keep every other member out for `ms`
   * (maintenance). Throws `MemberUnavailableError` for a member known to be out.
   */
  forceActiveMember(name: string, ms: number): void {
    const record = this.#requireMember('forceActiveMember', name);
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
      throw new ConfigError('forceActiveMember.ms', 'must be a positive number');
    }
    this.#requireIn(record, true);
    this.#switchTo(name, this.#core.now() + ms);
  }

  /**
   * Pub/sub is a long-lived stream from one member: it cannot fail over, and `@upstash/redis`
   * would report its failure to an `error` listener only (without one, nothing ever arrives).
   */
  override subscribe: Redis['subscribe'] = () => {
    throw new FailoverError(
      'Pub/sub does not go through the failover client: subscribe with a plain @upstash/redis ' +
        `Redis({ url, token }) of one member, e.g. "${this.activeMember()}" (activeMember())`,
    );
  };
  override psubscribe: Redis['psubscribe'] = this.subscribe;

  addMember(member: MemberConfig): void {
    const core = this.#core;
    const resolved = validateMember('addMember(member)', member, core.options.allowInsecureHttp);
    checkProbeSource('addMember(member)', resolved, core.options.health);
    if (core.store.records.has(resolved.name)) {
      throw new ConfigError('addMember(member).name', `duplicate name "${resolved.name}"`);
    }
    core.setCredentials(resolved.name, resolved.url, resolved.token);
    core.store.addMember(resolved);
  }

  removeMember(name: string): void {
    this.#requireMember('removeMember', name);
    const core = this.#core;
    if (core.store.records.size === 1) {
      throw new ConfigError('removeMember(name)', 'cannot remove the last member');
    }
    core.store.removeMember(name);
    core.credentials.delete(name);
    if (core.store.forced?.name === name) core.store.forced = undefined;
    if (core.store.active === name) core.select(undefined);
  }

  setWeight(name: string, weight: number): void {
    const record = this.#requireMember('setWeight', name);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new ConfigError('setWeight(weight)', 'must be a positive number');
    }
    record.member = { ...record.member, weight };
  }

  #requireMember(method: string, name: string) {
    const record = this.#core.store.records.get(name);
    if (!record) throw new ConfigError(`${method}(name)`, `no member named "${name}"`);
    return record;
  }

  /**
   * Like Jedis and redis-py, no manual switch to a member known to be out: its circuit open, or
   * a health check saw it down. `forceActiveMember` may take a half-open one (its grace period
   * is over): forcing it is how an operator brings it back, and forced traffic is its trial;
   * `setActiveMember` would not hold it, since the next command leaves a member not usable.
   */
  #requireIn(record: MemberRecord, halfOpenToo: boolean): void {
    const phase = circuitPhase(record.circuit, this.#core.now());
    const open = phase === 'open' || (!halfOpenToo && phase === 'half-open');
    if (open || (record.status === 'unhealthy' && record.statusReason !== 'circuit')) {
      const why = open ? 'its circuit is open' : 'a health check reported it down';
      throw new MemberUnavailableError(record.member.name, why);
    }
  }

  #switchTo(name: string, until: number): void {
    const core = this.#core;
    const store = core.store;
    const now = core.now();
    const from = store.active;
    store.forced = until > now ? { name, until } : undefined;
    store.manual = until > now ? undefined : { name, at: now };
    if (from === name) return;
    const event = store.setActive(name, 'forced', now);
    if (event) core.emitter.emit('switch', { ...event });
  }
}

/** Builds a failover client. Construction does no I/O, so it is fine at module scope. */
export function createFailoverRedis(options: FailoverOptions): FailoverRedis {
  const resolved = resolveOptions(options);
  // A listener's failure must not break a request, nor pass unseen.
  const emitter = new Emitter((error) =>
    console.error('redis-edge-failover: an event listener failed:', error),
  );
  const core = new FailoverCore(resolved, healthStoreFor(resolved.members), emitter);
  if (options.on?.switch) emitter.on('switch', options.on.switch);
  if (options.on?.health) emitter.on('health', options.on.health);
  if (options.on?.failure) emitter.on('failure', options.on.failure);
  return new FailoverRedis(core, {});
}
