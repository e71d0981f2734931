import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { registerCleanup } from './cleanup.js';

/**
 * redis-server is started through this /bin/sh watchdog so it cannot outlive us, not even when
 * this Node process is SIGKILLed (no exit handler runs then). The watchdog's stdin is a pipe
 * whose only write end lives in this process; the kernel closes it when we die, however we die.
 *
 * - `$@` is redis-server and its arguments. Its stdin is /dev/null and it does not inherit the
 *   pipe, so only the watchdog notices EOF. Its stdout/stderr go to the log file, so early
 *   startup errors (bad argument, port in use) end up in the log tail we report.
 * - First stdout line: redis' own pid, so kill/pause/resume signal redis itself.
 * - A background reader blocks on the pipe (kept as fd 3: asynchronous lists get /dev/null as
 *   stdin). A line means "we are done, leave"; EOF means our parent died: SIGKILL redis and
 *   remove its temp dir. It ignores TERM once triggered so the main shell cannot cut that short.
 * - The main shell waits for redis, reports `exit <status>`, then stops the reader (so it can
 *   never signal a pid the kernel has since reused) and exits. Our 'exit' event therefore
 *   means redis is gone and its port is free.
 */
const WATCHDOG = `
exec 3<&0
dir=$1; log=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 3<&- &
p=$!
echo "$p"
{ read _ <&3 && exit 0; trap '' TERM; kill -9 "$p" 2>/dev/null; rm -rf "$dir"; } </dev/null &
r=$!
exec 3<&-
wait "$p"
echo "exit $?"
kill "$r" 2>/dev/null
wait "$r" 2>/dev/null
`;

export interface RedisProcessOptions {
  port: number;
  /** Working directory (also holds `redis.log`); the watchdog deletes it if we die. */
  dir: string;
  /** redis-server executable; default `redis-server` from PATH. */
  bin?: string;
  /** How long to wait until it answers; default 10 s. */
  readyTimeoutMs?: number;
}

/** redis-server did not come up; `addressInUse` lets callers retry on another port. */
export class RedisStartError extends Error {
  override readonly name = 'RedisStartError';
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

/** One redis-server under its watchdog. */
export class RedisProcess {
  /** Resolves with redis-server's exit status (137 after SIGKILL) once it is gone. */
  readonly exited: Promise<number | null>;
  #paused = false;
  #gone = false;

  private constructor(
    readonly pid: number,
    readonly port: number,
    readonly logFile: string,
    private readonly child: ChildProcessWithoutNullStreams,
    exited: Promise<number | null>,
  ) {
    this.exited = exited;
    const unregister = registerCleanup(() => this.killSync());
    void exited.then(() => {
      this.#gone = true;
      unregister();
    });
  }

  static async start(options: RedisProcessOptions): Promise<RedisProcess> {
    const { port, dir } = options;
    const logFile = join(dir, 'redis.log');
    const args = [
      ...['--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'no'],
      // No persistence: a restarted member comes back empty, like a freshly provisioned one.
      ...['--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logFile],
    ];
    const child = spawn(
      '/bin/sh',
      ['-c', WATCHDOG, 'redis-watchdog', dir, logFile, options.bin ?? 'redis-server', ...args],
      // Own session: a terminal's Ctrl+C reaches only us, and we decide how to shut down.
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    // Writes to a watchdog that already left fail with EPIPE; nothing to do about that.
    child.stdin.on('error', () => {});
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });

    let onPid: (pid: number) => void = () => {};
    const pidLine = new Promise<number>((resolve) => {
      onPid = resolve;
    });
    let exitStatus: number | null = null;
    let buffer = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        const exit = /^exit (\d+)$/.exec(line);
        if (exit) exitStatus = Number(exit[1]);
        else if (/^\d+$/.test(line)) onPid(Number(line));
      }
    });
    const exited = new Promise<number | null>((resolve) => {
      const done = () => {
        // An open pipe to a dead watchdog would only keep our event loop alive.
        child.stdin.destroy();
        resolve(exitStatus);
      };
      child.once('exit', done);
      child.once('error', done);
    });

    const failure = (why: string): RedisStartError => {
      const tail = logTail(logFile, stderr);
      return new RedisStartError(
        `redis-server on 127.0.0.1:${port} ${why}${tail ? `; last log lines:\n${tail}` : ''}`,
        /address already in use/i.test(tail),
      );
    };

    const pid = await Promise.race([pidLine, exited.then(() => null)]);
    if (pid === null) throw failure('could not be spawned (is /bin/sh available?)');
    const redis = new RedisProcess(pid, port, logFile, child, exited);

    const timeoutMs = options.readyTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (redis.#gone) throw failure(`exited with status ${exitStatus} before answering`);
      if ((await redisProcessId(port, 250)) === pid) return redis;
      if (Date.now() > deadline) {
        await redis.kill();
        throw failure(`did not answer INFO within ${timeoutMs} ms`);
      }
      await sleep(50);
    }
  }

  get running(): boolean {
    return !this.#gone;
  }

  get paused(): boolean {
    return this.#paused && !this.#gone;
  }

  /** SIGKILL redis-server (paused or not) and wait until it is gone and its port is free. */
  async kill(): Promise<void> {
    this.killSync();
    const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) throw new Error(`redis-server pid ${this.pid} did not exit within 5 s of SIGKILL`);
  }

  /** SIGSTOP: the process keeps its port but answers nothing until `resume`. */
  async pause(): Promise<void> {
    if (this.#gone) throw new Error(`redis-server on port ${this.port} is not running`);
    process.kill(this.pid, 'SIGSTOP');
    this.#paused = true;
    // Signal delivery is asynchronous; wait until the kernel reports the process stopped, so
    // a caller's very next request is guaranteed to hang.
    await waitForProcState(this.pid, 'T', 1000);
  }

  /** SIGCONT after `pause`; a no-op if not paused. */
  async resume(): Promise<void> {
    if (this.#gone) throw new Error(`redis-server on port ${this.port} is not running`);
    process.kill(this.pid, 'SIGCONT');
    this.#paused = false;
  }

  /** Synchronous kill for exit handlers, where nothing asynchronous runs any more. */
  private killSync(): void {
    if (this.#gone) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone: the watchdog's exit line is on its way.
    }
    // Tell the watchdog's reader to leave quietly rather than act as if we had died.
    if (this.child.stdin.writable) this.child.stdin.end('done\n');
  }
}

/**
 * The `process_id` of whatever redis answers on `127.0.0.1:port`, or null. Readiness checks
 * compare it with our pid: a bare PONG could come from another server that already holds the
 * port while ours is about to fail with "address in use".
 */
export function redisProcessId(port: number, timeoutMs = 500): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (pid: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      // An error reply (e.g. -LOADING) means "not ready yet".
      if (reply.startsWith('-')) return finish(null);
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) finish(Number(match[1]));
    });
    socket.once('error', () => finish(null));
    socket.once('close', () => finish(null));
  });
}

function logTail(logFile: string, stderr: string): string {
  let text = stderr;
  try {
    text = `${readFileSync(logFile, 'utf8')}${stderr}`;
  } catch {
    // No log yet: redis-server never got far enough to write one.
  }
  return text.trim().split('\n').slice(-15).join('\n');
}

async function waitForProcState(pid: number, state: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return; // No procfs (not Linux): signal delivery is effectively immediate anyway.
    }
    // Field 3, after the parenthesised command name (which may itself contain spaces).
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith(state)) return;
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
