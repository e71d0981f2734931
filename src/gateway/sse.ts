import type { Redis } from 'ioredis';
import { backendConnectionLost, backendTimeout } from './errors.js';

/**
 * Server-sent-event streams for SUBSCRIBE, PSUBSCRIBE and MONITOR, in the format
 * `@upstash/redis` parses (`Subscriber.handleMessage`): one `data:` line per event,
 *
 *   data: subscribe,<channel>,<count>        data: message,<channel>,<payload>
 *   data: psubscribe,<pattern>,<count>       data: pmessage,<pattern>,<channel>,<payload>
 *
 * Each stream owns a dedicated backend connection (subscriber mode cannot serve other
 * commands), closed when the client goes away, when the backend connection drops (the client
 * should resubscribe rather than silently miss messages), when the client falls too far behind,
 * or when the gateway shuts down.
 *
 * Backpressure: the events of one socket read are sent as one chunk, and once more than
 * `STREAM_HIGH_WATER_BYTES` wait for the HTTP client, a subscription stops reading its backend
 * socket until the client drains them. The backlog then stays in Redis, whose own limit for
 * subscribers (`client-output-buffer-limit pubsub`) decides when a reader is too slow: Redis
 * closes the connection, the stream sees it and cuts the client off. MONITOR is not paused:
 * its connection is a 'normal' client, for which Redis sets no limit by default, so the
 * gateway keeps reading and `StreamOptions.maxBufferBytes` is the limit.
 */

export type StreamKind = 'subscribe' | 'psubscribe' | 'monitor';

/** Comment line that keeps proxies from timing out idle streams and reveals dead clients. */
const HEARTBEAT_MS = 15_000;

/** Bytes waiting for the HTTP client past which a subscription stops reading from Redis. */
const STREAM_HIGH_WATER_BYTES = 1024 * 1024;

/** Heap a queued chunk costs beyond its bytes (Uint8Array, its buffer, the queue entry). */
const CHUNK_OVERHEAD_BYTES = 256;

/**
 * While a subscription is paused, it cannot see Redis close the connection (the close waits
 * behind the unread data). An empty line, which Redis ignores without replying, is written this
 * often: to a connection Redis has closed, the first one draws a reset and the next one fails,
 * which ends the connection.
 */
const PAUSED_PROBE_MS = 500;

export interface StreamOptions {
  kind: StreamKind;
  /** Channels or patterns (empty for monitor). */
  targets: string[];
  /** The connection, already connected (see `BackendPool.dedicated`). */
  connection: Redis;
  /** Aborts when the HTTP client disconnects. */
  signal: AbortSignal;
  /** Open streams, so shutdown can end them; the stream removes itself when it ends. */
  registry: Set<() => void>;
  /**
   * Most bytes (each queued chunk counted with its overhead) the gateway holds for a client
   * that reads slower than events arrive (or not at all). Past it the client is cut off, as
   * Redis cuts off a slow client: its connection is closed, the queue dropped and the backend
   * connection released. A subscription pauses its backend connection long before (see
   * above), so this is the limit for MONITOR and a last resort for subscriptions.
   */
  maxBufferBytes: number;
  /**
   * How long Redis may take to confirm a SUBSCRIBE/PSUBSCRIBE (the backend timeout); without
   * it, a Redis stopped after the connection was opened would leave the request unanswered.
   */
  confirmTimeoutMs?: number;
  /**
   * Closes the client's HTTP connection at once (queued bytes dropped). Without it, an
   * overflowing stream is errored instead, which ends the response the same way.
   */
  disconnectClient?: () => void;
}

/**
 * One event is one `data:` line, always. `@upstash/redis` splits the stream on `\n` and takes
 * every `data: ` line as an event of its own (it does not join continuation lines as
 * EventSource does), so a payload framed as several `data:` lines would arrive cut short, and
 * its later lines, `message,<other channel>,...` included, as forged events. Fields are made
 * single-line beforehand (`payloadField`, `nameField`); this is the last guard, escaping any
 * line break left the way Redis escapes them in MONITOR lines.
 */
function frame(data: string): string {
  return `data: ${data.replace(/\r/g, '\\r').replace(/\n/g, '\\n')}\n\n`;
}

const LINE_BREAK = /[\r\n]/;

/**
 * A message payload as a single line that `@upstash/redis` turns back into what it would have
 * delivered for the payload read whole: it JSON-parses each payload (`parseWithTryCatch`),
 * falling back to the raw text. A valid JSON payload can only hold raw line breaks as
 * whitespace between tokens (JSON strings cannot contain them), so they become spaces and it
 * parses to the same value. Any other payload is sent JSON-quoted, which parses back to the
 * exact text. Limitation: a reader that does not JSON-parse (`automaticDeserialization: false`,
 * EventSource, curl) sees that single-line form, not the original bytes. Payloads without a
 * line break, nearly all of them, go out unchanged.
 */
function payloadField(text: string): string {
  if (!LINE_BREAK.test(text)) return text;
  try {
    JSON.parse(text);
    return text.replace(/[\r\n]/g, ' ');
  } catch {
    return JSON.stringify(text);
  }
}

/**
 * A channel or pattern name holding a line break (legal in Redis) is sent JSON-quoted: the
 * client never parses names, but quoting cannot be mistaken for another event.
 */
function nameField(text: string): string {
  return LINE_BREAK.test(text) ? JSON.stringify(text) : text;
}

