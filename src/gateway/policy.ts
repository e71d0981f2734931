import type { Arg, Command } from './backend.js';
import type { CommandFlags } from './command-flags.js';
import { commandRefused, GatewayError } from './errors.js';
import { DEFAULTS, GatewayConfigError } from './options.js';

/**
 * Which commands a request may run through the gateway.
 *
 * Two lists, for two different reasons:
 * - `DEFAULT_DENIED`: dangerous for a shared, network-exposed database (administration,
 *   replication, data wipes) or ties up a pooled connection (blocking commands). An operator
 *   may lift these with `allow`.
 * - `POOL_UNSAFE`: change the state of the connection they run on (transactions, database
 *   selection, protocol, subscriber/monitor mode, reply suppression). Pooled connections are
 *   shared by concurrent requests, so these would corrupt other requests' answers; they can
 *   never be allowed. `/multi-exec` and the SSE endpoints are the supported ways to get
 *   transactions and subscriptions.
 */
const DEFAULT_DENIED: Record<string, string> = {
  CONFIG: 'server administration',
  DEBUG: 'server administration',
  SHUTDOWN: 'server administration',
  FLUSHALL: 'wipes the database',
  FLUSHDB: 'wipes the database',
  SWAPDB: 'swaps the whole dataset under every client',
  // Also FUNCTION RESTORE with the FLUSH policy, which does the same (see `refusal`).
  // FUNCTION DELETE <library> stays allowed: like DEL <key> it removes one named thing, and
  // the list refuses wholesale wipes (FLUSHALL, FLUSHDB), not ordinary deletion. Refusing it
  // would protect nothing either: FUNCTION LOAD REPLACE, needed to deploy functions, can
  // overwrite a library just as well.
  'FUNCTION FLUSH': 'deletes every library of functions',
  REPLICAOF: 'replication control',
  SLAVEOF: 'replication control',
  FAILOVER: 'replication control',
  MIGRATE: 'moves keys to another server',
  MODULE: 'server administration',
  ACL: 'server administration',
  CLUSTER: 'cluster administration',
  SAVE: 'blocks the server while persisting',
  BGSAVE: 'server administration',
  BGREWRITEAOF: 'server administration',
  PFDEBUG: 'server administration',
  PFSELFTEST: 'server administration',
  BLPOP: 'blocking commands tie up a pooled backend connection',
  BRPOP: 'blocking commands tie up a pooled backend connection',
  BLMOVE: 'blocking commands tie up a pooled backend connection',
  BRPOPLPUSH: 'blocking commands tie up a pooled backend connection',
  BZPOPMIN: 'blocking commands tie up a pooled backend connection',
  BZPOPMAX: 'blocking commands tie up a pooled backend connection',
  BLMPOP: 'blocking commands tie up a pooled backend connection',
  BZMPOP: 'blocking commands tie up a pooled backend connection',
  WAIT: 'blocking commands tie up a pooled backend connection',
  WAITAOF: 'blocking commands tie up a pooled backend connection',
  // Only with the BLOCK option (see `isBlockingStreamRead`).
  XREAD: 'XREAD with BLOCK ties up a pooled backend connection',
  XREADGROUP: 'XREADGROUP with BLOCK ties up a pooled backend connection',
  'CLIENT KILL': 'disconnects other clients',
  'CLIENT PAUSE': 'suspends all clients',
  'CLIENT UNPAUSE': 'server administration',
  'CLIENT UNBLOCK': 'server administration',
  // Allowing MONITOR opens the `/monitor` stream; as a plain command it is pool-unsafe.
  MONITOR: 'streams every command of every client',
};

