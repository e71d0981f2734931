/**
 * The command safety table: may a command be sent again, to another member, when the first
 * attempt's outcome is unknown (design 4.4)?
 *
 * Three classes:
 * - `read`: changes nothing. Redis' own `readonly` command flag is the reference (COMMAND INFO),
 *   plus commands Redis does not flag but that touch no data (PING, ECHO, TIME, INFO, ...).
 *   SORT and GEORADIUS[BYMEMBER] are `read` unless they carry a STORE option.
 * - `idempotent-write`: running it twice with the same arguments leaves the same data as running
 *   it once (SET, DEL, HSET, SADD, ZADD, EXPIRE, ...). The reply of the second run may differ
 *   (DEL answers 0) and relative expiries move by the retry delay; the design accepts both.
 * - `non-idempotent-write`: a second run changes the data again (INCR, LPUSH, pops, XADD with
 *   `*`, scripts), fails where the first succeeded (RENAME, XGROUP CREATE), or is a conditional
 *   write whose reply is the decision the caller acts on (SETNX, SET NX, EXPIRE NX, COPY without
 *   REPLACE: a lock holder would be told it lost its own lock). Every unknown command is here.
 *
 * Redis' `write` flag alone cannot tell the last two apart, so those entries were decided per
 * command, some by their arguments (see the rules below). The table is plain data so the test
 * against a real redis-server can check every name and every readonly/write flag.
 *
 * Hot path: one lowercase + one Map lookup per command; argument rules only scan a few tokens.
 */

export type SafetyClass = 'read' | 'idempotent-write' | 'non-idempotent-write';

type Rule = (command: readonly unknown[]) => SafetyClass;
type Entry = SafetyClass | Rule;

const READ: SafetyClass = 'read';
const IDEMPOTENT: SafetyClass = 'idempotent-write';
const NON_IDEMPOTENT: SafetyClass = 'non-idempotent-write';

const READ_COMMANDS = [
  // strings and bitmaps
  'get',
  'mget',
  'getrange',
  'substr',
  'strlen',
  'lcs',
  'getbit',
  'bitcount',
  'bitpos',
  'bitfield_ro',
  // keyspace
  'exists',
  'type',
  'ttl',
  'pttl',
  'expiretime',
  'pexpiretime',
  'keys',
  'scan',
  'randomkey',
  'dump',
  'touch',
  'dbsize',
  // hashes (httl..hpexpiretime: Redis 7.4)
  'hget',
  'hmget',
  'hgetall',
  'hkeys',
  'hvals',
  'hlen',
  'hexists',
  'hstrlen',
  'hrandfield',
  'hscan',
  'httl',
  'hpttl',
  'hexpiretime',
  'hpexpiretime',
  // lists
  'lrange',
  'lindex',
  'llen',
  'lpos',
  // sets
  'smembers',
  'sismember',
  'smismember',
  'scard',
  'srandmember',
  'sscan',
  'sinter',
  'sintercard',
  'sunion',
  'sdiff',
  // sorted sets
  'zrange',
  'zrangebyscore',
  'zrangebylex',
  'zrevrange',
  'zrevrangebyscore',
  'zrevrangebylex',
  'zrank',
  'zrevrank',
  'zscore',
  'zmscore',
  'zcard',
  'zcount',
  'zlexcount',
  'zrandmember',
  'zscan',
  'zinter',
  'zintercard',
  'zunion',
  'zdiff',
  // geo and hyperloglog
  'geopos',
  'geodist',
  'geohash',
  'geosearch',
  'georadius_ro',
  'georadiusbymember_ro',
  'pfcount',
  // streams
  'xrange',
  'xrevrange',
  'xlen',
  'xread',
  'xpending',
  // scripting: the _RO variants are rejected by Redis if the script writes
  'eval_ro',
  'evalsha_ro',
  'fcall_ro',
  'sort_ro',
  // server and connection: no data touched
  'ping',
  'echo',
  'time',
  'info',
  'lastsave',
  'role',
  'lolwut',
  // subscribing changes no data, so a subscription can move to another member
  'subscribe',
  'psubscribe',
  'ssubscribe',
  // RedisJSON (a module in Redis Stack, built into Redis 8)
  'json.get',
  'json.mget',
  'json.type',
  'json.strlen',
  'json.arrlen',
  'json.arrindex',
  'json.objkeys',
  'json.objlen',
  'json.resp',
];

