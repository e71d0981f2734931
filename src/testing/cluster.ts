import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../gateway/index.js';
import type { AvailabilityOverride, GatewayHandle, GatewayOptions } from '../gateway/types.js';
import { registerCleanup } from './cleanup.js';
import { freePort } from './ports.js';
import { RedisProcess, RedisStartError } from './redis-process.js';
import type { LocalCluster, LocalClusterOptions, LocalMember } from './types.js';

const BDB_UID = 1;
const AVAILABILITY_USER = 'admin@local';
/** Tests wipe members between cases; the gateway denies these by default. */
const ALWAYS_ALLOWED = ['FLUSHALL', 'FLUSHDB'];
/** A gateway that cannot finish closing must not hang `kill`/`stop` (and a test run) forever. */
const GATEWAY_CLOSE_TIMEOUT_MS = 5000;
const ADMIN_TIMEOUT_MS = 5000;

interface Member {
  readonly info: LocalMember;
  readonly dir: string;
  redisPort: number;
  /** Fixed after the first start, so `restart` brings the member back on the same URL. */
  gatewayPort: number;
  redis: RedisProcess | null;
  gateway: GatewayHandle | null;
  /** Operations on one member run one after another (e.g. a restart racing a stop). */
  queue: Promise<unknown>;
  unregisterDir: () => void;
}

