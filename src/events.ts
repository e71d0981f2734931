/** Events a client emits. Payloads are plain data and never hold secrets. */

export type SwitchReason = 'health-check' | 'circuit' | 'failback' | 'forced' | 'proximity';

export interface SwitchEvent {
  from: string | undefined;
  to: string;
  reason: SwitchReason;
  at: number;
}

export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

export interface HealthEvent {
  member: string;
  status: HealthStatus;
  previous: HealthStatus;
  /** What was observed: `request`, `circuit`, `probe`, or a probe's error code. */
  reason: string;
  /**
   * Behind its replication-lag tolerance (availability API): `true` while it lags, `false` in
   * the event that it caught up; absent otherwise. A change of lag alone is an event too
   * (`status` equal to `previous`).
   */
  lagging?: boolean;
  at: number;
}

export interface FailureEvent {
  member: string;
  kind: 'not-sent' | 'unknown-outcome' | 'config';
  /** Command name or `pipeline` / `multi-exec`. */
  command: string;
  message: string;
  /** Whether the call went on to another member after this failure. */
  failedOver: boolean;
  at: number;
}

export interface FailoverEvents {
  switch: SwitchEvent;
  health: HealthEvent;
  failure: FailureEvent;
}

/** A listener's result is ignored; a promise it returns has its rejection reported, not thrown. */
export type FailoverListener<K extends keyof FailoverEvents> = (
  event: FailoverEvents[K],
) => unknown;

/**
 * A minimal typed emitter. A listener that throws must not break the request that happened
 * to trigger the event, so errors are swallowed (and reported to `onListenerError`).
 */
export class Emitter {
  private readonly listeners: { [K in keyof FailoverEvents]: Set<FailoverListener<K>> } = {
    switch: new Set(),
    health: new Set(),
    failure: new Set(),
  };

  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  on<K extends keyof FailoverEvents>(event: K, listener: FailoverListener<K>): void {
    this.listeners[event].add(listener);
  }

  off<K extends keyof FailoverEvents>(event: K, listener: FailoverListener<K>): void {
    this.listeners[event].delete(listener);
  }

  emit<K extends keyof FailoverEvents>(event: K, payload: FailoverEvents[K]): void {
    for (const listener of this.listeners[event]) {
      try {
        // An async listener's rejection must not become an unhandled one (Node exits on those).
        const result: unknown = listener(payload);
        if (result instanceof Promise) result.catch(this.onListenerError);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
