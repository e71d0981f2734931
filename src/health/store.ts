/**
 * The health store: what one isolate knows about the members of one member list.
 *
 * It is module-scoped and keyed by a fingerprint of the member list (names, URLs, weights,
 * locations, availability APIs; never tokens or passwords), so every client built from the same
 * config in an isolate shares it, even clients created per request, and different configs
 * never mix. All mutations are synchronous, so interleaved
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
  type RequestHints,
  type Selection,
  selectMembers,
  tierOf,
} from '../selector.js';
import type { MemberTransport } from '../transport/types.js';
import type { SharedHealth } from './shared.js';

/** A selection kept for reuse, with the inputs it was made from. */
interface LastSelection {
  /** Without `switched` or `locked`: reused only while nothing is forced. */
  selection: Selection;
  preferred: string | undefined;
  /** The member objects, in record order. */
  members: ResolvedMember[];
  /** Each member's rank class (`tierOf`) when it was made. */
  tiers: number[];
}

export interface MemberRecord {
  member: ResolvedMember;
  status: HealthStatus;
  /** Why the status is what it is (`request`, `circuit`, `probe`, an availability error code). */
  statusReason?: string;
  checkedAt?: number;
  /** When a suspicion last brought the next refresh forward (see `suspect`). */
  suspectedAt?: number;
  /** `checkedAt` as merged from the shared record, to tell it from an observation made here. */
  sharedCheckedAt?: number;
  healthySince?: number;
  /** Behind its lag tolerance at the last check (availability API). */
  lagging?: boolean;
  /**
   * Left as the active member because it failed (health check, circuit): not made the active
   * member again before this time while another usable member is not in grace (Jedis' grace
   * period). Published in the shared record, so isolates and later cron runs keep it.
   */
  graceUntil?: number;
  /**
   * A trial PING (health checks off, half-open circuit) may be in flight until this time: at
   * most one at a time per member (see `FailoverCore.startTrial`).
   */
  trialUntil?: number;
  /** The health source for this member is misconfigured (401 from the availability API...). */
  configProblem?: string;
  /** Exponentially weighted moving average of successful attempts' latency. */
  latencyEwmaMs?: number;
  circuit: CircuitState;
  lastError?: { kind: string; message: string; at: number };
}

/**
 * Out here: its circuit is open (in grace or half-open) or a health check reported it down. Such
 * a member leads no pinned scope, takes no hedge, and is not adopted from a cron record.
 */
export function isOut(r: MemberRecord): boolean {
  return r.circuit.open || r.status === 'unhealthy';
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
    lagging?: boolean;
    configProblem?: string;
    latencyEwmaMs?: number;
    lastError?: { kind: string; message: string; at: number };
    availabilityUrl?: string;
  }>;
  switches: SwitchEvent[];
  /** What this isolate spent on health: probes per member, refreshes, shared-tier reads. */
  stats: HealthStats;
  /** When the shared tier was last read and merged, if ever. */
  sharedAt?: number;
  at: number;
}

export interface HealthStats {
  probes: Record<string, number>;
  refreshes: number;
  sharedReads: number;
  sharedHits: number;
}

const EWMA_ALPHA = 0.2;
const SWITCH_HISTORY = 20;

/**
 * Deletes the fields of `o` that are undefined, and returns it: snapshots and shared records
 * leave out what is not known rather than carry `undefined` keys.
 */
function compact<T extends object>(o: T): T {
  for (const k in o) if (o[k] === undefined) delete o[k];
  return o;
}

export class HealthStore {
  readonly records = new Map<string, MemberRecord>();
  active: string | undefined;
  activeSince = 0;
  forced: { name: string; until: number } | undefined;
  /**
   * The last `setActiveMember` in this isolate: while that member is still the active one and
   * is not out, it is kept over the shared record's choice for a grace period (as long as
   * failback waits after a switch).
   */
  manual: { name: string; at: number } | undefined;
  readonly switches: SwitchEvent[] = [];
  /**
   * Transports per member and per client setup (token, readYourWrites, cancellation), kept here
   * so per-request clients keep each member's sync token; clients set up differently keep
   * their own rather than replacing each other's on every call.
   */
  readonly transports = new Map<string, Map<string, MemberTransport>>();
  /** Database uids found by availability-API discovery, per member. */
  readonly uidCache = new Map<string, number>();
  readonly stats: HealthStats = { probes: {}, refreshes: 0, sharedReads: 0, sharedHits: 0 };
  /** Earliest time the next traffic-driven refresh may start (jittered). */
  nextRefreshAt = -Infinity;
  /** Start of the refresh running in this isolate, if any. */
  refreshStartedAt: number | undefined;
  /** A refresh or shared read has given every member a verdict at least once. */
  initialized = false;
  /** When this store last published its decision to the shared tier (the cron helper). */
  publishedAt: number | undefined;
  /** The active member the shared tier published, followed until `until`. */
  shared:
    | { active: string | undefined; activeSince?: number; at: number; until: number }
    | undefined;

