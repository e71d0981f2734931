/**
 * The failover `Requester`: `@upstash/redis` hands it every command, pipeline and transaction,
 * and it decides which members to try, in what order, and whether a retry is safe.
 *
 * The contract (design 4.4): nothing lost, nothing duplicated. A call moves to the next member
 * when the member never saw it (`not-sent`), or when it may have seen it (`unknown-outcome`)
 * and running it twice is harmless (reads, idempotent writes). A non-idempotent write with an
 * unknown outcome stops with `AmbiguousWriteError` instead.
 */
import type { Requester, UpstashRequest, UpstashResponse } from '@upstash/redis';
import { errors as upstashErrors } from '@upstash/redis';
import { circuitPhase } from './circuit.js';
import type { ResolvedOptions } from './config.js';
import {
  AllMembersFailedError,
  AmbiguousWriteError,
  type MemberAttemptFailure,
  MemberConfigError,
} from './errors.js';
import type { Emitter } from './events.js';
import {
  awaitInitialization,
  type CheckerDeps,
  checkAll,
  maybeStartRefresh,
  publishShared,
  readShared,
} from './health/checker.js';
import { type HealthStore, isOut } from './health/store.js';
import type { RequestHints } from './selector.js';
import { classifyBatch, classifyCommand, commandName } from './transport/commands.js';
import { MemberRequestError } from './transport/errors.js';
import { createRestTransport } from './transport/rest.js';
import type {
  AttemptOutcome,
  MemberRequest,
  MemberTransport,
  RestReply,
  SendOptions,
} from './transport/types.js';

/** Per-request context the adapters provide (design 3: "request scope"). */
export interface RequestScope {
  /** Where the request comes from (`request.cf`), for proximity routing. */
  hints?: RequestHints;
  /** Keeps background work alive after the response (`ctx.waitUntil`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** Aborts every attempt of this request (client went away). */
  signal?: AbortSignal;
  /** Absolute time (ms since epoch, the client's clock) by which every call must be done. */
  deadlineAt?: number;
  /** Keep all commands of this scope on the member that served its first one. */
  pin?: boolean;
  /** The member this scope is pinned to (set by the requester). */
  pinned?: string;
  /** The member that answered this scope's latest command, pinned or not (set by the requester). */
  servedBy?: string;
}

/** How many client setups (token, fetch, options) keep a transport per member. */
const MAX_TRANSPORTS_PER_MEMBER = 8;

/** Counts transport lookups, to find the least recently used one. */
let transportUses = 0;

/** A number per `fetch` function, so setups that differ only in it get transports of their own. */
const fetchIds = new WeakMap<typeof fetch, number>();
let fetchCount = 0;
function fetchId(f: typeof fetch | undefined): number {
  if (!f) return 0;
  let id = fetchIds.get(f);
  if (id === undefined) {
    id = ++fetchCount;
    fetchIds.set(f, id);
  }
  return id;
}

/** Everything a client shares between its scopes: options, store, events, transports. */
export class FailoverCore {
  /**
   * This client's own credentials, with the URL each token belongs to. The store may be shared
   * with clients holding other tokens for the same URLs (a read-only token, say), and another
   * client may replace a member there under the same name at a new URL: a token goes only to
   * the URL it was given for, never by name alone.
   */
  readonly credentials = new Map<string, { url: string; token: string; setup: string }>();
  /** What, besides the token, makes this client's transports differ from another's. */
  readonly #setup: string;

  constructor(
    readonly options: ResolvedOptions,
    readonly store: HealthStore,
    readonly emitter: Emitter,
  ) {
    this.#setup = `${options.readYourWrites} ${options.cancellation} ${fetchId(options.fetch)}`;
    for (const m of options.members) this.setCredentials(m.name, m.url, m.token);
  }

  setCredentials(name: string, url: string, token: string): void {
    this.credentials.set(name, { url, token, setup: `${this.#setup} ${token}` });
  }

  now(): number {
    return this.options.now();
  }