/** Starts N redis-servers, each behind an in-process gateway; see `LocalCluster`. */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const names = memberNames(options);
  const weights = memberWeights(options, names.length);
  const adminToken = secret();
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const members = new Map<string, Member>();
  let stopping: Promise<void> | null = null;

  const gatewayOptions = (member: Member, token: string): GatewayOptions => {
    const extra = options.gateway ?? {};
    const log = extra.log;
    return {
      redisUrl: `redis://127.0.0.1:${member.redisPort}`,
      token,
      host: '127.0.0.1',
      port: member.gatewayPort,
      adminToken,
      availability: {
        username: member.info.availability.username,
        password: member.info.availability.password,
        bdbUid: BDB_UID,
      },
      allow: [...new Set([...ALWAYS_ALLOWED, ...(extra.allow ?? [])])],
      ...(extra.corsOrigins ? { corsOrigins: extra.corsOrigins } : {}),
      ...(extra.backendTimeoutMs !== undefined ? { backendTimeoutMs: extra.backendTimeoutMs } : {}),
      log: log ? (line) => log(line, member.info.name) : () => {},
    };
  };

  const startRedis = async (member: Member, firstStart: boolean): Promise<void> => {
    // The watchdog removes the dir if we die; recreate it rather than assume it survived.
    mkdirSync(member.dir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      if (firstStart) member.redisPort = await freePort();
      try {
        member.redis = await RedisProcess.start({
          port: member.redisPort,
          dir: member.dir,
          bin: options.redisServer,
          readyTimeoutMs,
        });
        return;
      } catch (error) {
        // Another process can take a probed port before redis binds it; on the first start
        // we are free to pick another. A restart must keep its port, so it reports instead.
        const retry = firstStart && error instanceof RedisStartError && error.addressInUse;
        if (!retry || attempt >= 5) throw prefixed(member, 'redis-server did not start', error);
      }
    }
  };

  const startMemberGateway = async (member: Member): Promise<void> => {
    let handle: GatewayHandle;
    try {
      handle = await startGateway(gatewayOptions(member, member.info.token));
    } catch (error) {
      throw prefixed(member, `gateway did not start on port ${member.gatewayPort}`, error);
    }
    member.gateway = handle;
    if (member.gatewayPort === 0) {
      member.gatewayPort = Number(new URL(handle.url).port);
      member.info.url = handle.url.replace(/\/+$/, '');
      member.info.availability.url = (handle.availabilityUrl ?? handle.url).replace(/\/+$/, '');
    }
  };

  /** Ready means a PING makes the whole trip: HTTP, gateway, backend connection, redis. */
  const waitUntilServing = async (member: Member): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const response = await fetch(member.info.url, {
          method: 'POST',
          headers: { authorization: `Bearer ${member.info.token}` },
          body: '["PING"]',
          signal: AbortSignal.timeout(1000),
        });
        const text = await response.text();
        if (response.status === 200 && text.includes('PONG')) return;
        last = `HTTP ${response.status} ${text.slice(0, 200)}`;
      } catch (error) {
        last = String(error);
      }
      await sleep(50);
    }
    throw new Error(
      `member "${member.info.name}": gateway ${member.info.url} did not answer PING within ${readyTimeoutMs} ms (last: ${last})`,
    );
  };

  const closeGateway = async (member: Member): Promise<void> => {
    const gateway = member.gateway;
    member.gateway = null;
    if (!gateway) return;
    await Promise.race([gateway.close(), sleep(GATEWAY_CLOSE_TIMEOUT_MS)]);
  };

  const killRedis = async (member: Member): Promise<void> => {
    const redis = member.redis;
    member.redis = null;
    await redis?.kill();
  };

  const startMember = async (name: string, weight: number): Promise<void> => {
    const dir = mkdtempSync(join(tmpdir(), `redis-edge-${name}-`));
    const member: Member = {
      info: {
        name,
        url: '',
        token: secret(),
        weight,
        availability: { url: '', bdbUid: BDB_UID, username: AVAILABILITY_USER, password: secret() },
      },
      dir,
      redisPort: 0,
      gatewayPort: 0,
      redis: null,
      gateway: null,
      queue: Promise.resolve(),
      unregisterDir: registerCleanup(() => rmSync(dir, { recursive: true, force: true })),
    };
    members.set(name, member);
    await startRedis(member, true);
    await startMemberGateway(member);
    await waitUntilServing(member);
  };

  /** Runs `op` after the member's earlier operations; rejects once the cluster is stopping. */
  const withMember = <T>(name: string, action: string, op: (m: Member) => Promise<T>) => {
    const member = members.get(name);
    if (!member) {
      return Promise.reject(
        new Error(
          `${action}: unknown member "${name}" (members: ${[...members.keys()].join(', ')})`,
        ),
      );
    }
    if (stopping) return Promise.reject(new Error(`${action}("${name}"): the cluster was stopped`));
    const run = member.queue.then(() => op(member));
    member.queue = run.catch(() => {});
    return run;
  };

  const requireRedis = (member: Member, action: string): RedisProcess => {
    if (member.redis?.running) return member.redis;
    throw new Error(
      `${action}("${member.info.name}"): its redis-server is not running (killed); restart it first`,
    );
  };

  const admin = (name: string, action: string, path: string, body: unknown) =>
    withMember(name, action, async (member) => {
      if (!member.gateway) {
        throw new Error(
          `${action}("${name}"): its gateway is not running (killed); restart it first`,
        );
      }
      const url = `${member.info.availability.url}/admin/${path}`;
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
        });
      } catch (error) {
        throw new Error(`${action}("${name}"): POST ${url} failed: ${String(error)}`, {
          cause: error,
        });
      }
      if (!response.ok) {
        const text = (await response.text().catch(() => '')).slice(0, 300);
        throw new Error(`${action}("${name}"): POST ${url} answered ${response.status} ${text}`);
      }
      await response.body?.cancel();
    });

  const stopMember = async (member: Member): Promise<void> => {
    // SIGKILL also ends a SIGSTOPped process; the explicit SIGCONT just keeps a stopped
    // process from lingering should the kill be refused for any reason.
    if (member.redis?.paused) await member.redis.resume().catch(() => {});
    await killRedis(member).catch(() => {});
    await closeGateway(member).catch(() => {});
    rmSync(member.dir, { recursive: true, force: true });
    member.unregisterDir();
  };

  const stop = (): Promise<void> => {
    stopping ??= Promise.all(
      [...members.values()].map((member) => {
        const run = member.queue.then(() => stopMember(member));
        member.queue = run;
        return run;
      }),
    ).then(() => {});
    return stopping;
  };

  // allSettled, not all: stopping while a sibling is still starting would miss what it starts.
  const started = await Promise.allSettled(names.map((name, i) => startMember(name, weights[i]!)));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }

  const redisUrls: Record<string, string> = {};
  for (const member of members.values()) {
    redisUrls[member.info.name] = `redis://127.0.0.1:${member.redisPort}`;
  }

  return {
    members: [...members.values()].map((m) => m.info),
    adminToken,
    redisUrls,

    kill: (name) =>
      withMember(name, 'kill', async (member) => {
        await killRedis(member);
        await closeGateway(member);
      }),

    killBackend: (name) => withMember(name, 'killBackend', killRedis),

    pause: (name) => withMember(name, 'pause', (member) => requireRedis(member, 'pause').pause()),

    resume: (name) =>
      withMember(name, 'resume', async (member) => {
        const redis = requireRedis(member, 'resume');
        if (redis.paused) await redis.resume();
      }),

    restart: (name) =>
      withMember(name, 'restart', async (member) => {
        // A paused member is not stopped, but "bring it back" is the obvious intent.
        if (member.redis?.paused) await member.redis.resume();
        if (!member.redis?.running) await startRedis(member, false);
        if (!member.gateway) await startMemberGateway(member);
        await waitUntilServing(member);
      }),

    setAvailability: (name, override: AvailabilityOverride | null) =>
      admin(name, 'setAvailability', 'availability', override),

    setLag: (name, ms) => {
      if (!Number.isFinite(ms) || ms < 0) {
        return Promise.reject(new Error(`setLag("${name}"): ms must be a number >= 0, got ${ms}`));
      }
      return admin(name, 'setLag', 'lag', { ms });
    },

    stop,
  };
}

function memberNames(options: LocalClusterOptions): string[] {
  const count = options.members ?? options.names?.length ?? 3;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`startLocalCluster: members must be an integer >= 1, got ${count}`);
  }
  if (options.names && options.names.length !== count) {
    throw new Error(
      `startLocalCluster: names has ${options.names.length} entries but members is ${count}`,
    );
  }
  const names =
    options.names ??
    Array.from({ length: count }, (_, i) => (i < 26 ? String.fromCharCode(97 + i) : `m${i}`));
  if (new Set(names).size !== names.length || names.some((n) => !n)) {
    throw new Error(
      `startLocalCluster: names must be unique and non-empty, got ${names.join(',')}`,
    );
  }
  return names;
}

function memberWeights(options: LocalClusterOptions, count: number): number[] {
  const weights = options.weights ?? Array.from({ length: count }, (_, i) => count - i);
  if (weights.length !== count || weights.some((w) => !Number.isFinite(w) || w < 0)) {
    throw new Error(
      `startLocalCluster: weights must be ${count} numbers >= 0, got [${weights.join(', ')}]`,
    );
  }
  return weights;
}

function secret(): string {
  return randomBytes(24).toString('base64url');
}

function prefixed(member: Member, what: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`member "${member.info.name}": ${what}: ${message}`, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