  /** The last selection and what it was made from, while it can be reused (see `select`). */
  #last: LastSelection | undefined;

  constructor(
    readonly key: string,
    members: readonly ResolvedMember[],
  ) {
    for (const m of members) this.addMember(m);
  }

  addMember(member: ResolvedMember): void {
    this.records.set(member.name, { member, status: 'unknown', circuit: closedCircuit() });
  }

  removeMember(name: string): boolean {
    this.transports.delete(name);
    this.uidCache.delete(name);
    return this.records.delete(name);
  }

  /**
   * Runs the selector and applies its decision. Returns the selection (with `switched`).
   *
   * This runs before every command. In the steady state (same active member, every member in
   * the same rank class, nothing forced, no proximity hints, no heavier member healthy enough to
   * fail back to) the previous selection is the answer again, and is returned as it is: building
   * the members' views, sorting them and a new order per command was most of what this library
   * allocated per command (~1.7 KB), and at high concurrency that garbage is GC time.
   */
  select(
    hints: RequestHints | undefined,
    proximity: boolean,
    gracePeriodMs: number,
    now: number,
  ): Selection {
    if (this.forced && now >= this.forced.until) this.forced = undefined;
    const shared = this.shared;
    const manual = this.manual;
    const chosen = manual && manual.name === this.active && this.records.get(manual.name);
    const held = !!chosen && now - manual!.at < gracePeriodMs && !isOut(chosen);
    // The published choice is followed only while the record is fresh, and not over a working
    // member set by hand here within a grace period (one that fails goes to the record's).
    const preferred = shared && now < shared.until && !held ? shared.active : undefined;
    const reusable = this.forced === undefined && !(proximity && hints !== undefined);
    if (reusable) {
      const last = this.#reuse(preferred, now);
      if (last) return last;
    }
    const members: MemberView[] = [];
    const tiers: number[] = [];
    for (const r of this.records.values()) {
      const phase = circuitPhase(r.circuit, now);
      members.push({
        name: r.member.name,
        weight: r.member.weight,
        location: r.member.location,
        status: r.status,
        phase,
        healthySince: r.healthySince,
        lagging: r.lagging,
        graceUntil: r.graceUntil,
      });
      tiers.push(tierOf(r.status, phase));
    }
    const selection = selectMembers({
      members,
      active: this.active,
      activeSince: this.activeSince,
      gracePeriodMs,
      proximity,
      now,
      forced: this.forced,
      preferred,
      hints,
    });
    if (selection.active !== this.active) {
      const left = this.active === undefined ? undefined : this.records.get(this.active);
      const reason = selection.switched?.reason;
      // Left because it failed here (not for a better member, nor by hand): a grace period
      // before it may lead again, as in Jedis and Lettuce.
      if (left && isOut(left) && (reason === 'health-check' || reason === 'circuit')) {
        left.graceUntil = Math.max(left.graceUntil ?? 0, now + gracePeriodMs);
      }
      this.setActive(selection.active, reason, now);
    }
    this.#last = undefined;
    if (reusable && this.#timeCannotChange()) {
      const kept: Selection = {
        order: Object.freeze(selection.order) as string[],
        active: this.active,
      };
      if (selection.trial !== undefined) kept.trial = selection.trial;
      const members = [...this.records.values()].map((r) => r.member);
      this.#last = { selection: kept, preferred, members, tiers };
    }
    return selection;
  }

