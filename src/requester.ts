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
} from './health/checker.js';
import type { HealthStore } from './health/store.js';
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
}

/** Everything a client shares between its scopes: options, store, events, transports. */
export class FailoverCore {
  /**
   * This client's own credentials. The store may be shared with clients holding other tokens
   * for the same URLs (a read-only token, say), so tokens are never taken from it.
   */
  readonly credentials = new Map<string, string>();

  constructor(
    readonly options: ResolvedOptions,
    readonly store: HealthStore,
    readonly emitter: Emitter,
  ) {
    for (const m of options.members) this.credentials.set(m.name, m.token);
  }

  now(): number {
    return this.options.now();
  }

  transport(name: string): MemberTransport | undefined {
    const record = this.store.records.get(name);
    const token = this.credentials.get(name);
    if (!record || token === undefined) return undefined;
    const { member } = record;
    const cached = this.store.transports.get(name);
    const cancelAlways = this.options.cancellation === 'always';
    if (
      cached &&
      cached.token === token &&
      cached.fetch === this.options.fetch &&
      cached.cancelAlways === cancelAlways
    ) {
      return cached.transport;
    }
    const transportOptions: Parameters<typeof createRestTransport>[1] = {
      readYourWrites: this.options.readYourWrites,
      cancelAlways,
    };
    if (this.options.fetch) transportOptions.fetch = this.options.fetch;
    const transport = createRestTransport(
      { name: member.name, url: member.url, token },
      transportOptions,
    );
    this.store.transports.set(name, { token, fetch: this.options.fetch, cancelAlways, transport });
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
  refreshIfStale(scope: RequestScope): Promise<void> | undefined {
    // Synchronous when fresh: this runs before every command.
    if (!this.options.health.enabled || this.now() < this.store.nextRefreshAt) return undefined;
    const deps = this.checkerDeps;
    const running = maybeStartRefresh(deps);
    if (!running) return undefined;
    if (scope.waitUntil) scope.waitUntil(running.done);
    return this.store.initialized ? undefined : awaitInitialization(deps, running);
  }

  /** Probes every member now, publishes to the shared tier, and returns the snapshot (cron). */
  async refreshAll(): Promise<void> {
    const deps = this.checkerDeps;
    // This is where the shared decision is made: it must follow the grace rules itself, not an
    // older published choice (which could fail back to a member the moment it answers again).
    this.store.shared = undefined;
    this.store.refreshStartedAt = this.now();
    this.store.nextRefreshAt = this.now() + this.options.health.intervalMs;
    try {
      await checkAll(deps);
    } finally {
      this.store.refreshStartedAt = undefined;
    }
    this.select(undefined);
    await publishShared(deps);
  }

  recordOutcome(name: string, outcome: AttemptOutcome): void {
    const now = this.now();
    const o = this.options;
    if (outcome.kind === 'ok') {
      const event = this.store.recordSuccess(name, outcome.latencyMs, o.circuit, 'request', now);
      if (event) this.emitter.emit('health', event);
      return;
    }
    if (outcome.kind === 'config') return;
    // Our own abort (deadline spent, request gone) says nothing about the member.
    if (outcome.error instanceof MemberRequestError && outcome.error.reason === 'aborted') return;
    const event = this.store.recordFailure(
      name,
      outcome.kind,
      outcome.error.message,
      o.circuit,
      now,
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

interface Attempt {
  member: string;
  /** Only for hedged reads, the one case where we cancel an attempt ourselves. */
  controller?: AbortController;
  /** Set when we aborted it ourselves (hedge loser): its outcome says nothing about health. */
  cancelled: boolean;
  /** The transport's answer, awaited directly when attempts run one at a time. */
  sent?: Promise<AttemptOutcome>;
  promise: Promise<{ attempt: Attempt; outcome: AttemptOutcome }>;
}

/** Resolves after `ms`, or never if `ms` is undefined; the timer is cleared by `cancel`. */
function delay(ms: number | undefined): { promise: Promise<'hedge'>; cancel: () => void } {
  if (ms === undefined) return { promise: new Promise(() => {}), cancel: () => {} };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<'hedge'>((resolve) => {
    timer = setTimeout(() => resolve('hedge'), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

export class FailoverRequester implements Requester {
  readYourWrites = true;
  upstashSyncToken = '';

  constructor(
    private readonly core: FailoverCore,
    readonly scope: RequestScope = {},
  ) {}

  async request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
    const memberRequest = toMemberRequest(req);
    const reply = await this.execute(memberRequest);
    if (memberRequest.kind !== 'command' && !Array.isArray(reply)) {
      // A discarded transaction: one error for the whole batch, message unchanged.
      throw new upstashErrors.UpstashError(reply.error ?? 'transaction discarded');
    }
    return reply as UpstashResponse<TResult>;
  }

  /** Runs one request with failover; resolves to the member's decoded REST reply. */
  async execute(request: MemberRequest): Promise<RestReply | RestReply[]> {
    const core = this.core;
    const o = core.options;
    const scope = this.scope;
    const label = request.kind === 'command' ? commandName(request.command) : request.kind;
    const safety =
      request.kind === 'command'
        ? classifyCommand(request.command)
        : classifyBatch(request.commands, request.kind);
    const retrySafe = safety !== 'non-idempotent-write';
    const started = core.now();
    const deadlineAt = Math.min(
      started + o.deadlineMs,
      scope.deadlineAt ?? Number.POSITIVE_INFINITY,
    );

    const coldStart = core.refreshIfStale(scope);
    if (coldStart) await coldStart;
    const selection = core.select(scope.hints);
    const ordered = this.pinnedFirst(selection.order);
    const order = o.requestFailover ? ordered : ordered.slice(0, 1);

    const failures: MemberAttemptFailure[] = [];
    const pending = new Set<Attempt>();
    let current: Attempt | undefined;
    let next = 0;

    // Only a hedged read can have two attempts in flight and so ever cancels one; other calls
    // skip the per-attempt AbortController (a measurable share of the per-command cost).
    const hedgeAfter = safety === 'read' ? o.hedgeAfterMs : undefined;

    const launch = (): boolean => {
      const member = order[next];
      const remaining = deadlineAt - core.now();
      if (member === undefined || remaining <= 0) return false;
      next += 1;
      const transport = core.transport(member);
      if (!transport) return launch();
      const attempt: Attempt = { member, cancelled: false, promise: undefined as never };
      let signal = scope.signal;
      let detach: (() => void) | undefined;
      if (hedgeAfter !== undefined) {
        const controller = new AbortController();
        attempt.controller = controller;
        signal = controller.signal;
        const onAbort = () => controller.abort(scope.signal?.reason);
        scope.signal?.addEventListener('abort', onAbort, { once: true });
        detach = () => scope.signal?.removeEventListener('abort', onAbort);
      }
      const sendOptions: SendOptions = { timeoutMs: Math.min(o.timeoutMs, remaining) };
      if (signal) sendOptions.signal = signal;
      const sent = transport.send(request, sendOptions);
      // One attempt at a time needs no bookkeeping beyond the promise it is awaited through.
      if (hedgeAfter === undefined) {
        attempt.sent = sent;
        current = attempt;
        return true;
      }
      attempt.promise = sent.then((outcome) => {
        detach?.();
        return { attempt, outcome };
      });
      pending.add(attempt);
      return true;
    };

    const cancelOthers = (winner: Attempt) => {
      for (const a of pending) {
        if (a === winner) continue;
        a.cancelled = true;
        a.controller?.abort();
      }
      pending.clear();
    };

    while (true) {
      scope.signal?.throwIfAborted();
      let settled: Awaited<Attempt['promise']> | 'hedge';
      if (hedgeAfter === undefined) {
        if (!launch()) break;
        settled = { attempt: current!, outcome: await current!.sent! };
      } else {
        if (pending.size === 0 && !launch()) break;
        const timer = delay(next < order.length ? hedgeAfter : undefined);
        settled = await Promise.race([...[...pending].map((a) => a.promise), timer.promise]);
        timer.cancel();
      }
      if (settled === 'hedge') {
        launch();
        continue;
      }
      const { attempt, outcome } = settled;
      pending.delete(attempt);
      if (attempt.cancelled) continue;
      core.recordOutcome(attempt.member, outcome);

      if (outcome.kind === 'ok') {
        cancelOthers(attempt);
        if (scope.pin) scope.pinned = attempt.member;
        return outcome.reply;
      }
      if (outcome.kind === 'config') {
        cancelOthers(attempt);
        this.emitFailure(attempt.member, outcome, label, false);
        throw new MemberConfigError(attempt.member, outcome.status, outcome.error.message, {
          cause: outcome.error,
        });
      }
      if (scope.signal?.aborted) {
        cancelOthers(attempt);
        scope.signal.throwIfAborted();
      }
      const ambiguous = outcome.kind === 'unknown-outcome' && !retrySafe && !o.retryAmbiguousWrites;
      const moreToTry = !ambiguous && (pending.size > 0 || next < order.length);
      this.emitFailure(attempt.member, outcome, label, moreToTry);
      // A failure of the active member may have opened its circuit: let later requests
      // (and the switch event) see that now rather than on the next call.
      core.select(scope.hints);
      if (ambiguous) {
        cancelOthers(attempt);
        throw new AmbiguousWriteError(attempt.member, label, { cause: outcome.error });
      }
      failures.push({ member: attempt.member, kind: outcome.kind, message: outcome.error.message });
    }

    for (const member of order.slice(next)) {
      failures.push({ member, kind: 'skipped', message: 'deadline reached before it was tried' });
    }
    throw new AllMembersFailedError(label, failures);
  }

  /** A pinned scope keeps its member first while that member's circuit is closed. */
  private pinnedFirst(order: string[]): string[] {
    const pinned = this.scope.pinned;
    if (!pinned || order[0] === pinned || !order.includes(pinned)) return order;
    const record = this.core.store.records.get(pinned);
    if (!record || record.circuit.open) return order;
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
