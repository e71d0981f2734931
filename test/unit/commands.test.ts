import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyBatch,
  classifyCommand,
  commandName,
  knownCommandNames,
  type SafetyClass,
  stricterClass,
} from '../../src/transport/commands.js';

const READ: SafetyClass = 'read';
const IDEM: SafetyClass = 'idempotent-write';
const NON: SafetyClass = 'non-idempotent-write';

function cases(list: [unknown[], SafetyClass][]) {
  return list.map(([command, expected]) => ({ command, expected, label: JSON.stringify(command) }));
}

describe('commandName', () => {
  it('lower-cases the first element', () => {
    expect(commandName(['GET', 'k'])).toBe('get');
    expect(commandName(['json.GET', 'k'])).toBe('json.get');
  });
  it('is empty for a missing or non-string name', () => {
    expect(commandName([])).toBe('');
    expect(commandName([42])).toBe('');
    expect(commandName([null, 'x'])).toBe('');
  });
});

describe('classifyCommand by name', () => {
  it.each(
    cases([
      [['get', 'k'], READ],
      [['mget', 'a', 'b'], READ],
      [['hgetall', 'h'], READ],
      [['exists', 'k'], READ],
      [['ttl', 'k'], READ],
      [['scan', 0, 'match', 'x*'], READ],
      [['zrange', 'z', 0, -1], READ],
      [['xrange', 's', '-', '+'], READ],
      [['xread', 'count', 1, 'streams', 's', '0'], READ],
      [['eval_ro', 'return 1', 0], READ],
      [['evalsha_ro', 'abc', 0], READ],
      [['fcall_ro', 'f', 0], READ],
      [['ping'], READ],
      [['echo', 'x'], READ],
      [['time'], READ],
      [['dbsize'], READ],
      [['httl', 'h', 'FIELDS', 1, 'f'], READ],
      [['json.get', 'j', '$'], READ],
      [['subscribe', 'ch'], READ],
      [['del', 'a', 'b'], IDEM],
      [['unlink', 'a'], IDEM],
      [['hset', 'h', 'f', 'v'], IDEM],
      [['hmset', 'h', 'f', 'v'], IDEM],
      [['hdel', 'h', 'f'], IDEM],
      [['sadd', 's', 'm'], IDEM],
      [['srem', 's', 'm'], IDEM],
      [['zrem', 'z', 'm'], IDEM],
      [['mset', 'a', 1, 'b', 2], IDEM],
      [['persist', 'k'], IDEM],
      [['setex', 'k', 10, 'v'], IDEM],
      [['psetex', 'k', 10, 'v'], IDEM],
      [['setrange', 'k', 0, 'v'], IDEM],
      // SETBIT answers the bit it replaced: retried, it would answer the caller's own bit (as
      // GETSET would its own value)
      [['setbit', 'k', 7, 1], NON],
      [['getex', 'k', 'ex', 10], IDEM],
      [['getset', 'k', 'v'], NON],
      [['pfadd', 'h', 'a'], IDEM],
      [['pfmerge', 'd', 'd', 's'], IDEM],
      [['geoadd', 'g', 13.3, 52.5, 'berlin'], IDEM],
      [['lset', 'l', 0, 'v'], IDEM],
      [['xdel', 's', '1-1'], IDEM],
      [['xack', 's', 'g', '1-1'], IDEM],
      [['xtrim', 's', 'MAXLEN', '~', 100], IDEM],
      [['zremrangebyscore', 'z', 0, 10], IDEM],
      [['zremrangebylex', 'z', '[a', '[c'], IDEM],
      [['hpersist', 'h', 'FIELDS', 1, 'f'], IDEM],
      [['hgetex', 'h', 'EX', 10, 'FIELDS', 1, 'f'], IDEM],
      [['json.del', 'j', '$.a'], IDEM],
      [['json.del', 'j'], IDEM],
      [['json.forget', 'j', '$.a[?(@.id==1)]'], IDEM],
      // an array element by index: a second run deletes the next one
      [['json.del', 'j', '$.a[0]'], NON],
      [['json.forget', 'j', '$.items[ -1 ]'], NON],
      [['json.del', 'j', '$.a[:2]'], NON],
      [['json.del', 'j', '$.a[::2]'], NON],
      [['json.del', 'j', '$.a[*]'], IDEM],
      [['json.merge', 'j', '$', '{"a":1}'], IDEM],
      [['incr', 'k'], NON],
      [['incrby', 'k', 2], NON],
      [['incrbyfloat', 'k', 0.5], NON],
      [['decr', 'k'], NON],
      [['decrby', 'k', 2], NON],
      [['hincrby', 'h', 'f', 1], NON],
      [['hincrbyfloat', 'h', 'f', 1.5], NON],
      [['zincrby', 'z', 1, 'm'], NON],
      [['lpush', 'l', 'v'], NON],
      [['rpush', 'l', 'v'], NON],
      [['lpushx', 'l', 'v'], NON],
      [['rpushx', 'l', 'v'], NON],
      [['lpop', 'l'], NON],
      [['rpop', 'l'], NON],
      [['spop', 's'], NON],
      [['zpopmin', 'z'], NON],
      [['zpopmax', 'z'], NON],
      [['lmove', 'a', 'b', 'left', 'right'], NON],
      [['rpoplpush', 'a', 'b'], NON],
      [['smove', 'a', 'b', 'm'], NON],
      [['append', 'k', 'v'], NON],
      [['getdel', 'k'], NON],
      [['rename', 'a', 'b'], NON],
      [['renamenx', 'a', 'b'], NON],
      [['setnx', 'k', 'v'], NON],
      [['msetnx', 'a', 1], NON],
      [['hsetnx', 'h', 'f', 'v'], NON],
      [['hgetdel', 'h', 'FIELDS', 1, 'f'], NON],
      [['publish', 'ch', 'msg'], NON],
      [['eval', 'return 1', 0], NON],
      [['evalsha', 'abc', 0], NON],
      [['fcall', 'f', 0], NON],
      [['xclaim', 's', 'g', 'c', 0, '1-1'], NON],
      [['xautoclaim', 's', 'g', 'c', 0, '0'], NON],
      [['xreadgroup', 'group', 'g', 'c', 'streams', 's', '>'], NON],
      [['linsert', 'l', 'before', 'a', 'b'], NON],
      [['json.numincrby', 'j', '$.n', 1], NON],
      [['json.arrappend', 'j', '$', 1], NON],
      [['json.arrtrim', 'j', '$', 1, 2], NON],
    ]),
  )('$label → $expected', ({ command, expected }) => {
    expect(classifyCommand(command)).toBe(expected);
  });

  it('treats unknown commands, empty commands and non-string names as non-idempotent writes', () => {
    expect(classifyCommand(['frobnicate', 'k'])).toBe(NON);
    expect(classifyCommand(['vector.add', 'idx', 'id'])).toBe(NON);
    expect(classifyCommand(['arset', 'k', 0, 'v'])).toBe(NON);
    expect(classifyCommand(['multi'])).toBe(NON);
    expect(classifyCommand([])).toBe(NON);
    expect(classifyCommand([7, 'k'])).toBe(NON);
    // Object.prototype names must not leak through the lookup
    expect(classifyCommand(['constructor'])).toBe(NON);
    expect(classifyCommand(['__proto__'])).toBe(NON);
    expect(classifyCommand(['toString'])).toBe(NON);
  });

  it('is case-insensitive for names and option tokens', () => {
    expect(classifyCommand(['GET', 'k'])).toBe(READ);
    expect(classifyCommand(['Incr', 'k'])).toBe(NON);
    expect(classifyCommand(['SET', 'k', 'v', 'NX'])).toBe(NON);
    expect(classifyCommand(['ZADD', 'z', 'Incr', 1, 'm'])).toBe(NON);
    expect(classifyCommand(['XADD', 's', '*', 'f', 'v'])).toBe(NON);
    expect(classifyCommand(['JSON.SET', 'j', '$', '{}', 'NX'])).toBe(NON);
    expect(classifyCommand(['OBJECT', 'ENCODING', 'k'])).toBe(READ);
  });
});