const POOL_UNSAFE: Record<string, string> = {
  MULTI: 'use /multi-exec for transactions',
  EXEC: 'use /multi-exec for transactions',
  DISCARD: 'use /multi-exec for transactions',
  WATCH: 'WATCH would apply to a shared backend connection',
  UNWATCH: 'WATCH would apply to a shared backend connection',
  SELECT: 'would switch the database of a shared backend connection',
  HELLO: 'would change the protocol of a shared backend connection',
  AUTH: 'would change the user of a shared backend connection',
  RESET: 'would reset a shared backend connection',
  QUIT: 'would close a shared backend connection',
  READONLY: 'changes the state of a shared backend connection',
  READWRITE: 'changes the state of a shared backend connection',
  SUBSCRIBE: 'use the /subscribe/<channel> event stream',
  PSUBSCRIBE: 'use the /psubscribe/<pattern> event stream',
  SSUBSCRIBE: 'sharded pub/sub is not served over REST',
  UNSUBSCRIBE: 'close the event stream instead',
  PUNSUBSCRIBE: 'close the event stream instead',
  SUNSUBSCRIBE: 'close the event stream instead',
  SYNC: 'would turn a shared backend connection into a replication stream',
  PSYNC: 'would turn a shared backend connection into a replication stream',
  REPLCONF: 'replication internals',
  'CLIENT REPLY': 'would desynchronise replies on a shared backend connection',
  'CLIENT TRACKING': 'changes the state of a shared backend connection',
  'CLIENT CACHING': 'changes the state of a shared backend connection',
  'CLIENT SETNAME': 'would rename a shared backend connection',
  'CLIENT SETINFO': 'would relabel a shared backend connection',
  // Flags of the connection they run on: every later request sharing it would be exempt from
  // eviction (NO-EVICT) or stop updating keys' LRU/LFU (NO-TOUCH).
  'CLIENT NO-EVICT': 'changes the state of a shared backend connection',
  'CLIENT NO-TOUCH': 'changes the state of a shared backend connection',
  // YES/SYNC arm the connection: its next EVAL, whichever request sends it, starts a Lua
  // debugging session (SYNC also blocks the whole server) instead of running the script.
  'SCRIPT DEBUG': 'would turn the next script on a shared backend connection into a debug session',
};

/**
 * Pool-unsafe commands the gateway itself never sends, also removed from the backend ACL user
 * (defence in depth). The others stay: the pool's own handshake uses AUTH, HELLO, SELECT or
 * CLIENT SETNAME, and `/multi-exec` and the event streams need MULTI/EXEC and (P)SUBSCRIBE.
 * Not CLIENT NO-TOUCH: it is Redis 7.2+, and naming it fails ACL SETUSER on older servers.
 */
const ACL_POOL_UNSAFE = ['SCRIPT DEBUG', 'CLIENT NO-EVICT'];

/**
 * Redis finds a command (or subcommand) in a table hashed over the name's full length but
 * compared with `strcasecmp`, which stops at the first NUL: `FLUSHALL\0<n>` is an unknown
 * command for most `n` and FLUSHALL for the few that hash into its bucket. The deny-list, which
 * compares whole names, cannot tell those apart, so no such name runs at all.
 */
const NUL_IN_NAME = 'its name contains a NUL byte';
const NUL_IN_SUBCOMMAND = 'its subcommand contains a NUL byte';

/**
 * The commands Redis (7.x) dispatches on their first argument, looked up like a command name
 * (above). Only for these is that argument a subcommand; for every other command it is a key or
 * a value, which may hold any byte. Modules' containers are not listed: the deny-list names
 * none of their subcommands.
 */
const CONTAINERS = new Set([
  'ACL',
  'CLIENT',
  'CLUSTER',
  'COMMAND',
  'CONFIG',
  'FUNCTION',
  'LATENCY',
  'MEMORY',
  'MODULE',
  'OBJECT',
  'PUBSUB',
  'SCRIPT',
  'SLOWLOG',
  'XGROUP',
  'XINFO',
]);

/** `client|kill`, `client  kill`, `Client Kill` all name the same rule. */
export function normalizeCommandName(name: string): string {
  return name
    .trim()
    .replace(/[|\s]+/g, ' ')
    .toUpperCase();
}

/**
 * Whether XREAD/XREADGROUP arguments carry the BLOCK option. Parsed the way Redis parses them
 * (`xreadCommand`): the options before STREAMS come in any order, `GROUP <group> <consumer>`
 * included, so names and values are skipped rather than assumed to come first (a group or
 * consumer named BLOCK is not the option; `BLOCK 0 GROUP g c` is). Everything after STREAMS is
 * keys and IDs. BLOCK with any value counts: an invalid one only turns one refusal into another.
 * An unknown token is stepped over one at a time (Redis rejects it, or a newer option's value
 * is looked at as a possible BLOCK, which errs on the side of refusing).
 */
