import { describe, expect, it } from 'vitest';
import {
  type CircuitSettings,
  circuitPhase,
  closedCircuit,
  recordFailure,
  recordSuccess,
  tripCircuit,
} from '../../src/circuit.js';

const consecutiveOnly: CircuitSettings = {
  consecutive: { threshold: 3 },
  rate: false,
  gracePeriodMs: 1000,
};
const rateOnly: CircuitSettings = {
  consecutive: false,
  rate: { threshold: 0.5, minimumFailures: 3, windowMs: 10_000 },
  gracePeriodMs: 1000,
};

describe('circuit breaker', () => {
  it('opens after the configured consecutive failures, not before', () => {
    let s = closedCircuit();
    s = recordFailure(s, consecutiveOnly, 0);
    s = recordFailure(s, consecutiveOnly, 1);
    expect(circuitPhase(s, 2)).toBe('closed');
    s = recordFailure(s, consecutiveOnly, 2);
    expect(circuitPhase(s, 2)).toBe('open');
    expect(s.graceUntil).toBe(1002);
  });

  it('a success resets the consecutive count', () => {
    let s = closedCircuit();
    s = recordFailure(s, consecutiveOnly, 0);
    s = recordFailure(s, consecutiveOnly, 1);
    s = recordSuccess(s, consecutiveOnly, 2);
    s = recordFailure(s, consecutiveOnly, 3);
    s = recordFailure(s, consecutiveOnly, 4);
    expect(circuitPhase(s, 5)).toBe('closed');
  });

  it('becomes half-open when the grace period ends, and a success closes it', () => {
    let s = tripCircuit(closedCircuit(), consecutiveOnly, 100);
    expect(circuitPhase(s, 1099)).toBe('open');
    expect(circuitPhase(s, 1100)).toBe('half-open');
    s = recordSuccess(s, consecutiveOnly, 1200);
    expect(circuitPhase(s, 1200)).toBe('closed');
  });

  it('a success while open and in grace (a late answer) does not close it', () => {
    let s = closedCircuit();
    for (let t = 0; t < 3; t++) s = recordFailure(s, consecutiveOnly, t);
    expect(circuitPhase(s, 2)).toBe('open');
    s = recordSuccess(s, consecutiveOnly, 100);
    expect(circuitPhase(s, 100)).toBe('open');
    expect(s.graceUntil).toBe(1002);
    expect(circuitPhase(s, 1002)).toBe('half-open');
    s = recordSuccess(s, consecutiveOnly, 1002);
    expect(circuitPhase(s, 1002)).toBe('closed');
  });

  it('a failure while half-open reopens with a new grace period', () => {
    let s = tripCircuit(closedCircuit(), consecutiveOnly, 0);
    s = recordFailure(s, consecutiveOnly, 1500);
    expect(circuitPhase(s, 1500)).toBe('open');
    expect(s.graceUntil).toBe(2500);
  });

  it('failures while open and in grace do not extend the grace period', () => {
    let s = tripCircuit(closedCircuit(), consecutiveOnly, 0);
    s = recordFailure(s, consecutiveOnly, 500);
    expect(s.graceUntil).toBe(1000);
  });

  it('trips on the failure rate with a minimum number of failures', () => {
    let s = closedCircuit();
    // 2 failures out of 3: rate is high but below the minimum count
    s = recordFailure(s, rateOnly, 0);
    s = recordSuccess(s, rateOnly, 10);
    s = recordFailure(s, rateOnly, 20);
    expect(s.open).toBe(false);
    s = recordFailure(s, rateOnly, 30);
    expect(s.open).toBe(true);
  });

  it('does not trip on a low failure rate', () => {
    let s = closedCircuit();
    for (let i = 0; i < 30; i++) {
      s = i % 4 === 0 ? recordFailure(s, rateOnly, i * 10) : recordSuccess(s, rateOnly, i * 10);
    }
    expect(s.open).toBe(false);
  });

  it('forgets failures that slid out of the window', () => {
    let s = closedCircuit();
    s = recordFailure(s, rateOnly, 0);
    s = recordFailure(s, rateOnly, 1000);
    s = recordFailure(s, rateOnly, 20_000);
    expect(s.open).toBe(false);
    expect(s.buckets.length).toBeLessThanOrEqual(10);
  });

  it('a circuit that closes starts a new window: failures from before need company to re-open it', () => {
    let s = closedCircuit();
    for (const t of [0, 1, 2]) s = recordFailure(s, rateOnly, t);
    expect(s.open).toBe(true);
    // Stray failures while it is open (last-resort traffic) change nothing...
    const open = s;
    for (const t of [500, 600, 700]) s = recordFailure(s, rateOnly, t);
    expect(s).toBe(open);
    // ...and once half-open, one success closes it with a clean window.
    s = recordSuccess(s, rateOnly, 1500);
    expect(circuitPhase(s, 1500)).toBe('closed');
    s = recordFailure(s, rateOnly, 1600);
    expect(circuitPhase(s, 1600)).toBe('closed');
    s = recordFailure(s, rateOnly, 1700);
    expect(circuitPhase(s, 1700)).toBe('closed');
    s = recordFailure(s, rateOnly, 1800);
    expect(circuitPhase(s, 1800)).toBe('open');
  });

  it('state is plain JSON and survives a round trip', () => {
    let s = closedCircuit();
    s = recordFailure(s, rateOnly, 0);
    s = tripCircuit(s, rateOnly, 5);
    const copy = JSON.parse(JSON.stringify(s));
    expect(copy).toEqual(s);
    expect(circuitPhase(copy, 1005)).toBe('half-open');
  });
});