  /** The last selection, if every input it was made from is unchanged. Allocates nothing. */
  #reuse(preferred: string | undefined, now: number): Selection | undefined {
    const last = this.#last;
    if (
      !last ||
      last.selection.active !== this.active ||
      last.preferred !== preferred ||
      last.members.length !== this.records.size
    ) {
      return undefined;
    }
    let i = 0;
    for (const r of this.records.values()) {
      // The member object is replaced when its weight changes; a removed and re-added member
      // is a new one.
      if (
        r.member !== last.members[i] ||
        tierOf(r.status, circuitPhase(r.circuit, now)) !== last.tiers[i]
      ) {
        return undefined;
      }
      i++;
    }
    return last.selection;
  }

  /**
   * Can the passing of time alone change this selection, with every rank class the same? Only
   * through a failback: a member heavier than the active one, healthy, settling over its grace
   * period (the grace period and `activeSince` matter only then). Without one,
   * time acts only through circuit phases, which the rank classes show.
   */
  #timeCannotChange(): boolean {
    const active = this.active === undefined ? undefined : this.records.get(this.active);
    if (!active) return false;
    for (const r of this.records.values()) {
      if (r !== active && r.status === 'healthy' && r.member.weight > active.member.weight) {
        return false;
      }
    }
    return true;
  }

  /**
   * Makes `name` the active member. With a reason the change is a switch: kept in the recent
   * history (bounded) and returned for the `switch` event; the first choice has no reason.
   */
  setActive(
    name: string | undefined,
    reason: SwitchEvent['reason'] | undefined,
    now: number,
  ): SwitchEvent | undefined {
    const from = this.active;
    this.active = name;
    this.activeSince = now;
    if (name === undefined || reason === undefined) return undefined;
    const event: SwitchEvent = { from, to: name, reason, at: now };
    this.switches.push(event);
    if (this.switches.length > SWITCH_HISTORY) this.switches.shift();
    return event;
  }

  /** `lagging`: what a check or a shared record says of its lag (a request says nothing). */
  private setStatus(
    r: MemberRecord,
    status: HealthStatus,
    reason: string,
    now: number,
    lagging?: boolean,
  ): HealthEvent | undefined {
    const previous = r.status;
    const wasLagging = r.lagging === true;
    if (lagging !== undefined) r.lagging = lagging;
    r.checkedAt = now;
    r.statusReason = reason;
    // Failback waits for a whole grace period healthy *and in sync*: a lagging member has no streak.
    if (status !== 'healthy' || r.lagging) r.healthySince = undefined;
    else if (previous !== 'healthy' || r.healthySince === undefined) r.healthySince = now;
    r.status = status;
    const lagChanged = wasLagging !== (r.lagging === true);
    if (previous === status && !lagChanged) return undefined;
    const event: HealthEvent = { member: r.member.name, status, previous, reason, at: now };
    // Lagging, or just caught up: said in the event (a change of lag alone is one too).
    if (r.lagging || lagChanged) event.lagging = r.lagging === true;
    return event;
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
    // Out for its grace period: a late answer changes neither its circuit nor its health.
    if (!r || circuitPhase(r.circuit, now) === 'open') return undefined;
    r.circuit = recordSuccess(r.circuit, settings, now);
    const ewma = r.latencyEwmaMs ?? latencyMs;
    r.latencyEwmaMs = ewma + EWMA_ALPHA * (latencyMs - ewma);
    // A check's "down" (the availability API: no quorum, say) stands until a check says
    // otherwise: requests in flight when it came, or sent there as a last resort, still succeed,
    // and must not bring the member back. Only a down its own circuit decided is undone here.
    if (r.status === 'unhealthy' && r.statusReason !== 'circuit') return undefined;
    return this.setStatus(r, 'healthy', reason, now);
  }

  /**
   * A member-level failure. Returns a health event when it opened the circuit. `trip` opens a
   * closed circuit at once, whatever its counters say.
   */
  recordFailure(
    name: string,
    kind: string,
    message: string,
    settings: CircuitSettings,
    now: number,
    trip?: boolean,
  ): HealthEvent | undefined {
    const r = this.records.get(name);
    if (!r) return undefined;
    const wasOpen = r.circuit.open;
    r.circuit = (trip && !wasOpen ? tripCircuit : recordFailure)(r.circuit, settings, now);
    r.lastError = { kind, message, at: now };
    if (!r.circuit.open) return undefined;
    if (!wasOpen) return this.setStatus(r, 'unhealthy', 'circuit', now);
    r.healthySince = undefined;
    return undefined;
  }

  /**
   * A failure that says too little to count against the circuit (a timeout the call's deadline
   * cut short): the member is checked at the next refresh, and that refresh is due now, so a
   * member that hangs is still found out by a probe with its full timeout.
   */
  suspect(name: string, message: string, now: number, intervalMs: number): void {
    const r = this.records.get(name);
    if (!r) return;
    r.lastError = { kind: 'suspect', message, at: now };
    // Once per interval at most: a member merely slower than a tight budget would otherwise
    // start a refresh as soon as the last one ended.
    if (now - (r.suspectedAt ?? Number.NEGATIVE_INFINITY) < intervalMs) return;
    r.suspectedAt = now;
    this.nextRefreshAt = Math.min(this.nextRefreshAt, now);
  }

  /**
   * A health check's verdict. Unhealthy takes the member out of selection (without touching
   * its circuit, which counts request failures); a healthy verdict closes a half-open circuit,
   * and a failed one re-opens it for another grace period. A `refused` check (the deciding
   * probe was misconfigured: a wrong token, a wrong URL) only records the problem: it says
   * nothing about the member, and a wrong token must not move traffic away silently, for this
   * client or for the others sharing the store (design 4.4: config errors are not failover).
   */
  recordCheck(
    name: string,
    verdict: {
      healthy: boolean;
      lagging?: boolean;
      reason: string;
      configProblem?: string;
      refused?: boolean;
    },
    settings: CircuitSettings,
    now: number,
  ): HealthEvent | undefined {
    const r = this.records.get(name);
    if (!r) return undefined;
    r.configProblem = verdict.configProblem;
    if (verdict.refused) return undefined;
    const { healthy, reason } = verdict;
    if (circuitPhase(r.circuit, now) === 'half-open') {
      r.circuit = (healthy ? recordSuccess : tripCircuit)(r.circuit, settings, now);
    }
    if (!healthy) r.lastError = { kind: 'check', message: reason, at: now };
    // Only a check that saw the lag says it (the availability API answering): PING, a custom
    // probe or a member down leave it as it was, so "caught up" is never said without knowing.
    return this.setStatus(r, healthy ? 'healthy' : 'unhealthy', reason, now, verdict.lagging);
  }

  /** The record the cron helper publishes: every member's health and the chosen active one. */
  toShared(now: number): SharedHealth {
    const members: SharedHealth['members'] = {};
    for (const r of this.records.values()) {
      // Never checked here: nothing to vouch for. Published as checked now, its "unknown" would
      // overwrite what isolates observed themselves; left out, they check it themselves.
      if (r.checkedAt === undefined) continue;
      members[r.member.name] = compact({
        status: r.status,
        checkedAt: r.checkedAt,
        reason: r.statusReason,
        healthySince: r.healthySince,
        lagging: r.lagging || undefined,
        graceUntil: (r.graceUntil ?? 0) > now ? r.graceUntil : undefined,
      });
    }
    return compact({
      version: 1,
      key: this.key,
      at: now,
      members,
      active: this.active,
      activeSince: this.active === undefined ? undefined : this.activeSince,
    });
  }

  /**
   * Merges a shared record: per member the newer observation wins (over one made here and over
   * one merged from a newer record: KV reads can go back a generation), and a local failure
   * newer than the shared check beats a shared "healthy". The published choice is followed
   * unless a newer record was merged already. Returns the health events it caused and the
   * members the record cannot vouch for, which the caller checks itself (otherwise they would
   * stay out until the next cron run): those this isolate saw fail after the record was made,
   * and those whose circuit is open here, which only a check (or a trial request) can close.
   */
  applyShared(
    shared: SharedHealth,
    followForMs: number,
    now: number,
  ): { events: HealthEvent[]; keptLocal: string[] } {
    const events: HealthEvent[] = [];
    const keptLocal: string[] = [];
    if (shared.key !== this.key) return { events, keptLocal };
    for (const [name, r] of this.records) {
      const remote = shared.members[name];
      // Not in the record (added here at run time): only this isolate can check it.
      if (!remote) {
        keptLocal.push(name);
        continue;
      }
      // A grace period the publisher started (it left the member for failing) holds here too,
      // whoever's observation is newer: an isolate deciding alone must not lead with it either.
      if (typeof remote.graceUntil === 'number') {
        r.graceUntil = Math.max(r.graceUntil ?? 0, remote.graceUntil);
      }
      // An observation this isolate made itself after the record's; one it merged from the
      // record before carries the record's own time and is not "local" (else every refresh
      // would re-probe each member the record reports down).
      const ownCheck = r.checkedAt !== undefined && r.checkedAt !== r.sharedCheckedAt;
      const failedSince = (r.lastError?.at ?? -Infinity) > remote.checkedAt;
      const localIsNewer =
        (ownCheck && remote.checkedAt <= r.checkedAt!) ||
        (remote.status === 'healthy' && failedSince);
      const mergedIsNewer = !ownCheck && remote.checkedAt < (r.sharedCheckedAt ?? -Infinity);
      if (localIsNewer || mergedIsNewer) {
        if ((localIsNewer && r.status === 'unhealthy') || r.circuit.open || failedSince) {
          keptLocal.push(name);
        }
        continue;
      }
      if (r.circuit.open) keptLocal.push(name);
      // The record's own check time and healthy streak, not the time of this merge.
      const event = this.setStatus(
        r,
        remote.status,
        remote.reason ?? r.statusReason!,
        remote.checkedAt,
        remote.lagging === true,
      );
      r.sharedCheckedAt = remote.checkedAt;
      if (remote.status === 'healthy' && !r.lagging) {
        r.healthySince = remote.healthySince ?? remote.checkedAt;
      }
      if (event) events.push({ ...event, reason: 'shared', at: now });
    }
    // Nor one older than this store's own publication (a cron isolate that serves traffic too).
    if (shared.at >= Math.max(this.shared?.at ?? -Infinity, this.publishedAt ?? -Infinity)) {
      this.shared = {
        active: shared.active,
        activeSince: shared.activeSince,
        at: shared.at,
        until: shared.at + followForMs,
      };
    }
    this.initialized = true;
    return { events, keptLocal };
  }

  snapshot(now: number): StoreSnapshot {
    const snap: StoreSnapshot = {
      key: this.key,
      active: this.active,
      activeSince: this.activeSince,
      members: [...this.records.values()].map((r) => {
        const { member, circuit } = r;
        return compact({
          name: member.name,
          url: member.url,
          weight: member.weight,
          status: r.status,
          statusReason: r.statusReason,
          circuit: circuitPhase(circuit, now),
          consecutiveFailures: circuit.consecutiveFailures,
          // The later of its open circuit's grace period and the one after it was left for failing.
          graceUntil:
            Math.max(
              circuit.open ? circuit.graceUntil! : 0,
              (r.graceUntil ?? 0) > now ? r.graceUntil! : 0,
            ) || undefined,
          checkedAt: r.checkedAt,
          healthySince: r.healthySince,
          lagging: r.lagging || undefined,
          configProblem: r.configProblem || undefined,
          latencyEwmaMs:
            r.latencyEwmaMs === undefined ? undefined : Math.round(r.latencyEwmaMs * 10) / 10,
          lastError: r.lastError,
          availabilityUrl: member.availability?.url,
        });
      }),
      switches: this.switches,
      stats: this.stats,
      at: now,
    };
    if (this.forced) snap.forced = this.forced;
    if (this.shared) snap.sharedAt = this.shared.at;
    // Handed to users and status pages: a deep copy, so nothing they do reaches the store.
    return structuredClone(snap);
  }
}

