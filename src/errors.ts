/**
 * Error classes of the public API. Each carries the fields a caller needs to act on it;
 * none carries a token, a sync token, a password or command arguments.
 */

/** Base class, so `catch (e) { if (e instanceof FailoverError) ... }` catches all of ours. */
export class FailoverError extends Error {
  override name = 'FailoverError';
}

/** Invalid options. `field` is the path of the offending option, e.g. `members[1].weight`. */
export class ConfigError extends FailoverError {
  override name = 'ConfigError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`Invalid option ${field}: ${problem}`);
  }
}

/**
 * A member refused our credentials or is not a REST endpoint (401/403/404/405). Failing over
 * would hide a misconfiguration, so the caller gets it at once.
 */
export class MemberConfigError extends FailoverError {
  override name = 'MemberConfigError';
  constructor(
    readonly member: string,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `setActiveMember` / `forceActiveMember` to a member known to be out: its circuit is open or a
 * health check reported it down (Jedis: `JedisValidationException`; redis-py:
 * `NoValidDatabaseException`). A member not checked yet is not refused.
 */
export class MemberUnavailableError extends FailoverError {
  override name = 'MemberUnavailableError';
  constructor(
    readonly member: string,
    why: string,
  ) {
    super(`Member "${member}" is out: ${why}`);
  }
}

/**
 * A non-idempotent write may or may not have run on `member` (it timed out or the connection
 * broke after sending). Retrying elsewhere could run it twice, so we stop and say so.
 */
export class AmbiguousWriteError extends FailoverError {
  override name = 'AmbiguousWriteError';
  constructor(
    readonly member: string,
    /** Command name (`incr`), or `pipeline` / `multi-exec`; never the arguments. */
    readonly command: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The outcome of ${command} on member "${member}" is unknown and it is not safe to retry ` +
        'it on another member (set retryAmbiguousWrites to opt in)',
      options,
    );
  }
}

export interface MemberAttemptFailure {
  member: string;
  /**
   * `not-sent`, `unknown-outcome`, `config` (a hedged read it refused while another attempt
   * was still running), or `skipped`: the deadline left no time for it, or this client holds
   * no token for it (a member another client added or moved).
   */
  kind: 'not-sent' | 'unknown-outcome' | 'config' | 'skipped';
  message: string;
}

/** Every member was tried (or the deadline ran out) and none answered. */
export class AllMembersFailedError extends FailoverError {
  override name = 'AllMembersFailedError';
  constructor(
    readonly command: string,
    readonly failures: MemberAttemptFailure[],
  ) {
    super(
      `${command} failed on every member: ${failures
        .map((f) => `${f.member} (${f.kind}: ${f.message})`)
        .join('; ')}`,
    );
  }
}
