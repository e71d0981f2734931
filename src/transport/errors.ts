import type { AttemptOutcomeKind } from './types.js';

/**
 * Why an attempt did not produce a REST reply. Lets the requester tell a caller's own abort
 * (a hedge loser, a spent deadline: not the member's fault) from a member that failed.
 */
export type MemberFailureReason =
  | 'timeout'
  | 'aborted'
  | 'network'
  | 'http-status'
  /** Redis refused a write before running it (OOM, READONLY, NOREPLICAS, MISCONF): reads still work there. */
  | 'writes-refused'
  | 'malformed-reply'
  | 'auth'
  | 'wrong-url'
  | 'redirect';

/**
 * The error carried by every non-`ok` attempt outcome. Its message names the member and never
 * contains the token, the sync token or command arguments (design 4.8).
 */
export class MemberRequestError extends Error {
  override readonly name = 'MemberRequestError';

  constructor(
    message: string,
    readonly member: string,
    readonly kind: Exclude<AttemptOutcomeKind, 'ok'>,
    readonly reason: MemberFailureReason,
    readonly status?: number,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