const IDEMPOTENT_COMMANDS = [
  'mset',
  'setex',
  'psetex',
  'setrange',
  'setbit',
  // GETSET and GETEX leave the same data on a second run; only the reply differs
  'getset',
  'getex',
  'del',
  'unlink',
  'persist',
  'flushdb',
  'flushall',
  'hset',
  'hmset',
  'hdel',
  'hpersist',
  'hgetex',
  'lset',
  'sadd',
  'srem',
  'zrem',
  'zremrangebyscore',
  'zremrangebylex',
  'geoadd',
  'pfadd',
  // a union of registers: merging again changes nothing, even when dest is a source
  'pfmerge',
  'xdel',
  'xdelex',
  'xack',
  'xackdel',
  'xsetid',
  // trimming converges: a second run never goes past the threshold the caller asked for
  'xtrim',
  'json.del',
  'json.forget',
  'json.clear',
  'json.mset',
  'json.merge',
];

const NON_IDEMPOTENT_COMMANDS = [
  'incr',
  'incrby',
  'incrbyfloat',
  'decr',
  'decrby',
  'append',
  'getdel',
  'setnx',
  'msetnx',
  'hsetnx',
  'hincrby',
  'hincrbyfloat',
  'hgetdel',
  'lpush',
  'rpush',
  'lpushx',
  'rpushx',
  'linsert',
  'lpop',
  'rpop',
  'lmpop',
  'lmove',
  'rpoplpush',
  'blpop',
  'brpop',
  'blmpop',
  'blmove',
  'brpoplpush',
  'spop',
  'smove',
  'zincrby',
  'zpopmin',
  'zpopmax',
  'zmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'rename',
  'renamenx',
  'move',
  'swapdb',
  'migrate',
  'restore-asking',
  'pfdebug',
  'xclaim',
  'xautoclaim',
  'xreadgroup',
  'eval',
  'evalsha',
  'fcall',
  'publish',
  'spublish',
  'json.numincrby',
  'json.nummultby',
  'json.strappend',
  'json.arrappend',
  'json.arrinsert',
  'json.arrpop',
  'json.toggle',
  // ARRTRIM re-trims the already trimmed array (indexes shift), unlike a converging trim
  'json.arrtrim',
];

function isToken(arg: unknown, lower: string): boolean {
  return typeof arg === 'string' && arg.length === lower.length && arg.toLowerCase() === lower;
}

function hasTokenFrom(command: readonly unknown[], start: number, lower: string): boolean {
  for (let i = start; i < command.length; i++) {
    if (isToken(command[i], lower)) return true;
  }
  return false;
}

function toInteger(arg: unknown): number {
  const n =
    typeof arg === 'number' ? arg : typeof arg === 'string' && arg !== '' ? Number(arg) : NaN;
  return Number.isInteger(n) ? n : NaN;
}

function sameKey(a: unknown, b: unknown): boolean {
  return a === b || (a !== undefined && b !== undefined && String(a) === String(b));
}

function keyIn(key: unknown, command: readonly unknown[], from: number, to: number): boolean {
  const end = Math.min(to, command.length);
  for (let i = from; i < end; i++) {
    if (sameKey(key, command[i])) return true;
  }
  return false;
}

/** NX/GT/LT make the reply the decision ("did I set it?"); a retry would answer "no". */
function conditionalExpiry(optionIndex: number): Rule {
  return (command) => {
    const option = command[optionIndex];
    return isToken(option, 'nx') || isToken(option, 'gt') || isToken(option, 'lt')
      ? NON_IDEMPOTENT
      : IDEMPOTENT;
  };
}

