import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener, RequestError } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { backendUnavailable, badRequest, GatewayError, methodNotAllowed } from './errors.js';

/**
 * Listening and graceful shutdown. Shutdown order matters: stop taking requests (new ones get
 * 503 "not sent", which a failover client retries elsewhere), let in-flight ones finish within
 * a bound, then cut whatever is left.
 */
export class Lifecycle {
  closing = false;
  private inflight = 0;
  private idle: (() => void)[] = [];

  /** Counts requests and turns new ones away once shutdown has begun. */
  middleware(): MiddlewareHandler {
    return async (_c, next) => {
      if (this.closing) {
        const refusal = backendUnavailable();
        // Tell keep-alive clients to reconnect (elsewhere) rather than reuse this socket.
        refusal.headers.connection = 'close';
        throw refusal;
      }
      this.inflight++;
      try {
        await next();
      } finally {
        this.inflight--;
        if (this.inflight === 0) for (const resolve of this.idle.splice(0)) resolve();
      }
    };
  }

  /** Resolves when no request is in flight, or after `ms`. */
  async drained(ms: number): Promise<void> {
    if (this.inflight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idle.push(resolve)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

export interface Listening {
  server: Server;
  url: string;
}

/**
 * Why @hono/node-server could not build a Request (without an `errorHandler` it answers an
 * empty 400). Its messages are fixed texts, mapped here; anything else is not echoed.
 * `Invalid URL` is the URL constructor failing on `http://<Host header><target>`.
 */
const REQUEST_ERRORS: Record<string, string> = {
  'Backslash in request path': 'backslash in request path',
  'Missing host header': 'missing host header',
  'Invalid host header': 'invalid host header',
  'Invalid URL': 'invalid host header or request target',
  'Invalid absolute URL': 'invalid absolute URL',
  'Unsupported scheme': 'unsupported scheme',
};

function malformedRequest(err: RequestError): GatewayError {
  const detail = Object.hasOwn(REQUEST_ERRORS, err.message) ? REQUEST_ERRORS[err.message] : '';
  return badRequest(detail ? `Malformed HTTP request: ${detail}` : 'Malformed HTTP request');
}

/**
 * Node's own parser errors (`clientError`: a raw non-ASCII request target, a broken chunked
 * body, oversized headers, a request timeout) never reach the app, and Node answers them with
 * an empty body. Same statuses as Node's default handler, as JSON; anything else is a 400.
 */
const CLIENT_ERRORS: Record<string, [status: number, reason: string, error: GatewayError]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'Request Header Fields Too Large',
    new GatewayError(431, 'Request headers too large', 'HEADERS_TOO_LARGE'),
  ],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [
    413,
    'Payload Too Large',
    new GatewayError(413, 'Chunk extensions too large', 'PAYLOAD_TOO_LARGE'),
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'Request Timeout',
    new GatewayError(408, 'Request timed out', 'REQUEST_TIMEOUT'),
  ],
};

function clientErrorResponse(code: string | undefined): string {
  const [status, reason, error] =
    code !== undefined && Object.hasOwn(CLIENT_ERRORS, code)
      ? CLIENT_ERRORS[code]!
      : [400, 'Bad Request', badRequest('Malformed HTTP request')];
  return rawResponse(status, reason, error);
}

/** A whole HTTP/1.1 response carrying `error` as JSON, for a socket the app never sees. */
function rawResponse(status: number, reason: string, error: GatewayError): string {
  const body = JSON.stringify(error.body());
  const headers = Object.entries(error.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n${headers}` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // Like Node's default: answer only if nothing of a response went out on this socket yet
  // (a half-written response cannot be followed by another), then close it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
    socket.write(clientErrorResponse(err.code), () => socket.destroy());
    return;
  }
  socket.destroy();
}

/**
 * `Expect` other than `100-continue`: Node answers 417 with an empty body unless this listener
 * is there. The header's value is not echoed.
 */
function onCheckExpectation(_req: IncomingMessage, res: ServerResponse): void {
  const error = new GatewayError(
    417,
    'Expect: only 100-continue is supported',
    'EXPECTATION_FAILED',
  );
  const body = JSON.stringify(error.body());
  // Whether the client still sends its body after a refused expectation is up to it, so what
  // follows on this connection is ambiguous: close it.
  res.writeHead(417, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** CONNECT (this is no proxy): without this listener Node just drops the connection. */
function onConnect(_req: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => {});
  const error = methodNotAllowed(['GET', 'HEAD', 'POST', 'PUT']);
  socket.end(rawResponse(405, STATUS_CODES[405]!, error), () => socket.destroy());
}

/**
 * Serves `fetch` on host:port; rejects with a readable error (e.g. port in use). `toResponse`
 * turns any error into the gateway's JSON error response (see `errorResponse`).
 */
export async function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
  toResponse: (err: Error) => Response,
): Promise<Listening> {
  // overrideGlobalObjects: false: a library must not replace the process' Request/Response.
  // errorHandler: requests the adapter rejects before the app runs get a JSON error too
  // (createAdaptorServer does not pass one on).
  const listener = getRequestListener(fetch, {
    overrideGlobalObjects: false,
    errorHandler: (err) =>
      toResponse(
        err instanceof RequestError
          ? malformedRequest(err)
          : err instanceof Error
            ? err
            : new Error('non-error thrown'),
      ),
  });
  // requireHostHeader: false: Node would answer an HTTP/1.1 request without Host with an empty
  // 400; the adapter refuses it as well, with the JSON error (see REQUEST_ERRORS).
  const server = createServer({ requireHostHeader: false }, listener);
  server.on('clientError', onClientError);
  server.on('checkExpectation', onCheckExpectation);
  server.on('connect', onConnect);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `cannot listen on ${host}:${port}: address already in use`
            : `cannot listen on ${host}:${port}: ${err.code ?? err.message}`,
        ),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${shownHost}:${address.port}` };
}

/** Stops accepting connections; after `graceMs` closes the ones still open. */
export async function closeServer(server: Server, graceMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections with no request in flight would otherwise hold close() open.
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    }),
  ]);
  clearTimeout(timer);
  server.closeAllConnections();
  await closed;
}