  transport(name: string): MemberTransport | undefined {
    const record = this.store.records.get(name);
    const own = this.credentials.get(name);
    // A member this client has no token for (added by another client sharing the store, or
    // moved to another URL there) is skipped, like one without a transport.
    if (!record || own?.url !== record.member.url) return undefined;
    let forMember = this.store.transports.get(name);
    if (!forMember) {
      forMember = new Map();
      this.store.transports.set(name, forMember);
    }
    const cached = forMember.get(own.setup);
    if (cached) {
      cached.lastUsed = ++transportUses;
      return cached;
    }
    const transportOptions: Parameters<typeof createRestTransport>[1] = {
      readYourWrites: this.options.readYourWrites,
      cancelAlways: this.options.cancellation === 'always',
    };
    if (this.options.fetch) transportOptions.fetch = this.options.fetch;
    const transport = createRestTransport(
      { name, url: record.member.url, token: own.token },
      transportOptions,
    );
    // Bounded: clients created per request with tokens of their own must not pile up. The least
    // recently used goes, so a long-lived client in use keeps its transport (and sync token)
    // however many per-request clients come and go beside it.
    if (forMember.size >= MAX_TRANSPORTS_PER_MEMBER) {
      let stalest: [string, MemberTransport] | undefined;
      for (const entry of forMember) {
        if (!stalest || (entry[1].lastUsed ?? 0) < (stalest[1].lastUsed ?? 0)) stalest = entry;
      }
      forMember.delete(stalest![0]);
    }
    transport.lastUsed = ++transportUses;
    forMember.set(own.setup, transport);
    return transport;
  }

  /** Runs selection and emits a `switch` event when the active member changed. */
  select(hints: RequestHints | undefined) {
    const o = this.options;
    const now = this.now();
    const selection = this.store.select(hints, o.proximity, o.circuit.gracePeriodMs, now);
    if (selection.switched) this.emitter.emit('switch', { ...selection.switched, at: now });
    return selection;
  }

  get checkerDeps(): CheckerDeps {
    const deps: CheckerDeps = {
      store: this.store,
      health: this.options.health,
      circuit: this.options.circuit,
      emitter: this.emitter,
      transport: (name) => this.transport(name),
      now: () => this.now(),
    };
    if (this.options.fetch) deps.fetch = this.options.fetch;
    return deps;
  }

  /**
   * Starts a background refresh when the store is stale and hands it to `waitUntil`. Only a
   * cold isolate's request waits, boundedly, for the refresh it started itself.
   */
  refreshIfStale(scope: RequestScope, deadlineAt: number): Promise<void> | undefined {
    // Synchronous when fresh: this runs before every command.
    if (!this.options.health.enabled || this.now() < this.store.nextRefreshAt) return undefined;
    const deps = this.checkerDeps;
    const running = maybeStartRefresh(deps);
    if (!running) return undefined;
    if (scope.waitUntil) scope.waitUntil(running.done);
    if (this.store.initialized) return undefined;
    // The wait may use what the deadline leaves beyond one full attempt, never that attempt.
    const spare = deadlineAt - this.now() - this.options.timeoutMs;
    return awaitInitialization(deps, running, spare, scope.signal);
  }

  /** Probes every member now, publishes to the shared tier, and returns the snapshot (cron). */
  async refreshAll(): Promise<void> {
    const deps = this.checkerDeps;
    const store = this.store;
    // A cron run is often a fresh isolate's first work, and a warm one may have missed runs in
    // other isolates. Start from the newest published decision (the active member, since when,
    // and each member's healthy streak) so the grace rules span runs: from nothing, or from this
    // isolate's older view, the heaviest member would win the moment it answers again.
    if (deps.health.cache) {
      await readShared(deps).catch(() => undefined);
      const published = store.shared;
      const chosen =
        published?.active === undefined ? undefined : store.records.get(published.active);
      // Not a member failing here (its circuit opened in this isolate): adopting it would only
      // make the selection below switch away from it again, with an event and a new activeSince.
      if (
        published &&
        chosen &&
        !isOut(chosen) &&
        published.at > (store.publishedAt ?? Number.NEGATIVE_INFINITY)
      ) {
        store.setActive(published.active, undefined, published.activeSince ?? published.at);
      }
    }
    // This is where the shared decision is made: it must follow the grace rules itself, not an
    // older published choice (which could fail back to a member the moment it answers again).
    store.shared = undefined;
    const now = this.now();
    // A traffic refresh running in this isolate keeps its marker (single flight): the cron
    // checks anyway, but must not let a second traffic refresh start beside the first.
    const running = store.refreshStartedAt;
    const marks = running === undefined || now - running >= this.options.health.staleRefreshMs;
    if (marks) store.refreshStartedAt = now;
    store.nextRefreshAt = now + this.options.health.intervalMs;
    try {
      await checkAll(deps);
    } finally {
      if (marks && store.refreshStartedAt === now) store.refreshStartedAt = undefined;
    }
    this.select(undefined);
    await publishShared(deps);
  }

