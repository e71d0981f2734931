/**
 * Probes: one question to one member, one verdict. Three kinds (design 4.5): the Redis
 * Software database availability API, a REST `PING` through the member's own transport, and a
 * user function. A probe never throws; what went wrong is in the verdict.
 *
 * The availability API is called with plain `fetch`, not ky: all it needs is a GET with a
 * timeout and one retry on 503/500, and ky cost a quarter of the client bundle (5 KB gzip)
 * for that, in every edge script that imports the client.
 */
import type { AvailabilityConfig, ResolvedMember } from '../config.js';
import type { MemberTransport } from '../transport/types.js';

export interface ProbeVerdict {
  healthy: boolean;
  /** Healthy but replicating behind its lag tolerance: fine to fail over to, not to fail back to. */
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
  fetch?: typeof fetch;
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

export function customProbe(fn: CustomProbe): Probe {
  return async ({ member, timeoutMs }) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const result = await Promise.race([
        fn({ name: member.name, url: member.url }, { signal: controller.signal }),
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener('abort', () => reject(new Error('timed out'))),
        ),
      ]);
      if (typeof result === 'boolean') return { healthy: result, reason: 'custom' };
      return result;
    } catch (error) {
      return { healthy: false, reason: `custom: ${(error as Error)?.message ?? 'failed'}` };
    } finally {
      clearTimeout(timer);
    }
  };
}

function basicAuth(a: AvailabilityConfig): string {
  const bytes = new TextEncoder().encode(`${a.username}:${a.password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** A non-2xx answer of the availability API, with its `error_code` when the body has one. */
class AvailabilityHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`HTTP ${status} (${code})`);
  }
}

class AvailabilityTimeout extends Error {}

const UNAVAILABLE = new Set([500, 503]);

async function errorCodeOf(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error_code?: unknown };
    if (typeof body?.error_code === 'string') return body.error_code;
  } catch {
    // a body that is not JSON: the status says enough
  }
  return `http ${response.status}`;
}

interface ApiClient {
  /** GET, resolving to the JSON body of a 2xx; throws AvailabilityHttpError otherwise. */
  get(path: string, options?: { retry?: boolean }): Promise<unknown>;
}

function apiClient(a: AvailabilityConfig, timeoutMs: number, fetchImpl: typeof fetch): ApiClient {
  const headers = { authorization: basicAuth(a), accept: 'application/json' };
  const once = async (path: string): Promise<Response> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AvailabilityTimeout()), timeoutMs);
    try {
      // Redirects are followed: older servers answered 307 from secondary nodes.
      return await fetchImpl(`${a.url}/${path}`, { headers, signal: controller.signal });
    } catch (error) {
      throw controller.signal.aborted ? new AvailabilityTimeout() : error;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async get(path, { retry = true } = {}) {
      let response = await once(path);
      // The anchors ask again once when the answer is "unavailable".
      if (retry && UNAVAILABLE.has(response.status)) {
        await response.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 50));
        response = await once(path);
      }
      if (!response.ok)
        throw new AvailabilityHttpError(response.status, await errorCodeOf(response));
      return response.json().catch(() => undefined);
    },
  };
}

interface BdbEndpoint {
  dns_name?: string;
  addr?: string[];
}

/** Finds the database whose endpoint matches the member's host (dns_name first, then addr). */
async function discoverUid(client: ApiClient, host: string): Promise<number | undefined> {
  const bdbs = (await client.get('v1/bdbs?fields=uid,endpoints')) as Array<{
    uid: number;
    endpoints?: BdbEndpoint[];
  }>;
  if (!Array.isArray(bdbs)) return undefined;
  const byDns = bdbs.find((b) => b.endpoints?.some((e) => e.dns_name === host));
  if (byDns) return byDns.uid;
  return bdbs.find((b) => b.endpoints?.some((e) => e.addr?.includes(host)))?.uid;
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
  const a = member.availability;
  if (!a)
    return { healthy: false, reason: 'no availability API configured', configProblem: 'none' };
  const client = apiClient(a, timeoutMs, fetchImpl ?? ((input, init) => fetch(input, init)));
  const host = new URL(member.url).hostname;
  try {
    let uid = a.bdbUid ?? uidCache.get(member.name);
    if (uid === undefined) {
      uid = await discoverUid(client, host);
      if (uid === undefined) {
        return {
          healthy: false,
          reason: 'database not found',
          configProblem: `no database endpoint of ${a.url} matches host ${host}`,
        };
      }
      uidCache.set(member.name, uid);
    }
    const path = a.local
      ? `v1/local/bdbs/${uid}/endpoint/availability`
      : `v1/bdbs/${uid}/availability`;
    const tolerance = a.lagToleranceMs ?? 5000;
    try {
      await client.get(`${path}?extend_check=lag&availability_lag_tolerance_ms=${tolerance}`);
      return { healthy: true, reason: 'available' };
    } catch (error) {
      if (!(error instanceof AvailabilityHttpError) || !UNAVAILABLE.has(error.status)) throw error;
      // Down, or only behind? Ask again without the lag condition.
      try {
        await client.get(path, { retry: false });
        return { healthy: true, lagging: true, reason: `lagging (${error.code})` };
      } catch (plain) {
        if (plain instanceof AvailabilityHttpError && UNAVAILABLE.has(plain.status)) {
          return { healthy: false, reason: plain.code };
        }
        throw plain;
      }
    }
  } catch (error) {
    if (error instanceof AvailabilityHttpError) {
      if (error.status === 404) uidCache.delete(member.name);
      return {
        healthy: false,
        reason: `availability API ${error.status}`,
        configProblem: `availability API of "${member.name}" answered ${error.status} (${error.code})`,
      };
    }
    const what =
      error instanceof AvailabilityTimeout ? `timed out after ${timeoutMs} ms` : 'unreachable';
    uidCache.delete(member.name);
    return { healthy: false, reason: `availability API ${what}`, unreachable: true };
  }
};