function isBlockingStreamRead(args: Arg[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const more = args.length - i - 1;
    if (isWord(arg, 'BLOCK')) return true;
    if (isWord(arg, 'STREAMS') && more > 0) return false;
    if (isWord(arg, 'COUNT') && more > 0) i += 1;
    else if (isWord(arg, 'GROUP') && more >= 2) i += 2;
  }
  return false;
}

export class CommandPolicy {
  private readonly denied = new Map<string, string>();

  /** `maxBatchCommands`: most commands in one `/pipeline` or `/multi-exec` (see `check`). */
  constructor(
    allow: string[] = [],
    private readonly maxBatchCommands: number = DEFAULTS.maxBatchCommands,
  ) {
    for (const [name, reason] of Object.entries(DEFAULT_DENIED)) this.denied.set(name, reason);
    for (const raw of allow) {
      const name = normalizeCommandName(raw);
      if (name === '') continue;
      const unsafe = POOL_UNSAFE[name];
      if (unsafe) {
        throw new GatewayConfigError('allow', `cannot include '${name}': ${unsafe}`);
      }
      // Allowing a container (`CLIENT`) lifts the rules of all its subcommands.
      for (const key of [...this.denied.keys()]) {
        if (key === name || key.startsWith(`${name} `)) this.denied.delete(key);
      }
    }
  }

  /**
   * The same deny-list as Redis ACL rules, for the user the gateway connects as. The gateway
   * can only refuse commands it is sent; a script (EVAL, FCALL) runs with the backend user's
   * permissions, so only Redis itself can refuse `redis.call('FLUSHALL')` inside one.
   * Plus `ACL_POOL_UNSAFE`, which no `allow` lifts.
   * Left out: XREAD/XREADGROUP (ACLs cannot tell their blocking form apart) and WAITAOF
   * (Redis 7.2+; naming it fails ACL SETUSER on older servers). The gateway refuses them itself,
   * like FUNCTION RESTORE with FLUSH (an ACL rule cannot look at that argument; scripts cannot
   * call FUNCTION commands in any case).
   */
  aclRules(): string[] {
    const rules = ['+@all'];
    for (const key of [...this.denied.keys(), ...ACL_POOL_UNSAFE]) {
      if (key === 'XREAD' || key === 'XREADGROUP' || key === 'WAITAOF') continue;
      rules.push(`-${key.toLowerCase().replace(' ', '|')}`);
    }
    return rules;
  }

  /** Whether the `/monitor` stream is enabled (`allow: ['MONITOR']`). */
  get monitorAllowed(): boolean {
    return !this.denied.has('MONITOR');
  }

  /** The reason a command is refused, or undefined when it may run. */
  refusal(command: Command): string | undefined {
    const [rawName, ...args] = command;
    if (rawName.includes('\0')) return NUL_IN_NAME;
    const name = rawName.toUpperCase();
    const sub = args[0];
    if (sub !== undefined && CONTAINERS.has(name) && hasNul(sub)) return NUL_IN_SUBCOMMAND;
    const unsafe = POOL_UNSAFE[name] ?? POOL_UNSAFE[subcommandKey(name, args)];
    if (unsafe) return unsafe;
    // As a plain command MONITOR would take over a pooled connection, allowed or not.
    if (name === 'MONITOR') return this.denied.get(name) ?? 'use the /monitor event stream';
    if (name === 'XREAD' || name === 'XREADGROUP') {
      return isBlockingStreamRead(args) ? this.denied.get(name) : undefined;
    }
    const key = subcommandKey(name, args);
    // `FUNCTION RESTORE <payload> FLUSH` deletes every library before restoring: the same
    // harm as FUNCTION FLUSH, so the same rule (and the same `allow` lifts it). Any FLUSH
    // after the payload counts: Redis takes one policy argument, a misplaced one only turns
    // its syntax error into this refusal.
    if (key === 'FUNCTION RESTORE' && args.slice(2).some((a) => isWord(a, 'FLUSH'))) {
      const flush = this.denied.get('FUNCTION FLUSH');
      return flush && `with FLUSH it ${flush}, like FUNCTION FLUSH`;
    }
    return this.denied.get(name) ?? this.denied.get(key);
  }

