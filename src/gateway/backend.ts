import { Redis, type RedisOptions } from 'ioredis';
import { WRITE_REFUSAL_CODES } from '../transport/types.js';
import {
  backendConnectionLost,
  backendRefused,
  backendTimeout,
  backendUnavailable,
  GatewayError,
} from './errors.js';

/** An argument as it goes to Redis: text, or raw bytes from a path-form POST body. */
export type Arg = string | Buffer;
/** A command: name first. */
export type Command = [string, ...Arg[]];

/**
 * What the pool's connections hand back (buffer mode, `stringNumbers`): bulk and status strings
 * as Buffers, integers as their decimal digits in a JS string (a JS number would round integers
 * beyond 2^53), so a JS string in a reply is always an integer.
 */
export type RawReply = Buffer | string | number | null | Error | RawReply[];

/** A Redis error reply (`-ERR ...`, `-WRONGTYPE ...`): the caller's answer, not a gateway failure. */
export interface RedisErrorReply {
  kind: 'redis-error';
  message: string;
}

/** One element of a pipeline or transaction answer. */
export type BatchItem = { kind: 'ok'; reply: RawReply } | RedisErrorReply;

export function isRedisError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * Redis error codes that prove a command did not run: Redis answers them in `processCommand`
 * (or, for a script, before its body starts), before the command is called. So the command had
 * no effect, and a failover client may send it to another member (design 4.4: the gateway says
 * "not sent" only when nothing ran). The first word must match exactly: `BUSYKEY` (RESTORE onto
 * an existing key) and `BUSYGROUP` (XGROUP CREATE of an existing group) are ordinary errors.
 * OOM, READONLY, NOREPLICAS and MISCONF refuse only writes (OOM: commands that may grow memory,
 * and, inside MULTI, every queued command); reads keep running on that member.
 */
const NOT_RUN_CODES: Record<string, string> = {
  BUSY: 'a script, function or module command is running past busy-reply-threshold',
  LOADING: 'the dataset is still loading',
  MASTERDOWN: 'the replica lost its master and does not serve stale data',
  TRYAGAIN: 'keys of the command are being migrated',
  CLUSTERDOWN: 'the cluster is down',
  OOM: 'used memory is over maxmemory and nothing can be evicted',
  READONLY: 'the member is a read-only replica',
  NOREPLICAS: 'fewer good replicas than min-replicas-to-write are connected',
  MISCONF: 'writes are stopped because the last RDB save or AOF write failed',
};

/**
 * A script chooses its own error replies (`return redis.error_reply('LOADING ...')`), possibly
 * after writing, so for these commands a matching code proves nothing; only the exact texts
 * with which Redis refuses a command before running it count (an error a script raised from a
 * failed `redis.call` also ends in " script: ..." and never matches). A script declaring flags
 * (`#!lua`) or a function that may write gets the plain OOM/READONLY/NOREPLICAS/MISCONF text
 * before it starts; a script without flags gets it, suffixed, from its first write's
 * `redis.call`, after whatever it did before (a PUBLISH, say). A script that returns one of
 * these very texts on purpose (or passes on a `redis.pcall` error) would be taken at its word.
 * MISCONF's AOF form (`MISCONF Errors writing to the AOF file: <errno text>`) is not listed: a
 * script refused that way gets the command error.
 */
