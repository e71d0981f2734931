/**
 * Member selection: a pure function of (members' state, current active member, request
 * hints, clock). No I/O and no hidden state, so it is unit- and property-tested directly.
 */
import type { CircuitPhase } from './circuit.js';
import type { HealthStatus, SwitchReason } from './events.js';

export interface MemberLocation {
  lat?: number;
  lon?: number;
  /** Cloudflare data-centre codes (`request.cf.colo`) this member is considered local to. */
  colos?: string[];
}

/** What the selector needs to know about one member. */
export interface MemberView {
  name: string;
  weight: number;
  location?: MemberLocation;
  status: HealthStatus;
  phase: CircuitPhase;
  /** Start of the current healthy streak; undefined while unhealthy or never observed. */
  healthySince?: number;
  /** Reported behind its replication-lag tolerance: a failover target, not a failback one. */
  lagging?: boolean;
  /**
   * Left as the active member because it failed (health check, circuit): not chosen as the
   * active member again before this time while another usable member is not in grace (Jedis'
   * and Lettuce's grace period). It stays in the order: request failover still tries it.
   */
  graceUntil?: number;
}

/** Where the request comes from (`request.cf` on Cloudflare); used only with proximity. */
export interface RequestHints {
  lat?: number;
  lon?: number;
  colo?: string;
}

export interface SelectionInput {
  members: readonly MemberView[];
  active: string | undefined;
  /** When the current active member was chosen. */
  activeSince: number;
  forced?: { name: string; until: number };
  /**
   * The active member published in the shared tier (one decision for all isolates). Followed
   * while it is usable here; an isolate that sees it fail decides on its own.
   */
  preferred?: string;
  gracePeriodMs: number;
  proximity: boolean;
  hints?: RequestHints;
  now: number;
}

export interface Selection {
  /**
   * Members to try, in order, every member exactly once: the active one first when it is usable
   * or forced, otherwise the ranking (healthy, unknown, half-open, down).
   */
  order: string[];
  /**
   * `forceActiveMember` holds: only the first member may be tried (the others are locked out
   * for maintenance, as Jedis' forceActiveDatabase does).
   */
  locked?: boolean;
  active: string | undefined;
  /** Set when the active member changes for a reason worth an event. */
  switched?: { from: string | undefined; to: string; reason: SwitchReason };
  /**
   * A half-open member that would be a better active member (heavier, or nearer): with health
   * checks off only a trial can close its circuit (the requester decides whether to send one).
   */
  trial?: string;
}

/** A member we would send traffic to first: circuit closed and not reported down. */
export function isUsable(m: MemberView): boolean {
  return m.phase === 'closed' && m.status !== 'unhealthy';
}

function inGrace(m: MemberView, now: number): boolean {
  return m.graceUntil !== undefined && now < m.graceUntil;
}

/** Healthy, in sync and has stayed so for a whole grace period: fit to fail back to. */
function isSettled(m: MemberView, now: number, gracePeriodMs: number): boolean {
  return (
    isUsable(m) &&
    m.status === 'healthy' &&
    !m.lagging &&
    !inGrace(m, now) &&
    m.healthySince !== undefined &&
    now - m.healthySince >= gracePeriodMs
  );
}

/** Rank class: 0 healthy, 1 unknown, 2 half-open, 3 down (open circuit or reported down). */
export function tierOf(status: HealthStatus, phase: CircuitPhase): number {
  if (phase === 'closed' && status !== 'unhealthy') return status === 'healthy' ? 0 : 1;
  return phase === 'half-open' ? 2 : 3;
}

function tier(m: MemberView): number {
  return tierOf(m.status, m.phase);
}

const EARTH_RADIUS_KM = 6371;