  /**
   * Throws a command refusal (see `commandRefused`) when any command of the request is refused.
   * Batches are checked as a whole before anything runs, so a refused command never leaves a
   * half-executed batch behind. A batch over `maxBatchCommands` is a 413 before any of that:
   * the body limit alone lets through a million tiny commands, and running them (every reply
   * held until the batch's answer is built) costs gigabytes.
   */
  check(commands: Command[], batch: boolean): void {
    if (batch && commands.length > this.maxBatchCommands) {
      throw new GatewayError(
        413,
        `a batch may hold at most ${this.maxBatchCommands} commands (maxBatchCommands, --max-batch-commands); nothing of it ran`,
        'TOO_MANY_COMMANDS',
      );
    }
    commands.forEach((command, index) => {
      const reason = this.refusal(command);
      if (reason === undefined) return;
      const name = displayName(command);
      const where = batch ? ` (command ${index + 1} of the batch)` : '';
      throw commandRefused(
        `command '${name}'${where} is not allowed through this gateway: ${reason}`,
        'COMMAND_DENIED',
      );
    });
  }

  /**
   * Throws a command refusal unless every command is one Redis flags read-only (asked from the
   * backend via `flags`). Runs before anything is sent, so a batch with one write runs nothing.
   */
  async checkReadOnly(commands: Command[], batch: boolean, flags: CommandFlags): Promise<void> {
    const verdicts = await Promise.all(commands.map((command) => flags.isReadOnly(command)));
    const index = verdicts.indexOf(false);
    if (index < 0) return;
    const where = batch ? ` (command ${index + 1} of the batch)` : '';
    throw commandRefused(
      `this token is read-only and '${displayName(commands[index]!)}'${where} is not a read-only command`,
      'READONLY_TOKEN',
    );
  }
}

/**
 * ACL rules for the Redis user the gateway should connect as, matching its deny-list (after
 * `allow`): `ACL SETUSER edge-gateway on >password ~* &* <rules>`, then
 * `--redis-url redis://edge-gateway:password@host:port`.
 */
export function backendAclRules(allow: string[] = []): string {
  return new CommandPolicy(allow).aclRules().join(' ');
}

/**
 * Whether Redis reads `arg` as the option `word` (upper case): it compares with `strcasecmp`,
 * so only up to the first NUL (`BLOCK\0x` is BLOCK) and folding ASCII letters only.
 */
function isWord(arg: Arg, word: string): boolean {
  const nul = typeof arg === 'string' ? arg.indexOf('\0') : arg.indexOf(0);
  const end = nul < 0 ? arg.length : nul;
  if (end !== word.length) return false;
  const text = typeof arg === 'string' ? arg.slice(0, end) : arg.toString('latin1', 0, end);
  return text.replace(/[a-z]/g, (c) => c.toUpperCase()) === word;
}

function hasNul(arg: Arg): boolean {
  return typeof arg === 'string' ? arg.includes('\0') : arg.includes(0);
}

function subcommandKey(name: string, args: Arg[]): string {
  const sub = args[0];
  return sub === undefined ? name : `${name} ${sub.toString().toUpperCase()}`;
}

/** The command name for error messages; never any argument except a known subcommand. */
function displayName(command: Command): string {
  const [rawName, ...args] = command;
  // Up to a NUL: what follows it is not part of any command name.
  const name = rawName.split('\0', 1)[0]!.slice(0, 64).toUpperCase();
  const key = subcommandKey(name, args);
  const known = key in DEFAULT_DENIED || key in POOL_UNSAFE || key === 'FUNCTION RESTORE';
  // Arguments are user data and are not echoed (design 4.8), except a denied subcommand.
  return known ? key : name;
}