  /**
   * With health checks off nothing probes a member, so one whose circuit went half-open while
   * another works would never be sent anything and stay out for good. Its trial is a PING in
   * the background (Jedis validates a failback target with one), never the caller's command: a
   * member just back may be behind, and a hanging one would hold the call. At most one at a
   * time per member, bounded like a probe; a refused token is reported and waits a grace period.
   */
  startTrial(name: string, scope: RequestScope): void {
    const r = this.store.records.get(name);
    const transport = this.transport(name);
    const now = this.now();
    if (!r || !transport || now < (r.trialUntil ?? 0)) return;
    const { probeTimeoutMs } = this.options.health;
    r.trialUntil = now + probeTimeoutMs;
    const ping: MemberRequest = { kind: 'command', command: ['ping'] };
    const done = transport.send(ping, { timeoutMs: probeTimeoutMs }).then((outcome) => {
      const at = this.now();
      // Only for the record it was sent for, still waiting for a trial: a call that failed over
      // may have closed its circuit meanwhile, or the member been removed and added again.
      if (this.store.records.get(name) !== r || circuitPhase(r.circuit, at) !== 'half-open') return;
      if (outcome.kind === 'config') {
        r.trialUntil = at + this.options.circuit.gracePeriodMs;
        const { message } = outcome.error;
        this.emitter.emit('failure', {
          member: name,
          kind: 'config',
          command: 'ping',
          message,
          failedOver: false,
          at,
        });
        return;
      }
      // An error for PING (a quota, say) is no working member, as the PING probe judges it.
      const reply = outcome.kind === 'ok' && !Array.isArray(outcome.reply) ? outcome.reply : {};
      if (reply.error !== undefined) {
        const why = `ping error: ${reply.error}`;
        const event = this.store.recordFailure(name, 'check', why, this.options.circuit, at);
        if (event) this.emitter.emit('health', event);
        return;
      }
      this.recordOutcome(name, outcome, probeTimeoutMs);
    });
    scope.waitUntil?.(done);
  }

  /** `timeoutMs`: the attempt's own timeout, less than the option when the deadline cut it. */
  recordOutcome(name: string, outcome: AttemptOutcome, timeoutMs: number): void {
    const now = this.now();
    const o = this.options;
    if (outcome.kind === 'ok') {
      const event = this.store.recordSuccess(name, outcome.latencyMs, o.circuit, 'request', now);
      if (event) this.emitter.emit('health', event);
      return;
    }
    if (outcome.kind === 'config') return;
    // Our own abort (request gone) says nothing about the member. Nor does a timeout the call's
    // deadline cut short, for the circuit: a member slower than the caller's budget is not
    // failing; but it may be hanging, so a probe with the full timeout decides, now.
    const reason = outcome.error instanceof MemberRequestError ? outcome.error.reason : undefined;
    if (reason === 'aborted') return;
    // Without health checks nothing else would find a hanging member: then it counts.
    if (reason === 'timeout' && timeoutMs < o.timeoutMs && o.health.enabled) {
      this.store.suspect(name, outcome.error.message, now, o.health.intervalMs);
      return;
    }
    // A member refusing writes keeps answering reads, whose successes would keep its circuit
    // closed: every write would pay a round trip to it. It leaves at once, for a grace period.
    const event = this.store.recordFailure(
      name,
      outcome.kind,
      outcome.error.message,
      o.circuit,
      now,
      reason === 'writes-refused',
    );
    if (event) this.emitter.emit('health', event);
  }
}

function toMemberRequest(req: UpstashRequest): MemberRequest {
  const path = req.path?.[0];
  if (path === 'pipeline' || path === 'multi-exec') {
    return { kind: path, commands: req.body as unknown[][] };
  }
  if (req.path && req.path.length > 0) {
    // Streaming endpoints (subscribe) need a long-lived connection to one member; they are
    // out of this requester's request/response model.
    throw new TypeError(`redis-edge-failover does not support the /${req.path.join('/')} endpoint`);
  }
  return { kind: 'command', command: req.body as unknown[] };
}