/** Great-circle distance in km (haversine). */
export function distanceKm(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const rad = Math.PI / 180;
  const dLat = (bLat - aLat) * rad;
  const dLon = (bLon - aLon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(aLat * rad) * Math.cos(bLat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** How far a member is from the request: 0 for a colo match, km for coordinates, else Infinity. */
export function proximityOf(m: MemberView, hints: RequestHints | undefined): number {
  if (!hints) return Number.POSITIVE_INFINITY;
  const loc = m.location;
  if (!loc) return Number.POSITIVE_INFINITY;
  if (hints.colo && loc.colos?.includes(hints.colo)) return 0;
  if (
    hints.lat !== undefined &&
    hints.lon !== undefined &&
    loc.lat !== undefined &&
    loc.lon !== undefined
  ) {
    return distanceKm(hints.lat, hints.lon, loc.lat, loc.lon);
  }
  return Number.POSITIVE_INFINITY;
}

function hasProximity(input: SelectionInput): boolean {
  const h = input.hints;
  return (
    input.proximity && !!h && (h.colo !== undefined || (h.lat !== undefined && h.lon !== undefined))
  );
}

/** Orders all members: healthy, unknown, half-open, down; then nearest or heaviest; then name. */
export function rankMembers(input: SelectionInput): MemberView[] {
  // Allocated only with proximity: this runs before every command.
  let distance: Map<string, number> | undefined;
  if (hasProximity(input)) {
    distance = new Map();
    for (const m of input.members) distance.set(m.name, proximityOf(m, input.hints));
  }
  return [...input.members].sort((a, b) => {
    const t = tier(a) - tier(b);
    if (t !== 0) return t;
    if (distance) {
      const d = distance.get(a.name)! - distance.get(b.name)!;
      if (d !== 0 && !Number.isNaN(d)) return d;
    }
    if (a.weight !== b.weight) return b.weight - a.weight;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/**
 * Why `candidate` would be a strictly better active member than `current`: nearer with
 * proximity, otherwise heavier. Undefined when it is not better.
 */
function betterBecause(
  candidate: MemberView,
  current: MemberView,
  input: SelectionInput,
): 'proximity' | 'failback' | undefined {
  if (hasProximity(input)) {
    const dc = proximityOf(candidate, input.hints);
    const dk = proximityOf(current, input.hints);
    if (dc !== dk) return dc < dk ? 'proximity' : undefined;
  }
  return candidate.weight > current.weight ? 'failback' : undefined;
}

function reasonForLeaving(current: MemberView | undefined): SwitchReason {
  if (!current) return 'forced'; // removed at run time
  return current.phase !== 'closed' ? 'circuit' : 'health-check';
}

export function selectMembers(input: SelectionInput): Selection {
  const ranked = rankMembers(input);
  // A handful of members: a scan is cheaper than building a Map per command.
  const byName = (name: string | undefined) =>
    name === undefined ? undefined : input.members.find((m) => m.name === name);
  const current = byName(input.active);
  let next: MemberView | undefined = current;
  let reason: SwitchReason | undefined;

  const forced = input.forced;
  const forcedMember = forced && input.now < forced.until ? byName(forced.name) : undefined;
  const preferred = byName(input.preferred);

  if (forcedMember) {
    next = forcedMember;
    reason = 'forced';
  } else if (preferred && isUsable(preferred)) {
    // The published member, for the reason it would have been chosen here: away from a member
    // that failed, back to a better one, or (between equals) the health check behind the record.
    next = preferred;
    reason =
      input.active === undefined
        ? undefined
        : current && isUsable(current)
          ? (betterBecause(preferred, current, input) ?? 'health-check')
          : reasonForLeaving(current);
  } else if (current && isUsable(current)) {
    // Sticky: keep a working member; move only to a clearly better one that has been healthy
    // for a whole grace period, and not sooner than a grace period after the last switch. The
    // best such member, not only the best-ranked one: a heavier member that lags or has just
    // come back does not hold failback to a settled one in between (as in Jedis' failback).
    if (input.now - input.activeSince >= input.gracePeriodMs) {
      for (const m of ranked) {
        const because = m === current ? undefined : betterBecause(m, current, input);
        if (because && isSettled(m, input.now, input.gracePeriodMs)) {
          next = m;
          reason = because;
          break;
        }
      }
    }
  } else {
    // Not back to a member left for failing within its grace period (no flapping between two
    // members whose health checks alternate), unless every usable member is in one.
    const firstUsable =
      ranked.find((m) => isUsable(m) && !inGrace(m, input.now)) ?? ranked.find(isUsable);
    if (firstUsable) {
      next = firstUsable;
      reason = input.active === undefined ? undefined : reasonForLeaving(current);
    } else if (!current) {
      // Nothing usable and nothing chosen yet (or the active one was removed): take the head
      // of the ranking so the data path still has somewhere to start.
      next = ranked[0];
      reason = input.active === undefined ? undefined : 'forced';
    }
  }

  // The active member leads when it is usable (or forced). When nothing is usable it stays the
  // active one, but the ranking says what to try first: a half-open member before one whose
  // circuit has just opened.
  const lead = next && (forcedMember || isUsable(next)) ? next : undefined;
  const order: string[] = [];
  if (lead) order.push(lead.name);
  for (const m of ranked) if (m !== lead) order.push(m.name);

  const selection: Selection = { order, active: next?.name };
  if (forcedMember) selection.locked = true;
  else if (lead) {
    for (const m of ranked) {
      if (m.phase === 'half-open' && betterBecause(m, lead, input)) {
        selection.trial = m.name;
        break;
      }
    }
  }
  if (next && next.name !== input.active && reason) {
    selection.switched = { from: input.active, to: next.name, reason };
  }
  return selection;
}
