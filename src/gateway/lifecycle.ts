import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { backendUnavailable } from './errors.js';

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

/** Serves `fetch` on host:port; rejects with a readable error (e.g. port in use). */
export async function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
): Promise<Listening> {
  // overrideGlobalObjects: false: a library must not replace the process' Request/Response.
  const server = createAdaptorServer({ fetch, overrideGlobalObjects: false }) as Server;
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
