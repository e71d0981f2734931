import type { Redis } from 'ioredis';
import { backendConnectionLost } from './errors.js';

/**
 * Server-sent-event streams for SUBSCRIBE, PSUBSCRIBE and MONITOR, in the format
 * `@upstash/redis` parses (`Subscriber.handleMessage`): one `data:` line per event,
 *
 *   data: subscribe,<channel>,<count>        data: message,<channel>,<payload>
 *   data: psubscribe,<pattern>,<count>       data: pmessage,<pattern>,<channel>,<payload>
 *
 * Each stream owns a dedicated backend connection (subscriber mode cannot serve other
 * commands), closed when the client goes away, when the backend connection drops (the client
 * should resubscribe rather than silently miss messages), when the client falls too far behind
 * (see `StreamOptions.maxBufferBytes`), or when the gateway shuts down.
 */

export type StreamKind = 'subscribe' | 'psubscribe' | 'monitor';

/** Comment line that keeps proxies from timing out idle streams and reveals dead clients. */
const HEARTBEAT_MS = 15_000;

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
   * Most bytes of events queued for a client that reads slower than they arrive (or not at
   * all). Past it the client is cut off, as Redis cuts off a slow subscriber
   * (`client-output-buffer-limit pubsub`): its connection is closed, the queue dropped and the
   * backend connection released, so one stalled reader cannot grow the gateway without bound.
   */
  maxBufferBytes: number;
  /**
   * Closes the client's HTTP connection at once (queued bytes dropped). Without it, an
   * overflowing stream is errored instead, which ends the response the same way.
   */
  disconnectClient?: () => void;
}

/**
 * An SSE payload must not contain raw line breaks: a multi-line message is sent as several
 * `data:` lines, which standard EventSource readers join back with `\n`.
 */
function frame(data: string): string {
  return `${data
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

export async function openStream(options: StreamOptions): Promise<Response> {
  const { kind, targets, connection, signal, registry, maxBufferBytes, disconnectClient } = options;
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;

  // Queue size counted in bytes: `desiredSize` is then minus the bytes not yet taken by the
  // HTTP response, which stops taking them while the client's socket is not draining.
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel() {
        stop();
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );

  const push = (chunk: string) => {
    if (ended) return;
    try {
      controller.enqueue(encoder.encode(chunk));
    } catch {
      stop();
      return;
    }
    if (-(controller.desiredSize ?? 0) > maxBufferBytes) overflow();
  };
  const send = (data: string) => push(frame(data));

  const heartbeat = setInterval(() => push(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();

  function stop(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    registry.delete(stop);
    signal.removeEventListener('abort', stop);
    connection.disconnect();
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

  registry.add(stop);
  signal.addEventListener('abort', stop, { once: true });
  // The client may have left while the backend connection was being opened.
  if (signal.aborted) stop();
  connection.once('end', stop);

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
      deliver(`message,${channel.toString('utf8')},${message.toString('utf8')}`);
    });
    connection.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => {
      deliver(`pmessage,${pattern.toString('utf8')},${channel.toString('utf8')},${message}`);
    });
    try {
      if (kind === 'subscribe') await connection.subscribe(...targets);
      else await connection.psubscribe(...targets);
    } catch {
      stop();
      // SUBSCRIBE was written; whether Redis registered it is unknown (harmless: the
      // connection is gone), but it is not "not sent".
      throw backendConnectionLost();
    }
    // Redis confirms each target with the running count of distinct subscriptions.
    const seen = new Set<string>();
    for (const target of targets) {
      seen.add(target);
      send(`${kind},${target},${seen.size}`);
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
