import { parseArgs } from 'node:util';
import type { GatewayOptions } from './types.js';

/**
 * Command-line parsing for `redis-edge-gateway`, kept pure (argv + env in, options or an error
 * out) so it is testable without spawning processes. Secrets may come from environment
 * variables so they do not show up in `ps`; a flag wins over its variable.
 */

export const USAGE = `Usage: redis-edge-gateway --redis-url <url> --token <token> [options]

Upstash-REST-compatible HTTP gateway in front of a RESP Redis.

Required:
  --redis-url <url>              backend, e.g. redis://127.0.0.1:6380   (env REDIS_EDGE_REDIS_URL)
  --token <token>                bearer token for REST clients           (env REDIS_EDGE_TOKEN)

Options:
  --host <addr>                  interface to bind (default 127.0.0.1)
  --port <n>                     port to listen on (default 8080; 0 picks a free one)
  --readonly-token <token>       token limited to read-only commands     (env REDIS_EDGE_READONLY_TOKEN)
  --cors-origin <origin>         allow a browser origin (exact, or *); repeatable or comma-separated
  --allow <CMD>                  lift a command from the deny-list (e.g. FLUSHALL, MONITOR);
                                 repeatable or comma-separated
  --max-body-bytes <n>           largest request body (default 10485760)
  --max-batch-commands <n>       most commands in one /pipeline or /multi-exec (default 10000)
  --max-stream-buffer-bytes <n>  bytes queued for a slow /monitor client before it is cut off
                                 (default 33554432); /subscribe and /psubscribe stop reading
                                 Redis instead, whose pubsub output limit then applies
  --pool-size <n>                backend connections (default 4)
  --backend-timeout-ms <n>       answer 504 when Redis takes longer (default 10000)
  --admin-token <token>          enable the /admin fault-injection API   (env REDIS_EDGE_ADMIN_TOKEN)

Availability API emulation (enabled by --availability-user and --availability-password):
  --availability-user <name>     basic-auth user                         (env REDIS_EDGE_AVAILABILITY_USER)
  --availability-password <pw>   basic-auth password                     (env REDIS_EDGE_AVAILABILITY_PASSWORD)
  --availability-port <n>        serve it on its own port (default: the REST port)
  --bdb-uid <n>                  database uid it reports (default 1)
  --availability-dns-name <name> endpoint dns_name it reports (default: the backend host)

  -h, --help                     show this help

Prints one line "redis-edge-gateway listening on <url>" to stdout when ready; logs go to
stderr. SIGINT/SIGTERM shut down gracefully. Exit codes: 0 ok, 1 runtime failure, 2 usage.`;

export type ParsedCli =
  | { kind: 'help' }
  | { kind: 'run'; options: GatewayOptions }
  | { kind: 'error'; message: string };

/** Default port of the CLI (the library's default is 0, a free port). */
const CLI_DEFAULT_PORT = 8080;

const FLAGS = {
  'redis-url': { type: 'string' },
  token: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'readonly-token': { type: 'string' },
  'cors-origin': { type: 'string', multiple: true },
  allow: { type: 'string', multiple: true },
  'max-body-bytes': { type: 'string' },
  'max-batch-commands': { type: 'string' },
  'max-stream-buffer-bytes': { type: 'string' },
  'pool-size': { type: 'string' },
  'backend-timeout-ms': { type: 'string' },
  'admin-token': { type: 'string' },
  'availability-user': { type: 'string' },
  'availability-password': { type: 'string' },
  'availability-port': { type: 'string' },
  'bdb-uid': { type: 'string' },
  'availability-dns-name': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Option field (as `GatewayConfigError.field` names it) → the flag that sets it. */
export const FLAG_OF_FIELD: Record<string, string> = {
  redisUrl: '--redis-url',
  token: '--token',
  readonlyToken: '--readonly-token',
  host: '--host',
  port: '--port',
  corsOrigins: '--cors-origin',
  allow: '--allow',
  maxBodyBytes: '--max-body-bytes',
  maxBatchCommands: '--max-batch-commands',
  maxStreamBufferBytes: '--max-stream-buffer-bytes',
  poolSize: '--pool-size',
  backendTimeoutMs: '--backend-timeout-ms',
  adminToken: '--admin-token',
  'availability.username': '--availability-user',
  'availability.password': '--availability-password',
  'availability.port': '--availability-port',
  'availability.bdbUid': '--bdb-uid',
  'availability.dnsName': '--availability-dns-name',
};

class UsageError extends Error {}

function integer(flag: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`--${flag} must be an integer between ${min} and ${max}`);
  }
  return n;
}