describe('classifyCommand argument rules', () => {
  it.each(
    cases([
      // SET: NX and GET answer differently on a second run; XX / expiry options do not
      [['set', 'k', 'v'], IDEM],
      [['set', 'k', 'v', 'ex', 10], IDEM],
      [['set', 'k', 'v', 'xx'], IDEM],
      [['set', 'k', 'v', 'get'], NON],
      [['set', 'k', 'v', 'xx', 'GET'], NON],
      [['set', 'k', 'v', 'keepTtl'], IDEM],
      [['set', 'k', 'v', 'nx'], NON],
      [['set', 'k', 'v', 'nx', 'get'], NON],
      [['set', 'k', 'v', 'nx', 'px', 100], NON],
      // Redis 8.4 compare-and-set: a retry finds the first run's value and reports no swap
      [['set', 'k', 'v', 'IFEQ', 'old'], NON],
      [['set', 'k', 'v', 'ifne', 'v'], NON],
      [['set', 'k', 'v', 'ifdeq', 'abc123', 'ex', 10], NON],
      [['set', 'k', 'v', 'ifdne', 'abc123'], NON],
      // the value itself is never an option
      [['set', 'k', 'nx'], IDEM],
      [['set', 'nx', 'nx'], IDEM],
      // ZADD: INCR only among the leading options, not in members
      [['zadd', 'z', 1, 'm'], IDEM],
      [['zadd', 'z', 'nx', 1, 'm'], IDEM],
      [['zadd', 'z', 'xx', 'ch', 'gt', 1, 'm'], IDEM],
      [['zadd', 'z', 'incr', 1, 'm'], NON],
      [['zadd', 'z', 'xx', 'ch', 'incr', 1, 'm'], NON],
      [['zadd', 'z', 1, 'incr'], IDEM],
      // XADD: `*` and `<ms>-*` add an entry again; an explicit id fails where the first run
      // succeeded (ID equal or smaller): non-idempotent in every form
      [['xadd', 's', '*', 'f', 'v'], NON],
      [['xadd', 's', '1526919030474-*', 'f', 'v'], NON],
      [['xadd', 's', '1-1', 'f', 'v'], NON],
      [['xadd', 's', 1526919030474, 'f', 'v'], NON],
      [['XADD', 's', 'NOMKSTREAM', '5-1', 'f', 'v'], NON],
      [['XADD', 's', 'MAXLEN', '~', 1000, '5-1', 'f', '*'], NON],
      [['xadd', 's'], NON],
      // EXPIRE family: NX/GT/LT make the reply a decision
      [['expire', 'k', 10], IDEM],
      [['expire', 'k', 10, 'xx'], IDEM],
      [['expire', 'k', 10, 'nx'], NON],
      [['expire', 'k', 10, 'GT'], NON],
      [['pexpire', 'k', 10, 'lt'], NON],
      [['expireat', 'k', 1e10], IDEM],
      [['pexpireat', 'k', 1e13, 'nx'], NON],
      [['hexpire', 'h', 10, 'FIELDS', 1, 'f'], IDEM],
      [['hexpire', 'h', 10, 'NX', 'FIELDS', 1, 'f'], NON],
      [['hpexpireat', 'h', 1e13, 'XX', 'FIELDS', 1, 'f'], IDEM],
      // HSETEX: FNX is a conditional write
      [['hsetex', 'h', 'EX', 10, 'FIELDS', 1, 'f', 'v'], IDEM],
      [['hsetex', 'h', 'FXX', 'FIELDS', 1, 'f', 'v'], IDEM],
      [['hsetex', 'h', 'FNX', 'EX', 10, 'FIELDS', 1, 'f', 'v'], NON],
      [['hsetex', 'h', 'FIELDS', 1, 'FNX', 'v'], IDEM],
      // COPY / RESTORE without REPLACE fail or answer 0 on a second run
      [['COPY', 'a', 'b'], NON],
      [['COPY', 'a', 'b', 'REPLACE'], IDEM],
      [['restore', 'k', 0, 'payload'], NON],
      [['restore', 'k', 0, 'payload', 'REPLACE', 'ABSTTL'], IDEM],
      // JSON.SET NX
      [['JSON.SET', 'j', '$', '{}'], IDEM],
      [['JSON.SET', 'j', '$', '{}', 'XX'], IDEM],
      [['JSON.SET', 'j', '$', '{}', 'NX'], NON],
      // BITFIELD: INCRBY adds again; SET answers the value it replaced (like SETBIT), so a
      // retry would answer the caller's own; GET alone only reads
      [['bitfield', 'b', 'SET', 'u8', 0, 255], NON],
      [['bitfield', 'b', 'get', 'u8', 0, 'set', 'u8', 8, 1], NON],
      [['bitfield', 'b', 'GET', 'u8', 0], READ],
      [['bitfield', 'b', 'GET', 'u8', 0, 'OVERFLOW', 'WRAP', 'GET', 'i4', '#1'], READ],
      [['bitfield', 'b'], READ],
      [['bitfield', 'b', 'OVERFLOW', 'SAT', 'INCRBY', 'u8', 0, 1], NON],
      [['bitfield_ro', 'b', 'GET', 'u8', 0], READ],
      // LTRIM: only prefixes and suffixes are stable under a second run
      [['ltrim', 'l', 0, 99], IDEM],
      [['ltrim', 'l', '0', '99'], IDEM],
      [['ltrim', 'l', -100, -1], IDEM],
      [['ltrim', 'l', 0, -1], IDEM],
      [['ltrim', 'l', 1, -1], NON],
      [['ltrim', 'l', 0, -2], NON],
      [['ltrim', 'l', 2, 5], NON],
      [['ltrim', 'l', 'x', 5], NON],
      // ZREMRANGEBYRANK: removing a tail is stable, removing the lowest ranks is not
      [['zremrangebyrank', 'z', 10, -1], IDEM],
      [['zremrangebyrank', 'z', 0, -11], IDEM],
      [['zremrangebyrank', 'z', 0, 0], NON],
      [['zremrangebyrank', 'z', -3, -1], NON],
      // LREM: count 0 removes all occurrences
      [['lrem', 'l', 0, 'x'], IDEM],
      [['lrem', 'l', 1, 'x'], NON],
      [['lrem', 'l', -2, 'x'], NON],
      // SORT and GEORADIUS read unless they STORE
      [['sort', 'l'], READ],
      [['sort', 'l', 'BY', 'w_*', 'LIMIT', 0, 10, 'GET', '#', 'DESC', 'ALPHA'], READ],
      [['sort', 'l', 'BY', 'store', 'GET', 'store'], READ],
      [['sort', 'l', 'STORE', 'dst'], IDEM],
      [['sort', 'l', 'LIMIT', 0, 5, 'STORE', 'l'], NON],
      [['sort', 'l', 'WEIRD'], NON],
      [['sort_ro', 'l'], READ],
      [['georadius', 'g', 15, 37, 200, 'km', 'WITHDIST'], READ],
      [['georadius', 'g', 15, 37, 200, 'km', 'STORE', 'dst'], IDEM],
      [['georadius', 'g', 15, 37, 200, 'km', 'STOREDIST', 'g'], NON],
      [['georadiusbymember', 'g', 'm', 200, 'km'], READ],
      [['georadiusbymember', 'g', 'm', 200, 'km', 'STORE', 'dst'], IDEM],
      // store commands that read their own destination
      [['sinterstore', 'd', 'a', 'b'], IDEM],
      [['sunionstore', 'd', 'a', 'd'], NON],
      [['sdiffstore', 'd', 'a', 'd'], NON],
      [['zunionstore', 'd', 2, 'a', 'b'], IDEM],
      [['zunionstore', 'd', 2, 'd', 'b'], NON],
      [['zunionstore', 'd', 2, 'a', 'b', 'WEIGHTS', 1, 2], IDEM],
      [['zinterstore', 'd', 1, 'a', 'AGGREGATE', 'd'], IDEM],
      [['zinterstore', 'd', 'x', 'a'], NON],
      [['zdiffstore', 'd', 2, 'a', 'd'], NON],
      [['zrangestore', 'd', 's', 0, -1], IDEM],
      [['zrangestore', '0', 's', 0, -1], IDEM],
      [['zrangestore', 'd', 'd', 0, 9], NON],
      [['geosearchstore', 'd', 'g', 'FROMMEMBER', 'm', 'BYRADIUS', 1, 'km'], IDEM],
      [['geosearchstore', 'g', 'g', 'FROMMEMBER', 'm', 'BYRADIUS', 1, 'km'], NON],
      [['bitop', 'AND', 'd', 'a', 'b'], IDEM],
      [['bitop', 'XOR', 'd', 'd', 'b'], NON],
      [['bitop', 'NOT', 'd', 'd'], NON],
    ]),
  )('$label → $expected', ({ command, expected }) => {
    expect(classifyCommand(command)).toBe(expected);
  });
});