/** What every attempt of one call shares: its label, retry safety, deadline and member order. */
interface Call {
  request: MemberRequest;
  label: string;
  retrySafe: boolean;
  deadlineAt: number;
  order: string[];
  /** Index in `order` of the next member to try. */
  next: number;
  failures: MemberAttemptFailure[];
  /**
   * A failure `settle` passed on: its event waits for `nextAttempt`, which alone knows whether
   * another member is really tried (the deadline, members without a token).
   */
  failed?: [member: string, outcome: Exclude<AttemptOutcome, { kind: 'ok' }>];
}

/** One attempt of a hedged read, the only kind of call with two attempts in flight. */
interface HedgedAttempt {
  member: string;
  options: SendOptions;
  controller: AbortController;
  /** Set when we aborted it ourselves (hedge loser): its outcome says nothing about health. */
  cancelled: boolean;
  promise: Promise<{ attempt: HedgedAttempt; outcome: AttemptOutcome }>;
}

/**
 * A member not tried: removed from the list during the call, or one this client holds no token
 * for (added or moved by another client).
 */
function noToken(call: Call, member: string, removed: boolean): void {
  const message = removed ? 'removed from the member list' : 'this client has no token for it';
  call.failures.push({ member, kind: 'skipped', message });
}

/** `#settle`'s answer when the call goes on to the next member. */
const TRY_NEXT = Symbol('try next');

export class FailoverRequester implements Requester {
  readYourWrites = true;

  /** Unused: tokens are per member (see `FailoverRedis.readYourWritesSyncToken`). */
  upstashSyncToken = '';

  constructor(
    private readonly core: FailoverCore,
    readonly scope: RequestScope = {},
  ) {}

  request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
    let memberRequest: MemberRequest;
    try {
      memberRequest = toMemberRequest(req);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.run(memberRequest) as Promise<UpstashResponse<TResult>>;
  }

  /**
   * The whole call in one async function, the attempts one at a time inline: every command
   * passes here, and each async layer is a frame and a promise kept alive for the whole round
   * trip (at 32 in flight, that garbage outlives young-generation collections). Resolves to
   * the member's decoded REST reply; a discarded transaction rejects as `@upstash/redis` would.
   */
  private async run(request: MemberRequest): Promise<RestReply | RestReply[]> {
    const core = this.core;
    const o = core.options;
    const scope = this.scope;
    const safety =
      request.kind === 'command'
        ? classifyCommand(request.command)
        : classifyBatch(request.commands, request.kind);
    const deadlineAt = Math.min(
      core.now() + o.deadlineMs,
      scope.deadlineAt ?? Number.POSITIVE_INFINITY,
    );

    const coldStart = core.refreshIfStale(scope, deadlineAt);
    if (coldStart) await coldStart;
    const selection = core.select(scope.hints);
    let ordered = selection.order;
    // The forced member alone while the lock holds. A first member this client cannot reach at
    // all (no token for it: added or moved by another client sharing the store) goes last, so
    // neither a lock it cannot honour nor `requestFailover: false` fails every command of its.
    const reachable = core.transport(ordered[0]!) !== undefined;
    const locked = selection.locked && reachable;
    if (!reachable) {
      const own = ordered.filter((m) => core.transport(m));
      ordered = [...own, ...ordered.filter((m) => !own.includes(m))];
    }
    if (!locked) ordered = this.pinnedFirst(ordered);
    const only = locked || !o.requestFailover;
    if (selection.trial !== undefined && !o.health.enabled) core.startTrial(selection.trial, scope);
    const call: Call = {
      request,
      label: request.kind === 'command' ? commandName(request.command) : request.kind,
      retrySafe: safety !== 'non-idempotent-write',
      deadlineAt,
      order: only ? ordered.slice(0, 1) : ordered,
      next: 0,
      failures: [],
    };
    let reply: RestReply | RestReply[] | undefined;
    if (safety === 'read' && o.hedgeAfterMs !== undefined) {
      reply = await this.hedged(call, o.hedgeAfterMs);
    } else {
      // Every other call tries one member at a time, which needs no AbortController, race or
      // bookkeeping per attempt (a measurable share of the per-command cost).
      for (;;) {
        scope.signal?.throwIfAborted();
        const next = this.nextAttempt(call, scope.signal);
        if (!next) break;
        const { member, options } = next;
        const outcome = await next.transport.send(request, options);
        const settled = this.settle(call, member, outcome, options);
        if (settled !== TRY_NEXT) {
          reply = settled;
          break;
        }
      }
    }
    if (reply !== undefined) {
      if (request.kind !== 'command' && !Array.isArray(reply)) {
        // A discarded transaction: one error for the whole batch, message unchanged.
        throw new upstashErrors.UpstashError(reply.error ?? 'transaction discarded');
      }
      return reply;
    }

    for (const member of call.order.slice(call.next)) {
      call.failures.push({
        member,
        kind: 'skipped',
        message: 'deadline reached before it was tried',
      });
    }
    // The members a lock or `requestFailover: false` kept out are listed too, with why.
    for (const member of only ? ordered.slice(1) : []) {
      const message = locked ? 'locked out by forceActiveMember' : 'requestFailover is off';
      call.failures.push({ member, kind: 'skipped', message });
    }
    throw new AllMembersFailedError(call.label, call.failures);
  }

