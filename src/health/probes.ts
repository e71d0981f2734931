/**
 * Probes: one question to one member, one verdict. Three kinds (design 4.5): the Redis
 * Software database availability API, a REST `PING` through the member's own transport, and a
 * user function. A probe never throws; what went wrong is in the verdict.
 *
 * The availability API is called with plain `fetch`, not ky: all it needs is a GET with a
 * timeout and one retry on 503/500, and ky cost a quarter of the client bundle (5 KB gzip)
 * for that, in every edge script that imports the client.
 */
import type { ResolvedMember } from '../config.js';
import type { MemberTransport } from '../transport/types.js';
import { sleep } from './policy.js';

export interface ProbeVerdict {
  healthy: boolean;
  /**
   * Behind its lag tolerance (fine to fail over to, not to fail back to), or `false`: in sync.
   * Absent when the probe cannot see lag (PING, a member down): the last known value stands.
   */
  lagging?: boolean;
  /** Short reason kept in the health record: `ping`, `available`, an `error_code`, ... */
  reason: string;
  /**
   * The probe could not give a verdict because it is misconfigured (401/403/404/400 from the
   * availability API). A config problem is reported, never read as "member down".
   */
  configProblem?: string;
  /** The health source itself could not be reached (network error, timeout). */
  unreachable?: boolean;
}

export interface ProbeContext {
  member: ResolvedMember;
  transport: MemberTransport;
  timeoutMs: number;
  fetch?: typeof fetch | undefined;
  /** Remembers discovered database uids between checks (per store). */
  uidCache: Map<string, number>;
}

export type Probe = (ctx: ProbeContext) => Promise<ProbeVerdict>;

/** A user-supplied check: return true/false or a verdict; throwing counts as unhealthy. */
export type CustomProbe = (
  member: { name: string; url: string },
  options: { signal: AbortSignal },
) => Promise<boolean | ProbeVerdict>;

export const pingProbe: Probe = async ({ transport, timeoutMs }) => {
  const outcome = await transport.send({ kind: 'command', command: ['ping'] }, { timeoutMs });
  if (outcome.kind === 'ok') {
    const reply = Array.isArray(outcome.reply) ? outcome.reply[0] : outcome.reply;
    if (reply && reply.error === undefined) return { healthy: true, reason: 'ping' };
    return { healthy: false, reason: `ping error: ${reply?.error ?? 'no reply'}` };
  }
  if (outcome.kind === 'config') {
    return { healthy: false, reason: 'ping refused', configProblem: outcome.error.message };
  }
  return { healthy: false, reason: `ping ${outcome.kind}: ${outcome.error.message}` };
};

/** What `abortAfter` rejects with when its time is up. */
const TIMED_OUT = new Error('timed out');

/**
 * Runs `task` with a signal that aborts after `ms`, and rejects then whatever the task does:
 * a user function that ignores the signal, or a body that stalls after the headers, still ends
 * on time. The timer goes when the task settles.
 */