/**
 * Fingerprint of a member list: names and URLs, and what selection and probing read from each
 * member (weight, location, availability API), order-independent, no secrets. Clients that would
 * rank or probe members differently get stores of their own.
 */
export function storeKey(members: readonly ResolvedMember[]): string {
  return members
    .map((m) => {
      const a = m.availability;
      let key = `${m.name}=${m.url}`;
      if (m.weight !== 1) key += ` weight=${m.weight}`;
      const l = m.location;
      // Normalised: the same place written with its keys or colos in another order is one key.
      if (l) key += ` location=${l.lat ?? ''},${l.lon ?? ''},${[...(l.colos ?? [])].sort()}`;
      if (a) key += ` availability=${a.url} ${a.bdbUid ?? ''} ${a.lagToleranceMs} ${!!a.local}`;
      return key;
    })
    .sort()
    .join('|');
}

const stores = new Map<string, HealthStore>();

/** The isolate-wide store for this member list (created on first use, never at import). */
export function healthStoreFor(members: readonly ResolvedMember[]): HealthStore {
  const key = storeKey(members);
  let store = stores.get(key);
  if (!store) {
    store = new HealthStore(key, members);
    stores.set(key, store);
  }
  return store;
}

/** Forget every store of this isolate (tests, or to drop all learned health). */
export function resetHealthStores(): void {
  stores.clear();
}