  /** Send options for the next attempt, or undefined once the deadline has passed. */
  private sendOptions(call: Call, signal: AbortSignal | undefined): SendOptions | undefined {
    const remaining = call.deadlineAt - this.core.now();
    if (remaining <= 0) return undefined;
    const options: SendOptions = { timeoutMs: Math.min(this.core.options.timeoutMs, remaining) };
    if (signal) options.signal = signal;
    return options;
  }

  /**
   * The call's next member this client can send to, with the options for that attempt;
   * undefined once the order or the deadline is used up. Members it cannot reach are skipped.
   */
  private nextAttempt(call: Call, signal: AbortSignal | undefined) {
    let next: { member: string; transport: MemberTransport; options: SendOptions } | undefined;
    while (!next && call.next < call.order.length) {
      const options = this.sendOptions(call, signal);
      if (!options) break;
      const member = call.order[call.next++]!;
      const transport = this.core.transport(member);
      if (transport) next = { member, transport, options };
      else noToken(call, member, !this.core.store.records.has(member));
    }
    if (call.failed) this.reportFailure(call, next !== undefined);
    return next;
  }

  /** Emits the failure `settle` passed on, now that it is known whether the call went on. */
  private reportFailure(call: Call, failedOver: boolean): void {
    const [member, outcome] = call.failed!;
    call.failed = undefined;
    this.emitFailure(member, outcome, call.label, failedOver);
    // A failure of the active member may have opened its circuit: let later requests
    // (and the switch event) see that now rather than on the next call.
    this.core.select(this.scope.hints);
  }