async function abortAfter<T>(ms: number, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(TIMED_OUT);
    }, ms);
  });
  try {
    return await Promise.race([task(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `user:password` as Basic auth sends it: base64 of UTF-8 bytes (btoa alone takes Latin-1). */
function basicCredentials(a: { username: string; password: string }): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(`${a.username}:${a.password}`)));
}

/**
 * `text` without the member's secrets: its token, its availability password, and the Basic
 * credentials that carry it. A probe's words go into snapshots, events, the shared record and
 * status pages, and a server (or a custom probe rethrowing a fetch error) may quote a request's
 * Authorization back.
 */
export function scrubSecrets(member: ResolvedMember, text: string): string {
  const a = member.availability;
  for (const secret of [member.token, a?.password, a && basicCredentials(a)]) {
    if (secret) text = text.replaceAll(secret, '***');
  }
  return text;
}

export function customProbe(fn: CustomProbe): Probe {
  return async ({ member, timeoutMs }) => {
    const scrub = (text: string) => scrubSecrets(member, text);
    try {
      const result = await abortAfter(timeoutMs, (signal) =>
        fn({ name: member.name, url: member.url }, { signal }),
      );
      if (typeof result === 'boolean') return { healthy: result, reason: 'custom' };
      const verdict = { ...result, reason: scrub(String(result.reason)) };
      if (result.configProblem) verdict.configProblem = scrub(String(result.configProblem));
      return verdict;
    } catch (error) {
      return { healthy: false, reason: scrub(`custom: ${(error as Error)?.message ?? 'failed'}`) };
    }
  };
}

/** The anchors' "unavailable" answers: asked again once, and told apart from config problems. */
const unavailable = (status: number) => status === 500 || status === 503;

interface BdbEndpoint {
  dns_name?: string;
  addr?: string[];
}

/**
 * The Redis Software availability API, lag-aware: `extend_check=lag` with the member's
 * tolerance. A lag failure is told apart from an outage with a second, plain check, so a
 * lagging member stays a failover target while failback to it waits.
 */
export const availabilityProbe: Probe = async ({
  member,
  timeoutMs,
  fetch: fetchImpl,
  uidCache,
}) => {
  // The checker picks this probe only for members with an availability API.
  const a = member.availability!;
  const headers = {
    authorization: `Basic ${basicCredentials(a)}`,
    accept: 'application/json',
  };
  let timedOut = false;
  /**
   * A GET: its status and JSON body, with the body's `error_code` (or the status) as `code`.
   * The timeout covers the body too: a server that sends headers and stalls is unreachable.
   */
  const get = async (path: string, retry = true) => {
    const once = () =>
      abortAfter(timeoutMs, async (signal) => {
        // Redirects are followed (older servers answered 307 from secondary nodes); fetch keeps
        // the credentials only for the same origin, which is what design 4.8 asks.
        const response = await (fetchImpl ?? fetch)(`${a.url}/${path}`, { headers, signal });
        const { ok, status, redirected } = response;
        const body = await response.json().catch(() => undefined);
        const code: string =
          typeof body?.error_code === 'string' ? body.error_code : `http ${status}`;
        return { ok, status, body, code, redirected };
      }).catch((error) => {
        timedOut ||= error === TIMED_OUT;
        throw error;
      });
    const first = await once();
    if (!retry || !unavailable(first.status)) return first;
    await sleep(50);
    return once();
  };
  /** 401/403/404/...: the probe is misconfigured; that says nothing about the member. */
  const problem = (answer: { status: number; code: string; redirected: boolean }): ProbeVerdict => {
    const { status } = answer;
    if (status === 404) uidCache.delete(member.name);
    // fetch drops the credentials on a redirect to another host (another node), by design.
    const via = answer.redirected
      ? ' after a redirect to another node; use its URL or local: true'
      : '';
    return {
      healthy: false,
      reason: `availability API ${status}`,
      configProblem: `availability API of "${member.name}" answered ${status} (${answer.code})${via}`,
    };
  };
  const host = new URL(member.url).hostname;
  try {
    let uid = a.bdbUid ?? uidCache.get(member.name);
    if (uid === undefined) {
      const found = await get('v1/bdbs?fields=uid,endpoints');
      // 503/500: the cluster cannot answer now (no quorum...), which is no config problem.
      if (!found.ok) {
        return unavailable(found.status) ? { healthy: false, reason: found.code } : problem(found);
      }
      // The database whose endpoint matches the member's host: dns_name first, then addr.
      const bdbs: Array<{ uid: number; endpoints?: BdbEndpoint[] }> = Array.isArray(found.body)
        ? found.body
        : [];
      const match = (test: (e: BdbEndpoint) => boolean | undefined) =>
        bdbs.find((b) => b.endpoints?.some(test));
      uid = (match((e) => e.dns_name === host) ?? match((e) => e.addr?.includes(host)))?.uid;
      if (uid === undefined) {
        return {
          healthy: false,
          reason: 'database not found',
          configProblem: `no database endpoint matches host ${host}`,
        };
      }
      uidCache.set(member.name, uid);
    }
    const path = a.local
      ? `v1/local/bdbs/${uid}/endpoint/availability`
      : `v1/bdbs/${uid}/availability`;
    const lag = await get(
      `${path}?extend_check=lag&availability_lag_tolerance_ms=${a.lagToleranceMs ?? 5000}`,
    );
    if (lag.ok) return { healthy: true, lagging: false, reason: 'available' };
    if (!unavailable(lag.status)) return problem(lag);
    // Down, or only behind? Ask again without the lag condition. If that question is lost, take
    // the milder answer, lagging: still a failover target (a down member shows on the data path
    // at once), never a failback one. Unreachable would fall back to PING, which cannot see lag,
    // and down would move traffic off an active member for one lost request.
    const plain = await get(path, false).catch(() => undefined);
    if (!plain) return { healthy: true, lagging: true, reason: `${lag.code} (plain check lost)` };
    if (plain.ok) return { healthy: true, lagging: true, reason: `lagging (${lag.code})` };
    return unavailable(plain.status) ? { healthy: false, reason: plain.code } : problem(plain);
  } catch {
    uidCache.delete(member.name);
    const what = timedOut ? `timed out after ${timeoutMs} ms` : 'unreachable';
    return { healthy: false, reason: `availability API ${what}`, unreachable: true };
  }
};
