#!/usr/bin/env node
/**
 * `redis-edge-gateway`: runs the gateway until SIGINT/SIGTERM.
 * stdout gets exactly one line (the ready line, for scripts and tests to wait on); everything
 * else goes to stderr. Exit codes: 0 clean stop, 1 runtime failure, 2 usage error.
 */
import { FLAG_OF_FIELD, parseCli, USAGE } from './cli-args.js';
import { GatewayConfigError } from './options.js';

/**
 * The gateway's Node-only packages are optional peers, so that an edge app installing the
 * client does not install them; whoever runs the gateway installs them next to this package.
 * Checked before the gateway module loads, so a missing one is a sentence, not a stack trace.
 */
const GATEWAY_PACKAGES = ['ioredis', '@hono/node-server', 'hono'];

function missingPackages(): string[] {
  return GATEWAY_PACKAGES.filter((name) => {
    try {
      import.meta.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

function usageError(message: string): never {
  process.stderr.write(
    `redis-edge-gateway: ${message}\nRun 'redis-edge-gateway --help' for usage.\n`,
  );
  process.exit(2);
}

async function main(): Promise<void> {
  const parsed = parseCli(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (parsed.kind === 'error') usageError(parsed.message);

  const missing = missingPackages();
  if (missing.length > 0) {
    // Next to the package: in the project (npm install), among the global packages for a
    // global install (npm install -g), or beside it in npx's temporary install (npx -p).
    const names = missing.join(' ');
    process.stderr.write(
      `redis-edge-gateway: needs ${missing.join(', ')} installed next to redis-edge-failover: npm install ${names} (npm install -g ${names} if it is installed globally; with npx: npx -p redis-edge-failover ${missing.map((m) => `-p ${m}`).join(' ')} redis-edge-gateway)\n`,
    );
    process.exit(1);
  }
  const { startGateway } = await import('./gateway.js');
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(parsed.options);
  } catch (err) {
    if (err instanceof GatewayConfigError) {
      usageError(`${FLAG_OF_FIELD[err.field] ?? err.field} ${err.problem}`);
    }
    process.stderr.write(`redis-edge-gateway: ${err instanceof Error ? err.message : err}\n`);
    process.exit(1);
  }
  process.stdout.write(`redis-edge-gateway listening on ${gateway.url}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal: the operator does not want to wait for in-flight requests.
      process.stderr.write(`redis-edge-gateway: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`redis-edge-gateway: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`redis-edge-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
