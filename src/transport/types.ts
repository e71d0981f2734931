/**
 * The contract between the failover requester and one member's HTTP transport.
 *
 * A transport never throws for member-level problems: every attempt ends in exactly one
 * outcome, so the requester can decide about retry safety in one place (design 4.4).
 */

/** What the requester asks a member to run: one command, or a batch sent as a unit. */
export type MemberRequest =
  | { kind: 'command'; command: unknown[] }
  | { kind: 'pipeline' | 'multi-exec'; commands: unknown[][] };

/** One `{result}` / `{error}` element as the Upstash REST protocol returns it (decoded). */
export interface RestReply {
  result?: unknown;
  error?: string;
}

export type AttemptOutcome =
  /**
   * The member answered with a REST reply. A command error (HTTP 400 or `{error}`) is also
   * `ok`: it is the caller's answer and says nothing bad about the member's health.
   * For batches `reply` is the array of per-command replies, or one `{error}` when a
   * transaction was discarded.
   */
  | { kind: 'ok'; reply: RestReply | RestReply[]; status: number; latencyMs: number }
  /** The member never saw the request (connection refused, DNS, gateway "not sent" marker). */
  | { kind: 'not-sent'; error: Error; status?: number; latencyMs: number }
  /** The member may or may not have executed it (timeout after sending, reset, other 5xx). */
  | { kind: 'unknown-outcome'; error: Error; status?: number; latencyMs: number }
  /** 401/403 or a malformed reply from a misconfigured URL: surface, do not fail over silently. */
  | { kind: 'config'; error: Error; status?: number; latencyMs: number };

export type AttemptOutcomeKind = AttemptOutcome['kind'];

export interface SendOptions {
  /** Per-attempt timeout in ms; the attempt ends as `unknown-outcome` when it fires. */
  timeoutMs: number;
  /** Caller's abort (deadline, hedge loser). Aborting ends the attempt as `unknown-outcome`. */
  signal?: AbortSignal;
}

export interface MemberTransport {
  readonly name: string;
  send(request: MemberRequest, options: SendOptions): Promise<AttemptOutcome>;
  /** The read-your-writes token this member last returned; never sent to another member. */
  readonly syncToken: string;
  /** Takes a token this member returned elsewhere (another invocation) as its own. */
  adoptSyncToken?(token: string): void;
  /** When the client cache last handed it out (a counter), to evict the least recently used. */
  lastUsed?: number;
}

/**
 * Response header our gateway sets (value `0`) on a 503 when the command provably never
 * reached Redis; the transport treats such a reply as `not-sent`.
 */
export const NOT_SENT_HEADER = 'x-redis-edge-sent';
/**
 * Beside the not-sent marker when Redis itself refused the command before running it: its error
 * code (`OOM`, `LOADING`, ...). A full member and an unreachable one call for different fixes.
 */
export const REFUSED_HEADER = 'x-redis-edge-refused';
/**
 * The refusals Redis gives only writes (reads keep running on that member): the gateway's rule
 * for scripts and the client's reason to leave such a member at once both read this one list.
 */
export const WRITE_REFUSAL_CODES: readonly string[] = ['OOM', 'READONLY', 'NOREPLICAS', 'MISCONF'];