  /**
   * A read that has not been answered after `hedgeAfter` ms is also sent to the next member;
   * the first answer wins and the others are cancelled.
   */
  private async hedged(
    call: Call,
    hedgeAfter: number,
  ): Promise<RestReply | RestReply[] | undefined> {
    const scope = this.scope;
    const { order } = call;
    const pending = new Set<HedgedAttempt>();

    const launch = (): boolean => {
      const controller = new AbortController();
      const next = this.nextAttempt(call, controller.signal);
      if (!next) return false;
      const { member, transport, options } = next;
      const onAbort = () => controller.abort(scope.signal?.reason);
      scope.signal?.addEventListener('abort', onAbort, { once: true });
      const attempt: HedgedAttempt = {
        member,
        options,
        controller,
        cancelled: false,
        promise: transport.send(call.request, options).then((outcome) => {
          scope.signal?.removeEventListener('abort', onAbort);
          return { attempt, outcome };
        }),
      };
      pending.add(attempt);
      return true;
    };
    const cancelAll = () => {
      for (const a of pending) {
        a.cancelled = true;
        a.controller.abort();
      }
      pending.clear();
    };

    try {
      while (true) {
        scope.signal?.throwIfAborted();
        if (pending.size === 0 && !launch()) return undefined;
        // The next member is sent the read too if this one has not answered by then; with none
        // left, only an answer ends the wait.
        // Only to a member fit to be selected: nothing has failed, so a member that is out (open
        // circuit, reported down) is no candidate yet; it stays for failover after a failure.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const hedge = new Promise<'hedge'>((resolve) => {
          // The member `launch` would pick: the next one this client holds a token for.
          const target = order.slice(call.next).find((m) => this.core.transport(m));
          const record = target === undefined ? undefined : this.core.store.records.get(target);
          if (record && !isOut(record)) {
            timer = setTimeout(resolve, hedgeAfter, 'hedge');
          }
        });
        const settled = await Promise.race([...[...pending].map((a) => a.promise), hedge]);
        clearTimeout(timer);
        if (settled === 'hedge') {
          launch();
          continue;
        }
        const { attempt, outcome } = settled;
        pending.delete(attempt);
        if (attempt.cancelled) continue;
        // (Not the lead's: a wrong token of the member in charge is never hidden by a hedge.)
        if (outcome.kind === 'config' && pending.size > 0 && attempt.member !== order[0]) {
          // A hedge refused (wrong token) while another attempt can still answer: the first
          // answer wins; the mistake shows in the failure event, and in the error of any call
          // that has only that member left.
          this.emitFailure(attempt.member, outcome, call.label, true);
          call.failures.push({
            member: attempt.member,
            kind: 'config',
            message: outcome.error.message,
          });
          continue;
        }
        const result = this.settle(call, attempt.member, outcome, attempt.options);
        if (result !== TRY_NEXT) return result;
        // Another attempt already in flight: the call went on. Else the next launch tells.
        if (pending.size > 0) this.reportFailure(call, true);
      }
    } finally {
      // Whatever ended the call (an answer, an error to throw, the caller's abort), the other
      // attempts are no longer wanted.
      cancelAll();
    }
  }

  /**
   * Records an attempt's outcome and decides: the reply, an error thrown to the caller, or
   * TRY_NEXT (the failure is recorded in `call.failures` and `call.failed`, whose event is
   * emitted by whatever looks for the next attempt); `options` are the ones the attempt was
   * sent with.
   */
  private settle(
    call: Call,
    member: string,
    outcome: AttemptOutcome,
    options: SendOptions,
  ): RestReply | RestReply[] | typeof TRY_NEXT {
    const core = this.core;
    const scope = this.scope;
    core.recordOutcome(member, outcome, options.timeoutMs);
    if (outcome.kind === 'ok') {
      scope.servedBy = member;
      const kept = scope.pinned;
      const lead = call.order[0];
      const failed = (name: string | undefined) => call.failures.some((f) => f.member === name);
      // Re-pin when the pinned member failed or was out of this call's lead; not when another
      // member merely won a hedged read from it, nor from the lead on a scope's first command.
      if (scope.pin && (kept !== lead || failed(kept))) {
        scope.pinned = kept === undefined && !failed(lead) && lead !== undefined ? lead : member;
      }
      return outcome.reply;
    }
    if (outcome.kind === 'config') {
      this.emitFailure(member, outcome, call.label, false);
      throw new MemberConfigError(member, outcome.status, outcome.error.message, {
        cause: outcome.error,
      });
    }
    scope.signal?.throwIfAborted();
    call.failed = [member, outcome];
    if (
      outcome.kind === 'unknown-outcome' &&
      !call.retrySafe &&
      !core.options.retryAmbiguousWrites
    ) {
      this.reportFailure(call, false);
      throw new AmbiguousWriteError(member, call.label, { cause: outcome.error });
    }
    call.failures.push({ member, kind: outcome.kind, message: outcome.error.message });
    return TRY_NEXT;
  }

  /** A pinned scope keeps its member first while that member is usable. */
  private pinnedFirst(order: string[]): string[] {
    const pinned = this.scope.pinned;
    if (!pinned || order[0] === pinned || !order.includes(pinned)) return order;
    const record = this.core.store.records.get(pinned);
    // Only while it is usable: an open circuit or a health check's "down" ends the pin (4.2).
    if (!record || isOut(record)) return order;
    return [pinned, ...order.filter((m) => m !== pinned)];
  }

  private emitFailure(
    member: string,
    outcome: Exclude<AttemptOutcome, { kind: 'ok' }>,
    command: string,
    failedOver: boolean,
  ): void {
    this.core.emitter.emit('failure', {
      member,
      kind: outcome.kind,
      command,
      message: outcome.error.message,
      failedOver,
      at: this.core.now(),
    });
  }
}