/**
 * A store command whose destination is also one of its sources reads its own output on a
 * second run (ZUNIONSTORE d 2 d k sums twice, SDIFFSTORE d k d flips). `sources` says where
 * the source keys are: all remaining arguments, exactly one, or `numkeys` at `numkeysIndex`.
 */
function storeInto(destIndex: number, firstSource: number, sources: 'rest' | 'one' | number): Rule {
  return (command) => {
    let end = command.length;
    if (sources === 'one') {
      end = firstSource + 1;
    } else if (typeof sources === 'number') {
      const numkeys = toInteger(command[sources]);
      if (!(numkeys >= 0)) return NON_IDEMPOTENT;
      end = firstSource + numkeys;
    }
    return keyIn(command[destIndex], command, firstSource, end) ? NON_IDEMPOTENT : IDEMPOTENT;
  };
}

/** GEORADIUS[BYMEMBER] only writes with STORE/STOREDIST; without them it is a plain read. */
function geoRadius(firstOption: number): Rule {
  return (command) => {
    let writes = false;
    for (let i = firstOption; i < command.length; i++) {
      if (isToken(command[i], 'store') || isToken(command[i], 'storedist')) {
        writes = true;
        if (sameKey(command[i + 1], command[1])) return NON_IDEMPOTENT;
        i++;
      }
    }
    return writes ? IDEMPOTENT : READ;
  };
}

const sortRule: Rule = (command) => {
  let dest: unknown;
  let stores = false;
  for (let i = 2; i < command.length; i++) {
    const token = command[i];
    if (isToken(token, 'by') || isToken(token, 'get')) i += 1;
    else if (isToken(token, 'limit')) i += 2;
    else if (isToken(token, 'store')) {
      stores = true;
      dest = command[++i];
    } else if (!(isToken(token, 'asc') || isToken(token, 'desc') || isToken(token, 'alpha'))) {
      return NON_IDEMPOTENT;
    }
  }
  if (!stores) return READ;
  return sameKey(dest, command[1]) ? NON_IDEMPOTENT : IDEMPOTENT;
};

const setRule: Rule = (command) => (hasTokenFrom(command, 3, 'nx') ? NON_IDEMPOTENT : IDEMPOTENT);

const zaddRule: Rule = (command) => {
  for (let i = 2; i < command.length; i++) {
    const token = command[i];
    if (isToken(token, 'incr')) return NON_IDEMPOTENT;
    if (
      !(
        isToken(token, 'nx') ||
        isToken(token, 'xx') ||
        isToken(token, 'gt') ||
        isToken(token, 'lt') ||
        isToken(token, 'ch')
      )
    ) {
      break;
    }
  }
  return IDEMPOTENT;
};

/** XADD with `*` (or `<ms>-*`) creates a new entry on every run; an explicit id cannot repeat. */
const xaddRule: Rule = (command) => {
  let i = 2;
  while (i < command.length) {
    const token = command[i];
    if (isToken(token, 'nomkstream')) {
      i += 1;
    } else if (isToken(token, 'maxlen') || isToken(token, 'minid')) {
      i += 1;
      if (command[i] === '=' || command[i] === '~') i += 1;
      i += 1;
      if (isToken(command[i], 'limit')) i += 2;
    } else {
      break;
    }
  }
  const id = command[i];
  if (typeof id === 'number') return IDEMPOTENT;
  if (typeof id !== 'string' || id === '' || id.endsWith('*')) return NON_IDEMPOTENT;
  return IDEMPOTENT;
};

/** LTRIM keeps [start, stop]; only prefixes and suffixes survive a second run unchanged. */
const ltrimRule: Rule = (command) => {
  const start = toInteger(command[2]);
  const stop = toInteger(command[3]);
  const keepsPrefix = start === 0 && stop >= 0;
  const keepsSuffix = start <= 0 && stop === -1;
  return keepsPrefix || keepsSuffix ? IDEMPOTENT : NON_IDEMPOTENT;
};

