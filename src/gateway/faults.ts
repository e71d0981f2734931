import type { AvailabilityOverride } from './types.js';

/**
 * Fault-injection state shared by the admin endpoints and the availability emulation: lets
 * tests and local clusters make a member look unavailable or lagging without killing it.
 */
export class FaultState {
  /** Forced availability answer; `null` reports the real state. */
  availability: AvailabilityOverride | null = null;
  /** Emulated replication lag in ms, compared with `availability_lag_tolerance_ms`. */
  lagMs = 0;
}

/** Validates an override from untrusted input; returns an error message when invalid. */
export function overrideProblem(value: unknown): string | undefined {
  if (value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    return 'body must be {"status": <int>, "errorCode"?: string, "description"?: string} or null';
  }
  const { status, errorCode, description } = value as Record<string, unknown>;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return 'status must be an integer HTTP status between 200 and 599';
  }
  // These statuses forbid a response body; the availability API always sends one.
  if (status === 204 || status === 205 || status === 304) {
    return 'status must be one that carries a body (not 204, 205 or 304)';
  }
  if (errorCode !== undefined && typeof errorCode !== 'string') return 'errorCode must be a string';
  if (description !== undefined && typeof description !== 'string') {
    return 'description must be a string';
  }
  return undefined;
}