describe('classifyCommand subcommands', () => {
  it.each(
    cases([
      [['object', 'encoding', 'k'], READ],
      [['OBJECT', 'FREQ', 'k'], READ],
      [['memory', 'usage', 'k'], READ],
      [['memory', 'purge'], NON],
      [['xinfo', 'stream', 's'], READ],
      [['xinfo', 'groups', 's'], READ],
      [['xgroup', 'create', 's', 'g', '$'], NON],
      [['xgroup', 'createconsumer', 's', 'g', 'c'], IDEM],
      [['xgroup', 'destroy', 's', 'g'], IDEM],
      [['xgroup', 'setid', 's', 'g', '0'], IDEM],
      [['function', 'list'], READ],
      [['function', 'load', 'code'], NON],
      [['function', 'load', 'REPLACE', 'code'], IDEM],
      [['function', 'delete', 'lib'], NON],
      [['function', 'flush'], IDEM],
      [['script', 'load', 'return 1'], IDEM],
      [['script', 'exists', 'abc'], READ],
      [['script', 'kill'], NON],
      [['config', 'get', 'maxmemory'], READ],
      [['config', 'set', 'maxmemory', '1'], NON],
      [['client', 'setinfo', 'lib-name', 'x'], IDEM],
      [['client', 'kill', 'id', 1], NON],
      [['pubsub', 'channels'], READ],
      [['command', 'count'], READ],
      [['object'], NON],
      [['object', 5], NON],
      [['object', 'nope'], NON],
    ]),
  )('$label → $expected', ({ command, expected }) => {
    expect(classifyCommand(command)).toBe(expected);
  });
});