/** ZREMRANGEBYRANK removes ranks; a second run removes the members that moved up into them. */
const zremRangeByRankRule: Rule = (command) => {
  const start = toInteger(command[2]);
  const stop = toInteger(command[3]);
  const removesTail = start >= 0 && stop === -1;
  const keepsTail = start === 0 && stop < 0;
  return removesTail || keepsTail ? IDEMPOTENT : NON_IDEMPOTENT;
};

/** LREM with count 0 removes every occurrence; a limited count removes more on a second run. */
const lremRule: Rule = (command) => (toInteger(command[2]) === 0 ? IDEMPOTENT : NON_IDEMPOTENT);

const bitfieldRule: Rule = (command) =>
  hasTokenFrom(command, 2, 'incrby') ? NON_IDEMPOTENT : IDEMPOTENT;

/** Without REPLACE the second run finds the destination taken and answers 0 / BUSYKEY. */
function replaceFrom(start: number): Rule {
  return (command) => (hasTokenFrom(command, start, 'replace') ? IDEMPOTENT : NON_IDEMPOTENT);
}

const hsetexRule: Rule = (command) => {
  for (let i = 2; i < command.length; i++) {
    const token = command[i];
    if (isToken(token, 'fields')) break;
    if (isToken(token, 'fnx')) return NON_IDEMPOTENT;
  }
  return IDEMPOTENT;
};

const jsonSetRule: Rule = (command) => (isToken(command[4], 'nx') ? NON_IDEMPOTENT : IDEMPOTENT);

/** Container commands (OBJECT ENCODING, XINFO STREAM, ...) are classified by subcommand. */
function subcommands(entries: Record<string, Entry>): Rule {
  const table = new Map<string, Entry>(Object.entries(entries));
  return (command) => {
    const sub = command[1];
    const entry = typeof sub === 'string' ? table.get(sub.toLowerCase()) : undefined;
    if (entry === undefined) return NON_IDEMPOTENT;
    return typeof entry === 'string' ? entry : entry(command);
  };
}

const SUBCOMMANDS: Record<string, Record<string, Entry>> = {
  object: { encoding: READ, freq: READ, idletime: READ, refcount: READ, help: READ },
  memory: { usage: READ, stats: READ, doctor: READ, 'malloc-stats': READ, help: READ },
  xinfo: { stream: READ, groups: READ, consumers: READ, help: READ },
  xgroup: {
    // a second CREATE fails with BUSYGROUP although the first one worked
    create: NON_IDEMPOTENT,
    createconsumer: IDEMPOTENT,
    delconsumer: IDEMPOTENT,
    destroy: IDEMPOTENT,
    setid: IDEMPOTENT,
    help: READ,
  },
  function: {
    list: READ,
    dump: READ,
    stats: READ,
    help: READ,
    load: replaceFrom(2),
    // a second DELETE fails with "library not found"
    delete: NON_IDEMPOTENT,
    flush: IDEMPOTENT,
    restore: NON_IDEMPOTENT,
    kill: NON_IDEMPOTENT,
  },
  script: { exists: READ, help: READ, load: IDEMPOTENT, flush: IDEMPOTENT },
  config: { get: READ, help: READ },
  command: {
    count: READ,
    docs: READ,
    getkeys: READ,
    getkeysandflags: READ,
    info: READ,
    list: READ,
    help: READ,
  },
  pubsub: {
    channels: READ,
    numpat: READ,
    numsub: READ,
    shardchannels: READ,
    shardnumsub: READ,
    help: READ,
  },
  // setinfo: Redis 7.2
  client: {
    id: READ,
    info: READ,
    getname: READ,
    list: READ,
    help: READ,
    setname: IDEMPOTENT,
    setinfo: IDEMPOTENT,
  },
};