export async function openStream(options: StreamOptions): Promise<Response> {
  const { kind, targets, connection, signal, registry, maxBufferBytes, disconnectClient } = options;
  const { confirmTimeoutMs } = options;
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  // A subscription pauses its backend socket rather than queue past this (never above half
  // the hard limit, so a paused stream stays clear of it); MONITOR never pauses.
  const pausable = kind !== 'monitor';
  const highWater = pausable
    ? Math.min(STREAM_HIGH_WATER_BYTES, Math.floor(maxBufferBytes / 2))
    : 0;
  let paused = false;
  let probe: ReturnType<typeof setInterval> | undefined;

  // Queue size counted in bytes plus a per-chunk overhead: `desiredSize` is then `highWater`
  // minus what the HTTP response has not taken yet (it stops taking while the client's socket
  // is not draining), and `pull()` runs whenever the response takes a chunk below `highWater`.
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        resume();
      },
      cancel() {
        stop();
      },
    },
    { highWaterMark: highWater, size: (chunk) => chunk.byteLength + CHUNK_OVERHEAD_BYTES },
  );
  const queued = () => highWater - (controller.desiredSize ?? 0);

  // Events arriving in one socket read (ioredis emits them synchronously) are joined into one
  // chunk, sent once the read has been handled.
  let batch: string[] = [];
  const flush = () => {
    const chunk = batch.join('');
    batch = [];
    if (ended) return;
    try {
      controller.enqueue(encoder.encode(chunk));
    } catch {
      stop();
      return;
    }
    if (queued() > maxBufferBytes) overflow();
    else if (pausable && queued() >= highWater) pause();
  };
  const push = (chunk: string) => {
    if (ended) return;
    if (batch.length === 0) queueMicrotask(flush);
    batch.push(chunk);
  };
  const send = (data: string) => push(frame(data));

  const heartbeat = setInterval(() => push(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();

  function pause(): void {
    if (paused || ended) return;
    paused = true;
    connection.stream?.pause();
    probe = setInterval(() => {
      const socket = connection.stream;
      if (socket && !socket.destroyed && socket.writable) socket.write('\r\n', () => {});
    }, PAUSED_PROBE_MS);
    probe.unref();
  }

  function resume(): void {
    if (!paused) return;
    paused = false;
    clearInterval(probe);
    if (!ended) connection.stream?.resume();
  }

  function stop(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearInterval(probe);
    registry.delete(stop);
    signal.removeEventListener('abort', stop);
    connection.off('end', backendEnded);
    connection.disconnect();
    // A paused socket only ends after ioredis' 2 s fallback: free it now.
    connection.stream?.destroy();
    try {
      controller.close();
    } catch {
      // Already closed or cancelled by the reader.
    }
  }

  /**
   * The client is not keeping up. A closing event could not reach it (it would queue behind
   * the backlog), so its connection is cut: the HTTP server then cancels the stream, which
   * drops the queue. Events published meanwhile are lost for it, as with Redis' own limit.
   */
  function overflow(): void {
    stop();
    if (disconnectClient) {
      disconnectClient();
      return;
    }
    try {
      controller.error(new Error('event stream client too slow'));
    } catch {
      // Already cancelled.
    }
  }

  /**
   * The backend connection is gone. While paused, that is Redis dropping a subscriber that fell
   * too far behind (or the backend going away while the client was not reading): cut the client
   * off as on overflow. Otherwise the stream ends after what was already queued.
   */
  function backendEnded(): void {
    if (paused) overflow();
    else stop();
  }

  registry.add(stop);
  signal.addEventListener('abort', stop, { once: true });
  // The client may have left while the backend connection was being opened.
  if (signal.aborted) stop();
  connection.once('end', backendEnded);

  if (kind === 'monitor') {
    connection.on('monitor', (time: string, args: string[], source: string, db: string) => {
      // Rebuilds the line Redis sent (and `redis-cli monitor` prints): ioredis only unescaped
      // `\"`; Redis already escaped line breaks and binary bytes.
      const quoted = args.map((a) => `"${a.replace(/"/g, '\\"')}"`).join(' ');
      send(`${time} [${db} ${source}] ${quoted}`);
    });
  } else {
    // Messages parsed in the same socket read as the confirmations reach us before the
    // `subscribe()` promise settles; hold them so the confirmations go out first.
    let early: string[] | null = [];
    const deliver = (data: string) => (early ? early.push(data) : send(data));
    connection.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      deliver(
        `message,${nameField(channel.toString('utf8'))},${payloadField(message.toString('utf8'))}`,
      );
    });
    connection.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => {
      const [p, ch] = [nameField(pattern.toString('utf8')), nameField(channel.toString('utf8'))];
      deliver(`pmessage,${p},${ch},${payloadField(message.toString('utf8'))}`);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      (kind === 'subscribe'
        ? connection.subscribe(...targets)
        : connection.psubscribe(...targets)
      ).then(
        () => 'confirmed' as const,
        () => 'failed' as const,
      ),
      new Promise<'timeout'>((resolve) => {
        if (confirmTimeoutMs !== undefined) {
          timer = setTimeout(() => resolve('timeout'), confirmTimeoutMs);
        }
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'confirmed') {
      stop();
      // SUBSCRIBE was written; whether Redis registered it is unknown (harmless: the
      // connection is gone), but it is not "not sent".
      throw outcome === 'timeout' ? backendTimeout(confirmTimeoutMs!) : backendConnectionLost();
    }
    // Redis confirms each target with the running count of distinct subscriptions.
    const seen = new Set<string>();
    for (const target of targets) {
      seen.add(target);
      send(`${kind},${nameField(target)},${seen.size}`);
    }
    const held = early;
    early = null;
    for (const data of held) send(data);
  }

  return new Response(body, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    },
  });
}