describe('classifyBatch', () => {
  it('is read only when every command is a read', () => {
    expect(classifyBatch([['get', 'a'], ['hgetall', 'h'], ['ping']], 'pipeline')).toBe(READ);
    expect(
      classifyBatch(
        [
          ['get', 'a'],
          ['ttl', 'a'],
        ],
        'multi-exec',
      ),
    ).toBe(READ);
  });

  it('takes the strictest class of its commands', () => {
    expect(
      classifyBatch(
        [
          ['get', 'a'],
          ['set', 'b', 1],
        ],
        'pipeline',
      ),
    ).toBe(IDEM);
    expect(
      classifyBatch(
        [
          ['set', 'a', 1],
          ['incr', 'b'],
          ['get', 'a'],
        ],
        'pipeline',
      ),
    ).toBe(NON);
    expect(
      classifyBatch(
        [
          ['set', 'a', 1],
          ['expire', 'a', 10],
        ],
        'multi-exec',
      ),
    ).toBe(IDEM);
    expect(
      classifyBatch(
        [
          ['get', 'a'],
          ['xadd', 's', '*', 'f', 'v'],
        ],
        'multi-exec',
      ),
    ).toBe(NON);
    expect(classifyBatch([['set', 'lock', 'me', 'nx', 'px', 1000]], 'multi-exec')).toBe(NON);
  });

  it('is non-idempotent when a write computed from other keys shares the batch with another write', () => {
    // MULTI ZUNIONSTORE archive 1 pending; DEL pending: retried after it ran, it empties archive.
    const move = [
      ['zunionstore', 'archive', 1, 'pending'],
      ['del', 'pending'],
    ];
    expect(classifyBatch(move, 'multi-exec')).toBe(NON);
    for (const derived of [
      ['sunionstore', 'd', 's1', 's2'],
      ['bitop', 'or', 'd', 'a', 'b'],
      ['copy', 'a', 'b', 'replace'],
      ['sort', 'l', 'store', 'd'],
      ['georadius', 'g', 0, 0, 10, 'km', 'store', 'd'],
      ['pfmerge', 'd', 's'],
    ]) {
      expect(classifyCommand(derived)).toBe(IDEM);
      expect(classifyBatch([derived, ['set', 'x', 1]], 'pipeline')).toBe(NON);
      expect(classifyBatch([['set', 'x', 1], derived], 'multi-exec')).toBe(NON);
      // alone, or with reads only, it stays what it is
      expect(classifyBatch([derived, ['get', 'x']], 'multi-exec')).toBe(IDEM);
    }
    // elements addressed by position: LSET after LTRIM (or the other way) hits another one
    const trimAndSet = [
      ['lset', 'l', 0, 'x'],
      ['ltrim', 'l', -5, -1],
    ];
    expect(classifyCommand(trimAndSet[0]!)).toBe(IDEM);
    expect(classifyCommand(trimAndSet[1]!)).toBe(IDEM);
    expect(classifyBatch(trimAndSet, 'multi-exec')).toBe(NON);
    expect(
      classifyBatch(
        [
          ['lset', 'l', 0, 'x'],
          ['get', 'k'],
        ],
        'pipeline',
      ),
    ).toBe(IDEM);
    // ... but only next to another write to the same key
    const trimAndExpire = (key: string) => [
      ['ltrim', 'l', 0, 99],
      ['expire', key, 60],
    ];
    expect(classifyBatch(trimAndExpire('other'), 'multi-exec')).toBe(IDEM);
    expect(classifyBatch(trimAndExpire('l'), 'multi-exec')).toBe(NON);
    // JSON paths index arrays too
    const setThenFilter = [
      ['json.set', 'j', '$.a[0]', '"x"'],
      ['json.del', 'j', '$.a[?(@=="x")]'],
    ];
    expect(classifyBatch(setThenFilter, 'multi-exec')).toBe(NON);
    // SORT and GEORADIUS without STORE are reads: no effect on the batch
    expect(
      classifyBatch(
        [
          ['sort', 'l'],
          ['set', 'x', 1],
        ],
        'pipeline',
      ),
    ).toBe(IDEM);
  });

  it('is non-idempotent when a write follows a read that shares an argument with it', () => {
    // Draining a queue in a transaction (GETDEL for a list): retried on a member where the
    // first run's DEL has replicated, LRANGE answers [] and the jobs are lost.
    const drain = [
      ['lrange', 'q', 0, -1],
      ['del', 'q'],
    ];
    expect(classifyCommand(drain[1]!)).toBe(IDEM);
    expect(classifyBatch(drain, 'multi-exec')).toBe(NON);
    expect(classifyBatch(drain, 'pipeline')).toBe(NON);
    // check-then-set: a retry would see its own lock and take it for someone else's
    const lock = [
      ['exists', 'lock'],
      ['set', 'lock', 'me'],
    ];
    expect(classifyCommand(lock[1]!)).toBe(IDEM);
    expect(classifyBatch(lock, 'multi-exec')).toBe(NON);
    expect(
      classifyBatch(
        [
          ['mget', 'a', 'b'],
          ['del', 'b'],
        ],
        'pipeline',
      ),
    ).toBe(NON);
    // any argument of the write counts, and any read before it, not only the one just before
    expect(
      classifyBatch(
        [
          ['mget', 'a', 'b'],
          ['get', 'c'],
          ['del', 'b'],
        ],
        'multi-exec',
      ),
    ).toBe(NON);
    expect(
      classifyBatch(
        [
          ['hget', 'h', 'f'],
          ['hset', 'h', 'f', 'v'],
        ],
        'pipeline',
      ),
    ).toBe(NON);
    // names are compared as strings
    expect(
      classifyBatch(
        [
          ['GET', 7],
          ['SET', '7', 'x'],
        ],
        'pipeline',
      ),
    ).toBe(NON);
  });

  it('compares what reads looked at with the keys a write writes, not with its values', () => {
    const batch = (...commands: unknown[][]) => classifyBatch(commands, 'pipeline');
    // a write's values and fields are not keys: a read's numbers or fields do not match them
    expect(batch(['zrange', 'board', 0, -1], ['set', 'visits', 0])).toBe(IDEM);
    expect(batch(['hget', 'user:1', 'name'], ['hset', 'user:2', 'name', 'bob'])).toBe(IDEM);
    // an expiry write conflicts only with expiry reads: a sliding session re-runs the same
    expect(batch(['get', 'session:1'], ['expire', 'session:1', 3600])).toBe(IDEM);
    expect(batch(['ttl', 'session:1'], ['expire', 'session:1', 3600])).toBe(NON);
    // ...and any write of a key with an expiry read before it (SET resets the expiry)
    expect(batch(['pttl', 'k'], ['set', 'k', 'v'])).toBe(NON);
    // a multi-key or derived write is checked on all its arguments
    expect(batch(['get', 'b'], ['del', 'a', 'b'])).toBe(NON);
    expect(batch(['get', 'dst'], ['sunionstore', 'dst', 'src'])).toBe(NON);
    // (its sources too: where a derived write's destination sits varies, BITOP, SORT ... STORE)
    expect(batch(['get', 'src'], ['sunionstore', 'dst', 'src'])).toBe(NON);
    expect(batch(['get', 'other'], ['sunionstore', 'dst', 'src'])).toBe(IDEM);
    // a read of the whole keyspace sees every later write
    expect(batch(['keys', 'job:*'], ['del', 'job:1'])).toBe(NON);
    expect(batch(['dbsize'], ['set', 'new', 1])).toBe(NON);
    expect(batch(['set', 'new', 1], ['dbsize'])).toBe(IDEM);
  });

  it('keeps the class of its writes for reads of other keys, and for reads after the write', () => {
    // reads of other keys: the write's class
    expect(
      classifyBatch(
        [
          ['get', 'a'],
          ['set', 'b', 1],
        ],
        'multi-exec',
      ),
    ).toBe(IDEM);
    expect(
      classifyBatch(
        [
          ['get', 'a'],
          ['set', 'b', 1, 'nx'],
        ],
        'multi-exec',
      ),
    ).toBe(NON);
    // write then read: the retry reads what the batch itself wrote, the same answer
    expect(
      classifyBatch(
        [
          ['set', 'k', 'v'],
          ['get', 'k'],
        ],
        'multi-exec',
      ),
    ).toBe(IDEM);
    expect(
      classifyBatch(
        [
          ['set', 'k', 'v'],
          ['get', 'k'],
          ['set', 'j', 'w'],
        ],
        'pipeline',
      ),
    ).toBe(IDEM);
    // reads only, with shared keys, stay reads
    expect(
      classifyBatch(
        [
          ['get', 'k'],
          ['ttl', 'k'],
        ],
        'pipeline',
      ),
    ).toBe(READ);
  });

  it('treats an empty batch as a read and a malformed entry as non-idempotent', () => {
    expect(classifyBatch([], 'pipeline')).toBe(READ);
    expect(classifyBatch([['get', 'a'], 'incr' as unknown as unknown[]], 'pipeline')).toBe(NON);
    expect(classifyBatch([['get', 'a'], []], 'pipeline')).toBe(NON);
  });

  it('equals folding stricterClass over its commands when no write shares an argument with an earlier read (property)', () => {
    // The reads and the writes share no argument: that case has its own rule (tested above).
    const pool: unknown[][] = [
      ['get', 'a'],
      ['ping'],
      ['set', 'b', 1],
      ['del', 'b'],
      ['set', 'a', 1, 'nx'],
      ['incr', 'a'],
      ['zadd', 'z', 'incr', 1, 'm'],
      ['xadd', 's', '*', 'f', 'v'],
      ['unknowncmd'],
      ['OBJECT', 'ENCODING', 'k'],
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pool), { maxLength: 12 }),
        fc.constantFrom('pipeline' as const, 'multi-exec' as const),
        (commands, kind) => {
          const expected = commands.reduce<SafetyClass>(
            (acc, command) => stricterClass(acc, classifyCommand(command)),
            READ,
          );
          expect(classifyBatch(commands, kind)).toBe(expected);
        },
      ),
    );
  });

  it('is non-idempotent whenever a read of a key comes before a write of it (property)', () => {
    const pool: unknown[][] = [['get', 'a'], ['ping'], ['set', 'c', 1], ['del', 'c'], ['ttl', 'c']];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pool), { maxLength: 5 }),
        fc.array(fc.constantFrom(...pool), { maxLength: 5 }),
        fc.array(fc.constantFrom(...pool), { maxLength: 5 }),
        fc.constantFrom('pipeline' as const, 'multi-exec' as const),
        (before, between, after, kind) => {
          const batch = [...before, ['lrange', 'q', 0, -1], ...between, ['del', 'q'], ...after];
          expect(classifyBatch(batch, kind)).toBe(NON);
        },
      ),
    );
  });
});

