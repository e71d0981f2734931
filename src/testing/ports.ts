import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port by listening on port 0 and closing again. Another
 * process could grab it before redis-server binds it; callers that can choose a new port
 * retry on "address in use" instead of trusting this blindly.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() =>
        port ? resolve(port) : reject(new Error('could not obtain a free port')),
      );
    });
  });
}
