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
 *   `*`, scripts), fails where the first succeeded (RENAME, XGROUP CREATE, XADD with an explicit
 *   id), or is a write whose reply is the decision the caller acts on (SETNX, SET NX, EXPIRE NX,
 *   COPY without REPLACE: a lock holder would be told it lost its own lock; GETSET and SET GET:
 *   a swap would be told the value it replaced was its own). Every unknown command is here.
 *
 * Redis' `write` flag alone cannot tell the last two apart, so those entries were decided per
 * command, some by their arguments (see the rules below). The table is plain data so the test
 * against a real redis-server can check every name and every readonly/write flag.
 *
 * Hot path: one lowercase + one Map lookup per command; argument rules only scan a few tokens.
 */

import { NON_IDEMPOTENT_COMMANDS } from './command-names.js';

export type SafetyClass = 'read' | 'idempotent-write' | 'non-idempotent-write';

type Rule = (command: readonly unknown[]) => SafetyClass;
/** A class, a rule over the arguments, or (a container command) a table of its subcommands. */
type Entry = SafetyClass | Rule | Map<string, Entry>;

const READ: SafetyClass = 'read';
const IDEMPOTENT: SafetyClass = 'idempotent-write';
const NON_IDEMPOTENT: SafetyClass = 'non-idempotent-write';

// The name lists are space-separated strings, split once at load: the same data as arrays of
// string literals in far fewer bundle bytes (this table is a large part of the client bundle).

const READ_COMMANDS =
  // strings and bitmaps
  'get mget getrange substr strlen lcs getbit bitcount bitpos bitfield_ro ' +
  // keyspace
  'exists type ttl pttl expiretime pexpiretime keys scan randomkey dump touch dbsize ' +
  // hashes (httl..hpexpiretime: Redis 7.4)
  'hget hmget hgetall hkeys hvals hlen hexists hstrlen hrandfield hscan ' +
  'httl hpttl hexpiretime hpexpiretime ' +
  // lists
  'lrange lindex llen lpos ' +
  // sets
  'smembers sismember smismember scard srandmember sscan sinter sintercard sunion sdiff ' +
  // sorted sets
  'zrange zrangebyscore zrangebylex zrevrange zrevrangebyscore zrevrangebylex zrank zrevrank ' +
  'zscore zmscore zcard zcount zlexcount zrandmember zscan zinter zintercard zunion zdiff ' +
  // geo and hyperloglog
  'geopos geodist geohash geosearch georadius_ro georadiusbymember_ro pfcount ' +
  // streams
  'xrange xrevrange xlen xread xpending ' +
  // scripting: the _RO variants are rejected by Redis if the script writes
  'eval_ro evalsha_ro fcall_ro sort_ro ' +
  // server and connection: no data touched
  'ping echo time info lastsave role lolwut ' +
  // subscribing changes no data, so a subscription can move to another member
  'subscribe psubscribe ssubscribe ' +
  // RedisJSON (a module in Redis Stack, built into Redis 8)
  'json.get json.mget json.type json.strlen json.arrlen json.arrindex json.objkeys json.objlen ' +
  'json.resp';

const IDEMPOTENT_COMMANDS =
  'mset setex psetex setrange ' +
  // GETEX leaves the same data and answers the same value on a second run (GETSET is not
  // here: its reply, the value it replaced, is what a swap or lock acts on)
  'getex ' +
  'del unlink persist flushdb flushall ' +
  'hset hmset hdel hpersist hgetex lset sadd srem zrem zremrangebyscore zremrangebylex ' +
  'geoadd pfadd ' +
  // a union of registers: merging again changes nothing, even when dest is a source
  'pfmerge ' +
  'xdel xdelex xack xackdel xsetid ' +
  // trimming converges: a second run never goes past the threshold the caller asked for
  'xtrim ' +
  'json.clear json.mset json.merge';

// The non-idempotent commands need no entry: every command the table does not know is one.
// Their list is in command-names.ts, for knownCommandNames() only.

/** The names in a space-separated list (robust to doubled or trailing spaces: never `''`). */
function words(list: string): string[] {
  return list.match(/\S+/g) ?? [];
}

/**
 * `arg` lower-cased if it could be an option token, else `''`. A rule lower-cases each argument
 * it looks at once, then compares. Strings longer than NOMKSTREAM, the longest option a rule
 * looks for, are not lower-cased, so a large value (a payload, a script) is never copied.
 */
function option(arg: unknown): string {
  return typeof arg === 'string' && arg.length <= 10 ? arg.toLowerCase() : '';
}

function toInteger(arg: unknown): number {
  const n =
    typeof arg === 'number' ? arg : typeof arg === 'string' && arg !== '' ? Number(arg) : NaN;
  return Number.isInteger(n) ? n : NaN;
}

