/**
 * The parts of the Workers runtime types this entry uses, structurally, so the library does
 * not depend on `@cloudflare/workers-types` (and its global declarations) to type-check.
 * Cloudflare's `ExecutionContext`, `ScheduledController` and `KVNamespace` fit these.
 */

/** `ExecutionContext`: `waitUntil` must be called as a method (`ctx.waitUntil(p)`). */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException?(): void;
}

/** `ScheduledController` (Cron Triggers). */
export interface ScheduledControllerLike {
  /** The cron expression that fired, exactly as written in the config. */
  cron: string;
  scheduledTime: number;
  type?: string;
  noRetry?(): void;
}

/** A module worker's `fetch`. */
export type WorkerFetch<Env> = (
  request: Request,
  env: Env,
  ctx: ExecutionContextLike,
) => Promise<Response>;

/** A module worker's `scheduled`. */
export type WorkerScheduled<Env> = (
  controller: ScheduledControllerLike,
  env: Env,
  ctx: ExecutionContextLike,
) => Promise<void>;