/** `--allow a,b --allow c` → `['a','b','c']`. */
function list(values: string[] | undefined): string[] | undefined {
  if (!values) return undefined;
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/**
 * parseArgs' messages name the flag in quotes; keep just that part (never a value). A stray
 * positional is named by its place only: it is often a value that lost its flag
 * (`--token= S3CRET`), i.e. a secret.
 */
function describeParseError(err: unknown, args: string[]): string {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const quoted = message.match(/'([^']+)'/)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${quoted ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `flag ${quoted?.split(' ')[0] ?? ''} needs a value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const at = positionalIndex(args);
      return `unexpected positional argument${at === undefined ? '' : ` (argument ${at + 1})`}`;
    }
    default:
      return message;
  }
}

const parseFlags = (args: string[]) =>
  parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false });

/** Where the first positional argument is in `args` (0-based), as parseArgs reads them. */
function positionalIndex(args: string[]): number | undefined {
  try {
    const { tokens } = parseArgs({
      args,
      options: FLAGS,
      strict: false,
      allowPositionals: true,
      tokens: true,
    });
    return tokens.find((token) => token.kind === 'positional')?.index;
  } catch {
    return undefined;
  }
}

export function parseCli(argv: string[], env: Record<string, string | undefined>): ParsedCli {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    ({ values } = parseFlags(argv));
  } catch (err) {
    return { kind: 'error', message: describeParseError(err, argv) };
  }
  if (values.help) return { kind: 'help' };
  try {
    const nonEmpty = (flag: string, value: string | undefined): string | undefined => {
      if (value === undefined) return undefined;
      if (value.trim() === '') throw new UsageError(`--${flag} must not be empty`);
      return value;
    };
    const redisUrl = nonEmpty('redis-url', values['redis-url'] ?? env.REDIS_EDGE_REDIS_URL);
    if (!redisUrl) throw new UsageError('missing --redis-url (or REDIS_EDGE_REDIS_URL)');
    const token = nonEmpty('token', values.token ?? env.REDIS_EDGE_TOKEN);
    if (!token) throw new UsageError('missing --token (or REDIS_EDGE_TOKEN)');

    const options: GatewayOptions = {
      redisUrl,
      token,
      readonlyToken: nonEmpty(
        'readonly-token',
        values['readonly-token'] ?? env.REDIS_EDGE_READONLY_TOKEN,
      ),
      host: nonEmpty('host', values.host),
      port: integer('port', values.port, 0, 65535) ?? CLI_DEFAULT_PORT,
      corsOrigins: list(values['cors-origin']),
      allow: list(values.allow),
      maxBodyBytes: integer('max-body-bytes', values['max-body-bytes'], 1, 2 ** 31),
      maxBatchCommands: integer('max-batch-commands', values['max-batch-commands'], 1, 2 ** 31),
      maxStreamBufferBytes: integer(
        'max-stream-buffer-bytes',
        values['max-stream-buffer-bytes'],
        1,
        2 ** 31,
      ),
      poolSize: integer('pool-size', values['pool-size'], 1, 256),
      backendTimeoutMs: integer('backend-timeout-ms', values['backend-timeout-ms'], 1, 600_000),
      adminToken: nonEmpty('admin-token', values['admin-token'] ?? env.REDIS_EDGE_ADMIN_TOKEN),
    };

    const user = nonEmpty(
      'availability-user',
      values['availability-user'] ?? env.REDIS_EDGE_AVAILABILITY_USER,
    );
    const password = nonEmpty(
      'availability-password',
      values['availability-password'] ?? env.REDIS_EDGE_AVAILABILITY_PASSWORD,
    );
    const availabilityPort = integer('availability-port', values['availability-port'], 0, 65535);
    const bdbUid = integer('bdb-uid', values['bdb-uid'], 1, 2 ** 31);
    const dnsName = nonEmpty('availability-dns-name', values['availability-dns-name']);
    const wantsAvailability =
      user !== undefined ||
      password !== undefined ||
      availabilityPort !== undefined ||
      bdbUid !== undefined ||
      dnsName !== undefined;
    if (wantsAvailability) {
      if (!user) throw new UsageError('the availability API needs --availability-user');
      if (!password) throw new UsageError('the availability API needs --availability-password');
      options.availability = { username: user, password, port: availabilityPort, bdbUid, dnsName };
    }
    // Drop unset keys so the library's defaults apply.
    for (const key of Object.keys(options) as (keyof GatewayOptions)[]) {
      if (options[key] === undefined) delete options[key];
    }
    return { kind: 'run', options };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'error', message: err.message };
    throw err;
  }
}
