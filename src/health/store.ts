/**
 * The health store: what one isolate knows about the members of one member list.
 *
 * It is module-scoped and keyed by a fingerprint of member names and URLs (never tokens), so
 * every client built from the same config in an isolate shares it, even clients created per
 * request, and different configs never mix. All mutations are synchronous, so interleaved
 * requests in one isolate always see a consistent store.
 */
import {
  type CircuitSettings,
  type CircuitState,
  circuitPhase,
  closedCircuit,
  recordFailure,
  recordSuccess,
  tripCircuit,
} from '../circuit.js';
import type { ResolvedMember } from '../config.js';
import type { HealthEvent, HealthStatus, SwitchEvent } from '../events.js';
import {
  type MemberView,
  membersDueForCheck,
  type RequestHints,
  type Selection,
  selectMembers,
} from '../selector.js';
import type { MemberTransport } from '../transport/types.js';

export interface MemberRecord {
  member: ResolvedMember;
  status: HealthStatus;
  /** Why the status is what it is (`request`, `circuit`, `probe`, an availability error code). */
  statusReason?: string;
  checkedAt?: number;
  healthySince?: number;
  lagMs?: number;
  /** Exponentially weighted moving average of successful attempts' latency. */
  latencyEwmaMs?: number;
  circuit: CircuitState;
  lastError?: { kind: string; message: string; at: number };
}

/** JSON view of a store, safe to show anyone: no tokens, no credentials. */
export interface StoreSnapshot {
  key: string;
  active: string | undefined;
  activeSince: number;
  forced?: { name: string; until: number };
  members: Array<{
    name: string;
    url: string;
    weight: number;
    status: HealthStatus;
    statusReason?: string;
    circuit: 'closed' | 'open' | 'half-open';
    consecutiveFailures: number;
    graceUntil?: number;
    checkedAt?: number;
    healthySince?: number;
    lagMs?: number;
    latencyEwmaMs?: number;
    lastError?: { kind: string; message: string; at: number };
    availabilityUrl?: string;
  }>;
  switches: SwitchEvent[];
  at: number;
}

const EWMA_ALPHA = 0.2;
const SWITCH_HISTORY = 20;

export class HealthStore {
  readonly records = new Map<string, MemberRecord>();
  active: string | undefined;
  activeSince = 0;
  forced: { name: string; until: number } | undefined;
  readonly switches: SwitchEvent[] = [];
  /** Transports per member, kept here so per-request clients keep each member's sync token. */
  readonly transports = new Map<string, { token: string; transport: MemberTransport }>();
  private readonly lastCheckedAt = new Map<string, number>();
  /** Background checks running in this isolate: name -> start time. */
  private readonly checksInFlight = new Map<string, number>();

  constructor(
    readonly key: string,
    members: ResolvedMember[],
  ) {
    for (const m of members) this.addMember(m);
  }

  addMember(member: ResolvedMember): void {
    this.records.set(member.name, { member, status: 'unknown', circuit: closedCircuit() });
  }

  removeMember(name: string): boolean {
    this.transports.delete(name);
    this.lastCheckedAt.delete(name);
    this.checksInFlight.delete(name);
    return this.records.delete(name);
  }

  views(now: number): MemberView[] {
    const out: MemberView[] = [];
    for (const r of this.records.values()) {
      const view: MemberView = {
        name: r.member.name,
        weight: r.member.weight,
        status: r.status,
        phase: circuitPhase(r.circuit, now),
      };
      if (r.member.location) view.location = r.member.location;
      if (r.healthySince !== undefined) view.healthySince = r.healthySince;
      if (r.lagMs !== undefined) view.lagMs = r.lagMs;
      const tolerance = r.member.availability?.lagToleranceMs;
      if (tolerance !== undefined) view.lagToleranceMs = tolerance;
      out.push(view);
    }
    return out;
  }

  private selectionInput(
    hints: RequestHints | undefined,
    proximity: boolean,
    gracePeriodMs: number,
    now: number,
  ) {
    return {
      members: this.views(now),
      active: this.active,
      activeSince: this.activeSince,
      gracePeriodMs,
      proximity,
      now,
      ...(this.forced ? { forced: this.forced } : {}),
      ...(hints ? { hints } : {}),
    };
  }

  /** Runs the selector and applies its decision. Returns the selection (with `switched`). */
  select(
    hints: RequestHints | undefined,
    proximity: boolean,
    gracePeriodMs: number,
    now: number,
  ): Selection {
    if (this.forced && now >= this.forced.until) this.forced = undefined;
    const selection = selectMembers(this.selectionInput(hints, proximity, gracePeriodMs, now));
    if (selection.active !== this.active) {
      this.active = selection.active;
      this.activeSince = now;
      if (selection.switched) {
        this.switches.push({ ...selection.switched, at: now });
        if (this.switches.length > SWITCH_HISTORY) this.switches.shift();
      }
    }
    return selection;
  }