function sameKey(a: unknown, b: unknown): boolean {
  return a === b || (a !== undefined && b !== undefined && String(a) === String(b));
}

/**
 * Scans the arguments from `start`: `found` if one is a `hits` option (space-separated), else
 * `otherwise`. The scan ends early at the first option `stop` accepts (where the options end
 * and data begins).
 */
function scanFor(
  start: number,
  hits: string,
  found: SafetyClass,
  otherwise: SafetyClass,
  stop?: (option: string) => boolean,
): Rule {
  const wanted = words(hits);
  return (command) => {
    for (let i = start; i < command.length; i++) {
      const token = option(command[i]);
      if (wanted.includes(token)) return found;
      if (stop?.(token)) break;
    }
    return otherwise;
  };
}

/** Without REPLACE the second run finds the destination taken and answers 0 / BUSYKEY. */
function replaceFrom(start: number): Rule {
  return scanFor(start, 'replace', IDEMPOTENT, NON_IDEMPOTENT);
}

/** NX/GT/LT make the reply the decision ("did I set it?"); a retry would answer "no". */
function conditionAt(index: number, conditions: string): Rule {
  const list = words(conditions);
  return (command) => (list.includes(option(command[index])) ? NON_IDEMPOTENT : IDEMPOTENT);
}

/** Idempotent when `safe(start, stop)` holds for the integer arguments 2 and 3. */
function range(safe: (start: number, stop: number) => boolean): Rule {
  return (command) =>
    safe(toInteger(command[2]), toInteger(command[3])) ? IDEMPOTENT : NON_IDEMPOTENT;
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
    for (let i = firstSource; i < Math.min(end, command.length); i++) {
      if (sameKey(command[destIndex], command[i])) return NON_IDEMPOTENT;
    }
    return IDEMPOTENT;
  };
}

/** GEORADIUS[BYMEMBER] only writes with STORE/STOREDIST; without them it is a plain read. */
function geoRadius(firstOption: number): Rule {
  return (command) => {
    let writes = false;
    for (let i = firstOption; i < command.length; i++) {
      const token = option(command[i]);
      if (token === 'store' || token === 'storedist') {
        writes = true;
        if (sameKey(command[i + 1], command[1])) return NON_IDEMPOTENT;
        i++;
      }
    }
    return writes ? IDEMPOTENT : READ;
  };
}

/** SORT is a read unless it has STORE; an argument it does not know makes it unknown. */
const sortRule: Rule = (command) => {
  let dest: unknown;
  let stores = false;
  for (let i = 2; i < command.length; i++) {
    const token = option(command[i]);
    if (token === 'by' || token === 'get') i += 1;
    else if (token === 'limit') i += 2;
    else if (token === 'store') {
      stores = true;
      dest = command[++i];
    } else if (token !== 'asc' && token !== 'desc' && token !== 'alpha') return NON_IDEMPOTENT;
  }
  if (!stores) return READ;
  return sameKey(dest, command[1]) ? NON_IDEMPOTENT : IDEMPOTENT;
};

const ZADD_FLAGS = words('nx xx gt lt ch');

/**
 * Looks `command[index]` up case-insensitively (the name, or a container's subcommand); what
 * the table does not know is a non-idempotent write.
 */
function classifyIn(
  table: ReadonlyMap<string, Entry>,
  index: number,
  command: readonly unknown[],
): SafetyClass {
  const name = command[index];
  const entry = typeof name === 'string' ? table.get(name.toLowerCase()) : undefined;
  if (entry === undefined) return NON_IDEMPOTENT;
  if (typeof entry === 'string') return entry;
  return entry instanceof Map ? classifyIn(entry, index + 1, command) : entry(command);
}

/** A table of the names in `read`, `idempotent` and `nonIdempotent` (space-separated). */
function classTable(read: string, idempotent = '', nonIdempotent = ''): Map<string, Entry> {
  const table = new Map<string, Entry>();
  for (const name of words(read)) table.set(name, READ);
  for (const name of words(idempotent)) table.set(name, IDEMPOTENT);
  for (const name of words(nonIdempotent)) table.set(name, NON_IDEMPOTENT);
  return table;
}

