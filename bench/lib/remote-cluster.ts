import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LocalClusterOptions, LocalMember } from '../../src/testing/index.js';

const HOST = fileURLToPath(new URL('./cluster-host.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const OP_TIMEOUT_MS = 30_000;

/** A local cluster running in a child process (see cluster-host.ts). */
export class RemoteCluster {
  #nextId = 1;
  readonly #pending = new Map<number, (reply: { ok: boolean; error?: string }) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly members: LocalMember[],
    readonly adminToken: string,
    readonly redisUrls: Record<string, string>,
  ) {
    child.on('message', (message: { id?: number; ok: boolean; error?: string }) => {
      if (message.id === undefined) return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
  }

  static async start(options: LocalClusterOptions = {}): Promise<RemoteCluster> {
    const child = fork(HOST, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_CLUSTER_OPTIONS: JSON.stringify(options) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<{
      ready: boolean;
      error?: string;
      members: LocalMember[];
      adminToken: string;
      redisUrls: Record<string, string>;
    }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('cluster host did not start in time'));
      }, START_TIMEOUT_MS);
      child.once('message', (message) => {
        clearTimeout(timer);
        resolve(message as never);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`cluster host exited early (${code})`));
      });
    });
    if (!ready.ready) throw new Error(`cluster host failed: ${ready.error}`);
    return new RemoteCluster(child, ready.members, ready.adminToken, ready.redisUrls);
  }

  member(name: string): LocalMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  #op(op: string, name?: string): Promise<void> {
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`cluster ${op}(${name ?? ''}) timed out`));
      }, OP_TIMEOUT_MS);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.ok) resolve();
        else reject(new Error(`cluster ${op}(${name ?? ''}): ${reply.error}`));
      });
      this.child.send({ id, op, name });
    });
  }

  kill(name: string) {
    return this.#op('kill', name);
  }
  pause(name: string) {
    return this.#op('pause', name);
  }
  resume(name: string) {
    return this.#op('resume', name);
  }
  restart(name: string) {
    return this.#op('restart', name);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.#op('stop').catch(() => this.child.kill('SIGKILL'));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
}

/**
 * One cluster host (child process) per member, so each member's gateway has its own event
 * loop, as separate machines would: a hung or overloaded member cannot slow the others down.
 */
export class MemberGroup {
  private constructor(private readonly hosts: Map<string, RemoteCluster>) {}

  static async start(count: number): Promise<MemberGroup> {
    const names = Array.from({ length: count }, (_, i) => String.fromCharCode(97 + i));
    const started = await Promise.allSettled(
      names.map((name, i) =>
        RemoteCluster.start({ members: 1, names: [name], weights: [count - i] }),
      ),
    );
    const hosts = new Map<string, RemoteCluster>();
    started.forEach((s, i) => {
      if (s.status === 'fulfilled') hosts.set(names[i]!, s.value);
    });
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all([...hosts.values()].map((h) => h.stop()));
      throw (failed as PromiseRejectedResult).reason;
    }
    return new MemberGroup(hosts);
  }

  get members(): LocalMember[] {
    return [...this.hosts.values()].map((h) => h.members[0]!);
  }

  member(name: string): LocalMember {
    return this.#host(name).member(name);
  }

  #host(name: string): RemoteCluster {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no member ${name}`);
    return host;
  }

  kill(name: string) {
    return this.#host(name).kill(name);
  }
  pause(name: string) {
    return this.#host(name).pause(name);
  }
  resume(name: string) {
    return this.#host(name).resume(name);
  }
  restart(name: string) {
    return this.#host(name).restart(name);
  }
  stop(): Promise<void> {
    return Promise.all([...this.hosts.values()].map((h) => h.stop())).then(() => {});
  }
}