const SCRIPT_COMMANDS = new Set(['EVAL', 'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);
const WRITE_REFUSALS = new Set(WRITE_REFUSAL_CODES);
const REDIS_REFUSALS = new Set([
  'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
  'BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.',
  'BUSY Redis is busy running a module command.',
  'LOADING Redis is loading the dataset in memory',
  "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
  "MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.",
  'TRYAGAIN Multiple keys request during rehashing of slot',
  'CLUSTERDOWN The cluster is down',
  'CLUSTERDOWN The cluster is down and only accepts read commands',
  'CLUSTERDOWN Hash slot not served',
  "OOM command not allowed when used memory > 'maxmemory'.",
  "READONLY You can't write against a read only replica.",
  'NOREPLICAS Not enough good replicas to write.',
  "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.",
]);

/**
 * The Redis code (`BUSY`, ...) when `message` is Redis refusing command `name` without running
 * it, else undefined. Without `name` the error is known to be Redis' own (a transaction's
 * queueing or EXEC: nothing of the user's ran yet).
 */
function notRunCode(message: string, name?: string, script?: unknown): string | undefined {
  const code = message.split(' ', 1)[0]!;
  if (!(code in NOT_RUN_CODES)) return undefined;
  const upper = name?.toUpperCase();
  if (upper !== undefined && SCRIPT_COMMANDS.has(upper)) {
    if (!REDIS_REFUSALS.has(message)) return undefined;
    // A script without flags meets these only from inside, at its first write, after whatever it
    // did before (a PUBLISH), and `redis.pcall` passes the exact text on. Only a function or a
    // script that declares flags (`#!`) gets it before it starts; EVALSHA's script is unseen.
    const flagged = upper.startsWith('FCALL') || String(script ?? '').startsWith('#!');
    return WRITE_REFUSALS.has(code) && !flagged ? undefined : code;
  }
  return code;
}

function refused(code: string): GatewayError {
  return backendRefused(code, NOT_RUN_CODES[code]!);
}

const EXECABORT_PREVIOUS = 'EXECABORT Transaction discarded because of previous errors.';
const EXECABORT_BECAUSE = 'EXECABORT Transaction discarded because of: ';

/**
 * The Redis code when a discarded transaction ran nothing only because Redis was unavailable:
 * EXEC was refused (Redis 7 says `EXECABORT ... because of: BUSY ...`, and discards), or
 * queueing failed, and every reason given is a not-run code. A reason of the user's own (an
 * unknown command, wrong arity) stays that command error: another member would refuse it too.
 * MULTI never gets one of these codes (it may run while busy, loading, stale, out of memory
 * or refusing writes, and has no keys), so the errors before EXEC are those of queued
 * commands, refused before they ran (out of memory, Redis refuses every queued command, reads
 * too).
 */
function transactionNotRunCode(err: Error): string | undefined {
  const previous = (err as Error & { previousErrors?: Error[] }).previousErrors ?? [];
  const reasons = previous.map((e) => e.message);
  if (err.message.startsWith(EXECABORT_BECAUSE)) {
    reasons.unshift(err.message.slice(EXECABORT_BECAUSE.length));
  } else if (err.message !== EXECABORT_PREVIOUS) {
    reasons.unshift(err.message);
  }
  const codes = reasons.map((reason) => notRunCode(reason));
  return codes.length > 0 && codes.every((code) => code !== undefined) ? codes[0] : undefined;
}

/** ioredis' message when a command is refused before anything is written to the socket. */
const NOT_WRITABLE = "Stream isn't writeable";
const TIMED_OUT = 'Command timed out';

export interface BackendOptions {
  url: string;
  poolSize: number;
  timeoutMs: number;
  log: (line: string) => void;
}

/**
 * A small pool of ioredis connections to one RESP backend.
 *
 * The whole point of the gateway's failure contract (design 4.4) is to know whether a command
 * reached Redis. So the pool never queues: `enableOfflineQueue: false` makes ioredis refuse a
 * command synchronously while the connection is not ready (provably not sent), and
 * `autoResendUnfulfilledCommands: false` + `maxRetriesPerRequest: 0` make a connection drop
 * reject in-flight commands instead of replaying them on the next connection (which could run a
 * write twice). Reconnection happens in the background with a short backoff.
 */
export class BackendPool {
  /** `host:port` of the backend, for log lines (never the URL: it may carry a password). */
  readonly target: string;
  readonly host: string;
  readonly port: number;
  private readonly conns: Redis[];
  /**
   * Connections dropped after a command timeout, until they are ready again: between
   * `disconnect(true)` and the socket's close ioredis still reports them `ready`.
   */
  private readonly recycling = new Set<Redis>();
  private nextIndex = 0;
  private state: 'starting' | 'up' | 'down' = 'starting';
  private closed = false;

  constructor(private readonly options: BackendOptions) {
    const parsed = new URL(options.url);
    this.host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    this.port = parsed.port ? Number(parsed.port) : 6379;
    this.target = `${this.host}:${this.port}`;
    this.conns = [];
    for (let i = 0; i < options.poolSize; i++) {
      const conn = new Redis(options.url, this.connectionOptions());
      conn.on('ready', () => {
        this.recycling.delete(conn);
        this.onStateChange();
      });
      conn.on('close', () => this.onStateChange());
      // Without a listener ioredis prints every reconnect failure; the pool logs transitions.
      conn.on('error', (err: Error) => this.onStateChange(err));
      containParserFailures(conn, (err) => {
        // Not picked again before the reconnect: its socket is gone, though ioredis still
        // reports it `ready` until the close event.
        if (!this.closed) this.recycling.add(conn);
        this.options.log(
          `backend ${this.target}: a reply could not be parsed (${errorName(err)}); reconnecting that connection`,
        );
      });
      this.conns.push(conn);
    }
  }

  private connectionOptions(): RedisOptions {
    return {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.options.timeoutMs,
      connectTimeout: Math.min(this.options.timeoutMs, 3000),
      keepAlive: 10_000,
      connectionName: 'redis-edge-gateway',
      // Integer replies as Redis' digits (RESP2 `:` replies only; bulk strings stay Buffers).
      stringNumbers: true,
      // 50, 100, 200 ... capped at 1 s: a restarted backend is picked up within a second.
      retryStrategy: (times) => (this.closed ? null : Math.min(50 * 2 ** (times - 1), 1000)),
    };
  }

  /** The backend timeout (ms): commands, and opening a stream's dedicated connection. */
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  get poolSize(): number {
    return this.conns.length;
  }

  get readyCount(): number {
    return this.conns.filter((c) => this.usable(c)).length;
  }

  private onStateChange(err?: Error): void {
    if (this.closed) return;
    const ready = this.readyCount;
    if (ready > 0 && this.state !== 'up') {
      this.state = 'up';
      this.options.log(`backend ${this.target} available`);
    } else if (ready === 0 && this.state !== 'down' && (err || this.state === 'up')) {
      this.state = 'down';
      const why = err ? ` (${(err as NodeJS.ErrnoException).code ?? err.name})` : '';
      this.options.log(`backend ${this.target} unavailable${why}`);
    }
  }

  /**
   * Resolves once every connection has either become ready or failed once, or after `ms`.
   * Lets `startGateway` return with a warm pool without hanging when the backend is down.
   */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const each = this.conns.map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.status === 'ready') return resolve();
          conn.once('ready', () => resolve());
          conn.once('error', () => resolve());
        }),
    );
    await Promise.race([
      Promise.all(each),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * A ready connection, round-robin. Synchronous on purpose: nothing can change between this
   * check and the write that follows it in the same tick.
   */
  private pick(): Redis {
    const n = this.conns.length;
    for (let i = 0; i < n; i++) {
      const conn = this.conns[(this.nextIndex + i) % n]!;
      if (this.usable(conn)) {
        this.nextIndex = (this.nextIndex + i + 1) % n;
        return conn;
      }
    }
    throw backendUnavailable();
  }

  private usable(conn: Redis): boolean {
    return conn.status === 'ready' && !this.recycling.has(conn);
  }

  /** Runs one command. Resolves with the reply or a Redis error; throws a `GatewayError`. */
  async call(command: Command): Promise<BatchItem> {
    if (this.closed) throw backendUnavailable();
    const [name, ...args] = command;
    const conn = this.pick();
    try {
      return {
        kind: 'ok',
        // The arguments as one array (ioredis flattens it), never spread: a spread call puts
        // each one on the stack, which overflows past ~125k (a large SADD or MSET).
        reply: (await conn.callBuffer(wireName(name), args)) as RawReply,
      };
    } catch (err) {
      if (!isRedisError(err)) throw this.classify(err, conn);
      const code = notRunCode(err.message, name, args[0]);
      if (code) throw refused(code);
      return { kind: 'redis-error', message: err.message };
    }
  }

  /**
   * Runs a batch on one connection. ioredis writes a pipeline with a single socket write, so
   * commands of concurrent requests sharing the connection cannot interleave with it, and a
   * MULTI ... EXEC block stays contiguous.
   *
   * Non-atomic: one item per command. Atomic: one item per command, or a single
   * `redis-error` when Redis discarded the transaction.
   * Throws `backendRefused` (not sent) when Redis ran none of it because it was unavailable
   * (busy, loading, ...): every command of a pipeline got such an error (one that ran, e.g. a
   * command allowed while busy, keeps the per-command answers: re-running the batch elsewhere
   * would run it twice), or the transaction was discarded for such a reason only.
   */
  async batch(commands: Command[], atomic: boolean): Promise<BatchItem[] | RedisErrorReply> {
    if (this.closed) throw backendUnavailable();
    const conn = this.pick();
    const chain = atomic ? conn.multi() : conn.pipeline();
    // Not spread, as in `call`.
    for (const [name, ...args] of commands) chain.callBuffer(wireName(name), args);
    let results: [Error | null, unknown][] | null;
    try {
      results = await chain.exec();
    } catch (err) {
      if (!isRedisError(err)) throw this.classify(err, conn);
      const code = transactionNotRunCode(err);
      if (code) throw refused(code);
      return { kind: 'redis-error', message: discardMessage(err) };
    }
    if (!results) throw backendConnectionLost();
    // A transport failure on any element makes the whole batch's outcome unknown.
    const failure = results.find(([err]) => err && !isRedisError(err));
    if (failure) throw this.classify(failure[0], conn);
    if (!atomic) {
      const codes = results.map(
        ([err], i) => err && notRunCode(err.message, commands[i]![0], commands[i]![1]),
      );
      if (codes.length > 0 && codes.every(Boolean)) throw refused(codes[0]!);
    }
    return results.map(([err, reply]) =>
      err
        ? { kind: 'redis-error', message: err.message }
        : { kind: 'ok', reply: reply as RawReply },
    );
  }

  /** Backend liveness for the availability emulation: PING on a ready connection. */
  async ping(timeoutMs: number): Promise<boolean> {
    let conn: Redis;
    try {
      conn = this.pick();
    } catch {
      return false;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        conn.ping().then((r) => r === 'PONG'),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A separate, connected connection for a long-lived stream (SUBSCRIBE, MONITOR): those put a
   * connection into a mode where it cannot serve other commands, so they never use the pool.
   * It does not reconnect: if it drops, the stream ends and the client resubscribes, rather
   * than silently missing the messages published while it was away.
   *
   * Connecting, the handshake and (MONITOR) Redis' confirmation share one deadline, the backend
   * timeout: a stopped or wedged Redis (SIGSTOP, a long `DEBUG SLEEP`) still gets TCP connections
   * accepted by the kernel, and only the handshake's answers never come, so without it the
   * request would wait for ever. `signal` (the HTTP client left) gives up at once. Either way
   * the connection is torn down, so nothing is left for Redis to find once it runs again.
   */
  async dedicated(mode: 'subscriber' | 'monitor', signal?: AbortSignal): Promise<Redis> {
    if (this.closed || signal?.aborted) throw backendUnavailable();
    const conn = new Redis(this.options.url, {
      ...this.connectionOptions(),
      lazyConnect: true,
      retryStrategy: () => null,
      autoResubscribe: false,
      commandTimeout: undefined,
      // Only the pool's replies are passed through; ioredis' own subscriber bookkeeping here
      // reads the counts in (un)subscribe confirmations.
      stringNumbers: false,
      monitor: mode === 'monitor',
    });
    conn.on('error', () => {});
    // Nothing to recycle: the stream sees the connection end and ends too.
    containParserFailures(conn, () => {});
    const release = () => {
      conn.disconnect();
      // `disconnect` ends the socket gracefully, which a stopped Redis never completes.
      conn.stream?.destroy();
    };

    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const gaveUp = new Promise<'timeout' | 'aborted'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.timeoutMs);
      onAbort = () => resolve('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const connected = await Promise.race([
        conn.connect().then(
          () => true,
          () => false,
        ),
        gaveUp,
      ]);
      if (connected !== true) {
        release();
        // Nothing but the handshake was sent: the subscription provably did not start.
        throw backendUnavailable();
      }
      // ioredis sends MONITOR after `ready`; events before Redis confirms it would be missed.
      // (`monitoring` is a real ioredis status its typings omit.)
      if (mode === 'monitor' && (conn.status as string) !== 'monitoring') {
        let onMonitoring: (() => void) | undefined;
        let onEnd: (() => void) | undefined;
        const confirmed = new Promise<boolean>((resolve) => {
          onMonitoring = () => resolve(true);
          onEnd = () => resolve(false);
          conn.once('monitoring', onMonitoring);
          conn.once('end', onEnd);
        });
        const monitoring = await Promise.race([confirmed, gaveUp]);
        if (onMonitoring) conn.off('monitoring', onMonitoring);
        if (onEnd) conn.off('end', onEnd);
        if (monitoring !== true) {
          release();
          throw backendConnectionLost();
        }
      }
      return conn;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Maps a non-Redis failure of a command on `conn` to the gateway's answer (design 4.4).
   * A timed-out command leaves `conn` behind it: ioredis gives up on the reply, but Redis may
   * still be running the command or be blocked in it (a blocking command let through by
   * `allow`, a long script), and every later command on that connection would queue behind it
   * and time out too. So the connection is dropped and reconnected (`disconnect(true)`: same
   * client, same listeners, the pool's retry strategy) and not picked until it is ready again.
   * Closing the socket also ends a blocking command in Redis. Commands still in flight on it
   * fail as "connection lost" (their outcome is unknown, as it is for the timed-out one).
   */
  private classify(err: unknown, conn: Redis): GatewayError {
    // Already decided (e.g. `pick()` found no ready connection).
    if (err instanceof GatewayError) return err;
    const message = err instanceof Error ? err.message : '';
    // Refused synchronously by ioredis before writing: the command provably did not run.
    if (message.startsWith(NOT_WRITABLE)) return backendUnavailable();
    // Written, but no answer in time: it may still run.
    if (message === TIMED_OUT) {
      this.recycle(conn);
      return backendTimeout(this.options.timeoutMs);
    }
    // Connection closed or reset after the write (MaxRetriesPerRequestError, "Connection is
    // closed."): the outcome is unknown.
    return backendConnectionLost();
  }

  private recycle(conn: Redis): void {
    if (this.closed || this.recycling.has(conn) || conn.status !== 'ready') return;
    this.recycling.add(conn);
    this.options.log(`backend ${this.target}: command timed out; reconnecting that connection`);
    conn.disconnect(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.conns.map(async (conn) => {
        if (conn.status !== 'ready') return conn.disconnect();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          conn.quit().catch(() => {}),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, 1000);
          }),
        ]);
        clearTimeout(timer);
        conn.disconnect();
      }),
    );
  }
}

