/**
 * Per-member circuit breaker as pure state transitions over plain, serializable data.
 *
 * Why not cockatiel's breaker: its state lives in closures and timers, while ours has to be
 * copied into a shared tier (KV / Cache API) between isolates, driven by an injected clock
 * in tests, and cost nothing in the client bundle. The shape follows cockatiel all the same:
 * the trip decision is a pluggable strategy (consecutive failures, failure rate over a
 * window), and a breaker trips when any configured strategy says so.
 *
 * "Half-open" is not stored: it is an open circuit whose grace period has ended, derived from
 * the clock, so a serialized state never goes stale in that respect.
 */

export interface ConsecutiveStrategyOptions {
  /** Trip after this many member-level failures in a row. */
  threshold: number;
}

export interface RateStrategyOptions {
  /** Trip when failures / attempts in the window reach this share (0..1]. */
  threshold: number;
  /** ...and at least this many failures happened in the window. */
  minimumFailures: number;
  /** Length of the sliding window in ms. */
  windowMs: number;
}

export interface CircuitSettings {
  consecutive: ConsecutiveStrategyOptions | false;
  rate: RateStrategyOptions | false;
  /** How long an open circuit keeps its member out of selection. */
  gracePeriodMs: number;
}

/** Ten buckets: enough resolution for a window, bounded memory at any request rate. */
const BUCKETS = 10;

export interface RateBucket {
  /** Start of the bucket (ms since epoch, aligned to windowMs / BUCKETS). */
  start: number;
  attempts: number;
  failures: number;
}

export interface CircuitState {
  open: boolean;
  /** When the circuit last opened. */
  openedAt?: number;
  /** When the open circuit's grace period ends (it is half-open from then on). */
  graceUntil?: number;
  consecutiveFailures: number;
  buckets: RateBucket[];
}

export type CircuitPhase = 'closed' | 'open' | 'half-open';

export function closedCircuit(): CircuitState {
  return { open: false, consecutiveFailures: 0, buckets: [] };
}

export function circuitPhase(state: CircuitState, now: number): CircuitPhase {
  if (!state.open) return 'closed';
  return state.graceUntil !== undefined && now >= state.graceUntil ? 'half-open' : 'open';
}

function countInWindow(state: CircuitState, now: number, windowMs: number, failed: boolean) {
  const size = Math.max(1, Math.floor(windowMs / BUCKETS));
  const start = now - (now % size);
  const buckets = state.buckets.filter((b) => b.start > now - windowMs);
  let current = buckets[buckets.length - 1];
  if (!current || current.start !== start) {
    current = { start, attempts: 0, failures: 0 };
    buckets.push(current);
  }
  current.attempts += 1;
  if (failed) current.failures += 1;
  return buckets.slice(-BUCKETS);
}

/**
 * A request on the member succeeded (command errors count as success: the member answered).
 * While the circuit is open and in its grace period nothing changes: a late answer to a request
 * sent before it opened does not cut the grace period short (design 4.3: open, grace, then
 * half-open, where one success closes it).
 */
export function recordSuccess(
  state: CircuitState,
  settings: CircuitSettings,
  now: number,
): CircuitState {
  if (circuitPhase(state, now) === 'open') return state;
  // The common case on the hot path: a closed, quiet circuit and the same bucket as the last
  // call. Count in place rather than allocate a new state per command.
  const last = state.buckets[state.buckets.length - 1];
  if (!state.open && state.consecutiveFailures === 0 && settings.rate && last) {
    const size = Math.max(1, Math.floor(settings.rate.windowMs / BUCKETS));
    if (last.start === now - (now % size)) {
      last.attempts += 1;
      return state;
    }
  }
  // A circuit that closes (half-open, then a success) starts a new window: the failures that
  // opened it, and stray ones while it was open, must not re-open it at the next failure.
  return {
    open: false,
    consecutiveFailures: 0,
    buckets: settings.rate
      ? countInWindow(state.open ? closedCircuit() : state, now, settings.rate.windowMs, false)
      : [],
  };
}

/** A member-level failure (not sent, unknown outcome). Returns the new state; check `.open`. */
export function recordFailure(
  state: CircuitState,
  settings: CircuitSettings,
  now: number,
): CircuitState {
  const reopen = state.open && now >= (state.graceUntil ?? 0);
  if (state.open && !reopen) {
    // Already open and still in grace: stray failures of in-flight requests change nothing.
    return state;
  }
  const consecutiveFailures = state.consecutiveFailures + 1;
  const buckets = settings.rate ? countInWindow(state, now, settings.rate.windowMs, true) : [];
  let trip = reopen;
  if (!trip && settings.consecutive) {
    trip = consecutiveFailures >= settings.consecutive.threshold;
  }
  if (!trip && settings.rate) {
    let attempts = 0;
    let failures = 0;
    for (const b of buckets) {
      attempts += b.attempts;
      failures += b.failures;
    }
    trip =
      failures >= settings.rate.minimumFailures && failures / attempts >= settings.rate.threshold;
  }
  if (!trip) return { open: false, consecutiveFailures, buckets };
  return {
    open: true,
    openedAt: now,
    graceUntil: now + settings.gracePeriodMs,
    consecutiveFailures,
    buckets,
  };
}

/** Open the circuit now regardless of counters (a health check said the member is down). */
export function tripCircuit(
  state: CircuitState,
  settings: CircuitSettings,
  now: number,
): CircuitState {
  return { ...state, open: true, openedAt: now, graceUntil: now + settings.gracePeriodMs };
}