describe('stricterClass', () => {
  it('orders read < idempotent-write < non-idempotent-write', () => {
    expect(stricterClass(READ, READ)).toBe(READ);
    expect(stricterClass(READ, IDEM)).toBe(IDEM);
    expect(stricterClass(IDEM, READ)).toBe(IDEM);
    expect(stricterClass(IDEM, NON)).toBe(NON);
    expect(stricterClass(NON, READ)).toBe(NON);
  });
});

describe('classifyCommand robustness', () => {
  it('never throws and always returns a class, whatever the arguments (property)', () => {
    const names = knownCommandNames().map((name) => name.split('|'));
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.array(fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null)), {
          maxLength: 8,
        }),
        fc.boolean(),
        (name, args, upper) => {
          const command = [...name.map((n) => (upper ? n.toUpperCase() : n)), ...args];
          expect([READ, IDEM, NON]).toContain(classifyCommand(command));
        },
      ),
    );
  });

  it('classifies a command in well under a microsecond on average (hot path)', () => {
    const commands: unknown[][] = [
      ['get', 'user:1'],
      ['set', 'user:1', 'v', 'ex', 60],
      ['zadd', 'z', 'xx', 'ch', 1, 'm'],
      ['XADD', 's', 'MAXLEN', '~', 1000, '*', 'f', 'v'],
      ['hgetall', 'h'],
      ['incr', 'n'],
    ];
    const rounds = 50_000;
    let sink = 0;
    for (let i = 0; i < 5_000; i++) sink += classifyCommand(commands[i % 6]!).length;
    const started = performance.now();
    for (let i = 0; i < rounds; i++) sink += classifyCommand(commands[i % 6]!).length;
    const perCallUs = ((performance.now() - started) * 1000) / rounds;
    expect(sink).toBeGreaterThan(0);
    // Generous bound so a loaded CI machine does not flake; typical is ~0.05 µs.
    expect(perCallUs).toBeLessThan(2);
  });
});