/**
 * ioredis keys its client-side conveniences on lower-case command names: `hgetall` replies are
 * turned into objects, `mset`/`hset` arguments that are objects are flattened, `select`/`quit`
 * change connection bookkeeping. The gateway must pass replies through untouched, so it sends
 * names upper-case, which Redis treats the same and ioredis leaves alone.
 */
function wireName(name: string): string {
  return name.toUpperCase();
}

/**
 * Redis answers a discarded transaction with `EXECABORT Transaction discarded because of
 * previous errors.`; the reason (e.g. `ERR unknown command 'foo'`) was the reply to the command
 * that failed to queue, which ioredis attaches as `previousErrors`. The first of those is what
 * the caller needs, so it is appended.
 */
function discardMessage(err: Error): string {
  const previous = (err as Error & { previousErrors?: Error[] }).previousErrors;
  const first = previous?.[0]?.message;
  return first ? `${err.message} ${first}` : err.message;
}

/** Sockets whose 'data' events already go through `containParserFailures`. */
const contained = new WeakSet<object>();

/**
 * Keeps a failure of ioredis' reply parsing to the one connection it happened on.
 *
 * redis-parser recurses once per nesting level of a reply, so a reply nested a few thousand
 * levels deep (a Lua table: `EVAL_RO`, so even the read-only token can ask for one) overflows
 * the stack inside the socket's 'data' listener. Nothing up that stack catches it: it would be
 * an uncaught exception, and the process (the gateway runs in-process as a library too) would
 * exit. ioredis offers no hook around its parser, and a process-wide `uncaughtException`
 * handler is not a library's to install. So the socket's 'data' events are delivered inside a
 * `try`: its `emit` is wrapped, at ioredis' 'connect' event, which it emits for every new socket
 * (each reconnect too) after attaching its parser and before any reply can arrive.
 *
 * After such a throw the parser's state is unknown (half a reply buffered, the command queue
 * possibly out of step), so no further byte may reach it: the socket is destroyed at once.
 * ioredis then fails the commands waiting on it as a lost connection (502: the one whose reply
 * broke the parser did run, the others may have), and a pooled connection reconnects with a
 * new parser, while the rest of the pool serves on.
 */
function containParserFailures(conn: Redis, onFailure: (err: unknown) => void): void {
  conn.on('connect', () => {
    const socket = conn.stream;
    if (!socket || contained.has(socket)) return;
    contained.add(socket);
    const emit = socket.emit.bind(socket) as (
      event: string | symbol,
      ...args: unknown[]
    ) => boolean;
    socket.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event !== 'data') return emit(event, ...args);
      try {
        return emit(event, ...args);
      } catch (err) {
        socket.destroy();
        onFailure(err);
        return true;
      }
    }) as typeof socket.emit;
  });
}

/** An error's class, for log lines (its message could quote data). */
function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
