/**
 * The commands decided to be `non-idempotent-write` (see commands.ts for what that means).
 *
 * Listing them changes nothing at runtime: every command the table in commands.ts does not know
 * is already a non-idempotent write. The list records the decision for each write command that
 * Redis flags, and `knownCommandNames()` includes it so the test against a real redis-server
 * sees that no command fell to the default by accident. It lives apart from the table so that
 * client bundles, which only classify, do not ship it: only `knownCommandNames()` reads it.
 *
 * A name belongs here or in the table, never both (the table would win, and the name would be
 * listed twice). Space-separated like the table's lists.
 */
export const NON_IDEMPOTENT_COMMANDS =
  // counters, appends and conditional sets: a second run changes the data again or answers "no"
  'incr incrby incrbyfloat decr decrby append getdel setnx msetnx ' +
  // GETSET and SETBIT answer the value they replaced: a retry would answer the caller's own
  'getset setbit ' +
  'hsetnx hincrby hincrbyfloat hgetdel ' +
  // pushes, inserts, pops and moves
  'lpush rpush lpushx rpushx linsert lpop rpop lmpop lmove rpoplpush ' +
  'blpop brpop blmpop blmove brpoplpush spop smove ' +
  'zincrby zpopmin zpopmax zmpop bzpopmin bzpopmax bzmpop ' +
  // keyspace: the second run finds the key gone or taken
  'rename renamenx move swapdb migrate restore-asking pfdebug ' +
  // streams: XADD with * adds an entry again, with an explicit id fails where the first run
  // succeeded; claims and group reads move entries between consumers
  'xadd xclaim xautoclaim xreadgroup ' +
  // scripts may do anything; a publish is delivered again
  'eval evalsha fcall publish spublish ' +
  'json.numincrby json.nummultby json.strappend json.arrappend json.arrinsert json.arrpop ' +
  'json.toggle ' +
  // ARRTRIM re-trims the already trimmed array (indexes shift), unlike a converging trim
  'json.arrtrim';