  /** Members a background check should look at now, marked as in flight. */
  claimDueChecks(
    hints: RequestHints | undefined,
    proximity: boolean,
    gracePeriodMs: number,
    checkIntervalMs: number,
    staleAfterMs: number,
    now: number,
  ): string[] {
    const input = this.selectionInput(hints, proximity, gracePeriodMs, now);
    const due = membersDueForCheck(input, this.lastCheckedAt, checkIntervalMs);
    const claimed: string[] = [];
    for (const name of due) {
      const started = this.checksInFlight.get(name);
      // A check whose promise never settled (its request ended in workerd) must not block
      // checks forever: it is considered gone after staleAfterMs.
      if (started !== undefined && now - started < staleAfterMs) continue;
      this.checksInFlight.set(name, now);
      this.lastCheckedAt.set(name, now);
      claimed.push(name);
    }
    return claimed;
  }

  finishCheck(name: string): void {
    this.checksInFlight.delete(name);
  }

  private setStatus(
    r: MemberRecord,
    status: HealthStatus,
    reason: string,
    now: number,
  ): HealthEvent | undefined {
    const previous = r.status;
    r.checkedAt = now;
    r.statusReason = reason;
    if (status === 'healthy') {
      if (previous !== 'healthy' || r.healthySince === undefined) r.healthySince = now;
    } else {
      r.healthySince = undefined;
    }
    r.status = status;
    if (previous === status) return undefined;
    return { member: r.member.name, status, previous, reason, at: now };
  }

  /** The member answered (a command error is an answer too). */
  recordSuccess(
    name: string,
    latencyMs: number,
    settings: CircuitSettings,
    reason: string,
    now: number,
  ): HealthEvent | undefined {
    const r = this.records.get(name);
    if (!r) return undefined;
    r.circuit = recordSuccess(r.circuit, settings, now);
    r.latencyEwmaMs =
      r.latencyEwmaMs === undefined
        ? latencyMs
        : r.latencyEwmaMs + EWMA_ALPHA * (latencyMs - r.latencyEwmaMs);
    return this.setStatus(r, 'healthy', reason, now);
  }

  /** A member-level failure. Returns a health event when it opened the circuit. */
  recordFailure(
    name: string,
    kind: string,
    message: string,
    settings: CircuitSettings,
    now: number,
  ): HealthEvent | undefined {
    const r = this.records.get(name);
    if (!r) return undefined;
    const wasOpen = r.circuit.open;
    r.circuit = recordFailure(r.circuit, settings, now);
    r.lastError = { kind, message, at: now };
    if (r.circuit.open && !wasOpen) return this.setStatus(r, 'unhealthy', 'circuit', now);
    if (r.circuit.open) r.healthySince = undefined;
    return undefined;
  }

  /** A health check's verdict. Unhealthy opens the circuit so selection leaves the member. */
  recordCheck(
    name: string,
    healthy: boolean,
    reason: string,
    settings: CircuitSettings,
    now: number,
    lagMs?: number,
  ): HealthEvent | undefined {
    const r = this.records.get(name);
    if (!r) return undefined;
    if (lagMs !== undefined) r.lagMs = lagMs;
    if (healthy) {
      r.circuit = recordSuccess(r.circuit, settings, now);
      return this.setStatus(r, 'healthy', reason, now);
    }
    r.circuit = tripCircuit(r.circuit, settings, now);
    r.lastError = { kind: 'check', message: reason, at: now };
    return this.setStatus(r, 'unhealthy', reason, now);
  }

  snapshot(now: number): StoreSnapshot {
    const members: StoreSnapshot['members'] = [];
    for (const r of this.records.values()) {
      const entry: StoreSnapshot['members'][number] = {
        name: r.member.name,
        url: r.member.url,
        weight: r.member.weight,
        status: r.status,
        circuit: circuitPhase(r.circuit, now),
        consecutiveFailures: r.circuit.consecutiveFailures,
      };
      if (r.statusReason !== undefined) entry.statusReason = r.statusReason;
      if (r.circuit.open && r.circuit.graceUntil !== undefined)
        entry.graceUntil = r.circuit.graceUntil;
      if (r.checkedAt !== undefined) entry.checkedAt = r.checkedAt;
      if (r.healthySince !== undefined) entry.healthySince = r.healthySince;
      if (r.lagMs !== undefined) entry.lagMs = r.lagMs;
      if (r.latencyEwmaMs !== undefined)
        entry.latencyEwmaMs = Math.round(r.latencyEwmaMs * 10) / 10;
      if (r.lastError) entry.lastError = { ...r.lastError };
      if (r.member.availability) entry.availabilityUrl = r.member.availability.url;
      members.push(entry);
    }
    const snap: StoreSnapshot = {
      key: this.key,
      active: this.active,
      activeSince: this.activeSince,
      members,
      switches: this.switches.map((s) => ({ ...s })),
      at: now,
    };
    if (this.forced) snap.forced = { ...this.forced };
    return snap;
  }
}

/** Fingerprint of a member list: names and URLs, order-independent, no secrets. */
export function storeKey(members: readonly ResolvedMember[]): string {
  return members
    .map((m) => `${m.name}=${m.url}`)
    .sort()
    .join('|');
}

const stores = new Map<string, HealthStore>();

/** The isolate-wide store for this member list (created on first use, never at import). */
export function healthStoreFor(members: readonly ResolvedMember[]): HealthStore {
  const key = storeKey(members);
  let store = stores.get(key);
  if (!store) {
    store = new HealthStore(key, [...members]);
    stores.set(key, store);
  }
  return store;
}

/** Forget every store of this isolate (tests, or to drop all learned health). */
export function resetHealthStores(): void {
  stores.clear();
}