const RULES: Record<string, Rule> = {
  set: setRule,
  zadd: zaddRule,
  xadd: xaddRule,
  expire: conditionalExpiry(3),
  pexpire: conditionalExpiry(3),
  expireat: conditionalExpiry(3),
  pexpireat: conditionalExpiry(3),
  // Redis 7.4 hash-field expiry: HEXPIRE key seconds [NX|XX|GT|LT] FIELDS n field...
  hexpire: conditionalExpiry(3),
  hpexpire: conditionalExpiry(3),
  hexpireat: conditionalExpiry(3),
  hpexpireat: conditionalExpiry(3),
  hsetex: hsetexRule,
  ltrim: ltrimRule,
  lrem: lremRule,
  zremrangebyrank: zremRangeByRankRule,
  bitfield: bitfieldRule,
  copy: replaceFrom(3),
  restore: replaceFrom(4),
  sort: sortRule,
  georadius: geoRadius(6),
  georadiusbymember: geoRadius(5),
  sinterstore: storeInto(1, 2, 'rest'),
  sunionstore: storeInto(1, 2, 'rest'),
  sdiffstore: storeInto(1, 2, 'rest'),
  zunionstore: storeInto(1, 3, 2),
  zinterstore: storeInto(1, 3, 2),
  zdiffstore: storeInto(1, 3, 2),
  zrangestore: storeInto(1, 2, 'one'),
  geosearchstore: storeInto(1, 2, 'one'),
  bitop: storeInto(2, 3, 'rest'),
  'json.set': jsonSetRule,
};

const TABLE = new Map<string, Entry>();
for (const name of READ_COMMANDS) TABLE.set(name, READ);
for (const name of IDEMPOTENT_COMMANDS) TABLE.set(name, IDEMPOTENT);
for (const name of NON_IDEMPOTENT_COMMANDS) TABLE.set(name, NON_IDEMPOTENT);
for (const [name, rule] of Object.entries(RULES)) TABLE.set(name, rule);
for (const [name, entries] of Object.entries(SUBCOMMANDS)) TABLE.set(name, subcommands(entries));

/** The lower-case command name (first element), or `''` when there is none. */
export function commandName(command: readonly unknown[]): string {
  const name = command[0];
  return typeof name === 'string' ? name.toLowerCase() : '';
}

/** Classifies one command (`[name, ...args]`); unknown commands are non-idempotent writes. */
export function classifyCommand(command: readonly unknown[]): SafetyClass {
  const entry = TABLE.get(commandName(command));
  if (entry === undefined) return NON_IDEMPOTENT;
  return typeof entry === 'string' ? entry : entry(command);
}

/** Strictest class first wins; `read` only if every command is a read. */
export function stricterClass(a: SafetyClass, b: SafetyClass): SafetyClass {
  if (a === NON_IDEMPOTENT || b === NON_IDEMPOTENT) return NON_IDEMPOTENT;
  if (a === IDEMPOTENT || b === IDEMPOTENT) return IDEMPOTENT;
  return READ;
}

/**
 * A pipeline or transaction is retried as a unit, so it is as strict as its strictest command.
 * `kind` is part of the signature because a transaction is the same unit of retry: a
 * `multi-exec` of reads is still a read, and one non-idempotent command taints the whole batch.
 */
export function classifyBatch(
  commands: readonly (readonly unknown[])[],
  _kind: 'pipeline' | 'multi-exec',
): SafetyClass {
  let result: SafetyClass = READ;
  for (const command of commands) {
    const safety = Array.isArray(command) ? classifyCommand(command) : NON_IDEMPOTENT;
    if (safety === NON_IDEMPOTENT) return NON_IDEMPOTENT;
    if (safety === IDEMPOTENT) result = IDEMPOTENT;
  }
  return result;
}

/**
 * Every name the table knows, with container subcommands as `container|sub` (the form
 * COMMAND INFO uses). For tests and documentation; not used on the request path.
 */
export function knownCommandNames(): string[] {
  const names: string[] = [];
  for (const name of TABLE.keys()) {
    const subs = SUBCOMMANDS[name];
    if (subs === undefined) names.push(name);
    else for (const sub of Object.keys(subs)) names.push(`${name}|${sub}`);
  }
  return names;
}
