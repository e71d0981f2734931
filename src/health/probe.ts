/**
 * The REST `PING` probe: the cheapest proof that a member's data path answers. Used for the
 * half-open trial and failback checks; it goes through the member's own transport, so its
 * token and sync token stay with its URL.
 */
import type { MemberTransport } from '../transport/types.js';

export interface ProbeResult {
  healthy: boolean;
  /** Short reason for the health record: `ping`, or the failure class and message. */
  reason: string;
}

export async function pingProbe(
  transport: MemberTransport,
  timeoutMs: number,
): Promise<ProbeResult> {
  const outcome = await transport.send({ kind: 'command', command: ['ping'] }, { timeoutMs });
  if (outcome.kind === 'ok') {
    const reply = Array.isArray(outcome.reply) ? outcome.reply[0] : outcome.reply;
    if (reply && reply.error === undefined) return { healthy: true, reason: 'ping' };
    return { healthy: false, reason: `ping: ${reply?.error ?? 'no reply'}` };
  }
  return { healthy: false, reason: `ping ${outcome.kind}: ${outcome.error.message}` };
}