/** Commands whose class depends on their arguments; space-separated names share an entry. */
const BY_ARGUMENTS: [names: string, entry: Entry][] = [
  // SET NX is a lock: a retry would tell the holder it lost its own lock; SET GET answers the
  // value it replaced, and a retry would answer the caller's own; IFEQ/IFNE/IFDEQ/IFDNE (Redis
  // 8.4 compare-and-set) would find the first run's value and report a swap that did happen
  // as lost
  ['set', scanFor(3, 'nx get ifeq ifne ifdeq ifdne', NON_IDEMPOTENT, IDEMPOTENT)],
  // ZADD INCR adds again; the flags before the scores are all it can carry
  ['zadd', scanFor(2, 'incr', NON_IDEMPOTENT, IDEMPOTENT, (token) => !ZADD_FLAGS.includes(token))],
  // HEXPIRE..HPEXPIREAT: Redis 7.4 hash-field expiry (HEXPIRE key seconds [NX|XX|GT|LT] FIELDS ...)
  [
    'expire pexpire expireat pexpireat hexpire hpexpire hexpireat hpexpireat',
    conditionAt(3, 'nx gt lt'),
  ],
  // HSETEX FNX sets only if no field exists; the options end at FIELDS
  ['hsetex', scanFor(2, 'fnx', NON_IDEMPOTENT, IDEMPOTENT, (token) => token === 'fields')],
  // LTRIM keeps [start, stop]; only prefixes and suffixes survive a second run unchanged
  ['ltrim', range((start, stop) => (start === 0 && stop >= 0) || (start <= 0 && stop === -1))],
  // LREM with count 0 removes every occurrence; a limited count removes more on a second run
  ['lrem', range((count) => count === 0)],
  // ZREMRANGEBYRANK removes ranks; a second run removes the members that moved up into them
  [
    'zremrangebyrank',
    range((start, stop) => (start >= 0 && stop === -1) || (start === 0 && stop < 0)),
  ],
  // BITFIELD INCRBY adds again; SET answers the value it replaced, like SETBIT (a retry would
  // answer the caller's own). Redis parses every operation before it runs any, so with neither
  // it only reads (GET, OVERFLOW alone)
  ['bitfield', scanFor(2, 'incrby set', NON_IDEMPOTENT, READ)],
  // JSON.DEL of an array element by index (`$.a[0]`) deletes the next one on a second run
  [
    'json.del json.forget',
    // an index or a slice (`[0]`, `[-1]`, `[:2]`, `[::2]`); `[*]` and filters are idempotent
    (command) => (/\[\s*[-\d:]/.test(String(command[2] ?? '')) ? NON_IDEMPOTENT : IDEMPOTENT),
  ],
  ['copy', replaceFrom(3)],
  ['restore', replaceFrom(4)],
  ['sort', sortRule],
  ['georadius', geoRadius(6)],
  ['georadiusbymember', geoRadius(5)],
  ['sinterstore sunionstore sdiffstore', storeInto(1, 2, 'rest')],
  ['zunionstore zinterstore zdiffstore', storeInto(1, 3, 2)],
  ['zrangestore geosearchstore', storeInto(1, 2, 'one')],
  ['bitop', storeInto(2, 3, 'rest')],
  ['json.set', conditionAt(4, 'nx')],
  // Container commands (OBJECT ENCODING, XINFO STREAM, ...) are classified by subcommand.
  ['object', classTable('encoding freq idletime refcount help')],
  ['memory', classTable('usage stats doctor malloc-stats help')],
  ['xinfo', classTable('stream groups consumers help')],
  // a second CREATE fails with BUSYGROUP although the first one worked
  ['xgroup', classTable('help', 'createconsumer delconsumer destroy setid', 'create')],
  // a second DELETE fails with "library not found"; LOAD is safe again only with REPLACE
  [
    'function',
    classTable('list dump stats help', 'flush', 'delete restore kill').set('load', replaceFrom(2)),
  ],
  ['script', classTable('exists help', 'load flush')],
  ['config', classTable('get help')],
  ['command', classTable('count docs getkeys getkeysandflags info list help')],
  ['pubsub', classTable('channels numpat numsub shardchannels shardnumsub help')],
  // setinfo: Redis 7.2
  ['client', classTable('id info getname list help', 'setname setinfo')],
];

const TABLE = classTable(READ_COMMANDS, IDEMPOTENT_COMMANDS);
for (const [names, entry] of BY_ARGUMENTS) for (const name of words(names)) TABLE.set(name, entry);

/** The lower-case command name (first element), or `''` when there is none. */
export function commandName(command: readonly unknown[]): string {
  const name = command[0];
  return typeof name === 'string' ? name.toLowerCase() : '';
}

/** Classifies one command (`[name, ...args]`); unknown commands are non-idempotent writes. */
export function classifyCommand(command: readonly unknown[]): SafetyClass {
  return classifyIn(TABLE, 0, command);
}

/** Strictest class first wins; `read` only if every command is a read. */
export function stricterClass(a: SafetyClass, b: SafetyClass): SafetyClass {
  if (a === NON_IDEMPOTENT || b === NON_IDEMPOTENT) return NON_IDEMPOTENT;
  if (a === IDEMPOTENT || b === IDEMPOTENT) return IDEMPOTENT;
  return READ;
}

/**
 * Idempotent writes computed from other keys (the *STORE family, BITOP, COPY, SORT and
 * GEORADIUS with STORE, PFMERGE): run again after another write of the same batch changed their
 * sources, they store something else. `MULTI ZUNIONSTORE archive 1 pending; DEL pending`
 * retried would empty the archive.
 */
const DERIVED = new Set(
  words(
    'sinterstore sunionstore sdiffstore zunionstore zinterstore zdiffstore zrangestore ' +
      'geosearchstore bitop copy sort georadius georadiusbymember pfmerge',
  ),
);

/**
 * Idempotent writes addressing elements by position (LSET, LTRIM, ZREMRANGEBYRANK, LREM; JSON
 * paths may index arrays): run again after another write to the same key moved its elements,
 * they hit others. `MULTI LSET l 0 x; LTRIM l -5 -1` retried overwrites an element it kept.
 */
const POSITIONAL = new Set(words('lset ltrim zremrangebyrank lrem json.set json.del json.forget'));

/** Reads of the whole keyspace: any later write may change what they answer. */
const KEYSPACE_READS = words('keys scan dbsize randomkey');
/** Writes of a key's expiry only, and the reads that see it: only those two conflict. */
const TTL_WRITES = words('expire pexpire expireat pexpireat persist');
const TTL_READS = words('ttl pttl expiretime pexpiretime');
/** Writes whose keys are all their arguments (or may be: DERIVED ones name sources too). */
const MULTI_KEY_WRITES = words('del unlink mset');

/**
 * A pipeline or transaction is retried as a unit, so it is as strict as its strictest command,
 * and stricter when its commands do not compose: a DERIVED write next to any other write, a
 * POSITIONAL one next to another write to the same key, or a write of a key an earlier read
 * looked at, makes it non-idempotent. `kind` is part of the signature because a transaction is
 * the same unit of retry: a `multi-exec` of reads is still a read.
 */
export function classifyBatch(
  commands: readonly (readonly unknown[])[],
  _kind: 'pipeline' | 'multi-exec',
): SafetyClass {
  let writes = 0;
  let derived = false;
  // Keys written, and keys written by a POSITIONAL command; '' for a key that is not a string.
  const written: unknown[] = [];
  const positional: unknown[] = [];
  // What the reads so far looked at: every argument (a read's keys are not told apart from its
  // other arguments, which only errs towards non-idempotent), those of expiry reads, or all.
  let looked: Set<string> | undefined;
  let lookedAtExpiry: Set<string> | undefined;
  let keyspace = false;
  for (const command of commands) {
    const safety = Array.isArray(command) ? classifyCommand(command) : NON_IDEMPOTENT;
    if (safety === NON_IDEMPOTENT) return NON_IDEMPOTENT;
    const name = commandName(command);
    if (safety === READ) {
      if (KEYSPACE_READS.includes(name)) keyspace = true;
      looked ??= new Set();
      if (TTL_READS.includes(name)) lookedAtExpiry ??= new Set();
      const expiry = TTL_READS.includes(name) ? lookedAtExpiry : undefined;
      for (let i = 1; i < command.length; i++) {
        looked.add(String(command[i]));
        expiry?.add(String(command[i]));
      }
      continue;
    }
    // A read then a write of what it read (MULTI LRANGE q 0 -1; DEL q: GETDEL for a list):
    // retried where the first run's write has replicated, the read answers something else.
    if (keyspace) return NON_IDEMPOTENT;
    const seen = TTL_WRITES.includes(name) ? lookedAtExpiry : looked;
    const keys = DERIVED.has(name) || MULTI_KEY_WRITES.includes(name) ? command.length : 2;
    for (let i = 1; seen && i < keys; i++) if (seen.has(String(command[i]))) return NON_IDEMPOTENT;
    writes += 1;
    if (DERIVED.has(name)) derived = true;
    if (POSITIONAL.has(name)) positional.push(String(command[1]));
    written.push(String(command[1]));
  }
  if (derived && writes > 1) return NON_IDEMPOTENT;
  for (const key of positional) {
    if (written.filter((k) => k === key).length > 1) return NON_IDEMPOTENT;
  }
  return writes > 0 ? IDEMPOTENT : READ;
}

/**
 * Every name the table knows, with container subcommands as `container|sub` (the form
 * COMMAND INFO uses), and the non-idempotent commands listed in command-names.ts. For tests
 * and documentation; not used on the request path, so bundlers drop it and that list.
 */
export function knownCommandNames(): string[] {
  const names: string[] = [];
  for (const [name, entry] of TABLE) {
    if (entry instanceof Map) for (const sub of entry.keys()) names.push(`${name}|${sub}`);
    else names.push(name);
  }
  return [...names, ...words(NON_IDEMPOTENT_COMMANDS)];
}
