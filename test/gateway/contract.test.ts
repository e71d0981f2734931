import { Redis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  post,
  READONLY_TOKEN,
  secretsIn,
  sleep,
  startTestGateway,
  type TestGateway,
  TOKEN,
  waitFor,
} from './helpers.js';
import { RedisProcess } from './redis-process.js';

/**
 * The official `@upstash/redis` client, with its defaults (auto-pipelining, base64 responses,
 * read-your-writes), against the gateway and a real redis-server.
 */
let redisServer: RedisProcess;
let gw: TestGateway;
let redis: Redis;
/** Same client without deserialization: values come back exactly as stored. */
let raw: Redis;
/** Direct RESP connection to the same server, the reference for raw results. */
let direct: IORedis;

beforeAll(async () => {
  redisServer = await RedisProcess.start();
  gw = await startTestGateway(redisServer, { readonlyToken: READONLY_TOKEN });
  redis = new Redis({ url: gw.url, token: TOKEN, enableTelemetry: false });
  raw = new Redis({
    url: gw.url,
    token: TOKEN,
    enableTelemetry: false,
    automaticDeserialization: false,
  });
  direct = new IORedis(redisServer.url);
});

afterAll(async () => {
  direct?.disconnect();
  await gw?.gateway.close();
  await redisServer?.stop();
  expect(secretsIn(gw?.logs ?? [])).toEqual([]);
});

describe('@upstash/redis against the gateway', () => {
  it('strings', async () => {
    expect(await redis.set('s:a', 'hello')).toBe('OK');
    expect(await redis.get('s:a')).toBe('hello');
    expect(await redis.append('s:a', ' world')).toBe(11);
    expect(await redis.strlen('s:a')).toBe(11);
    expect(await redis.getrange('s:a', 0, 4)).toBe('hello');
    expect(await redis.incr('s:n')).toBe(1);
    expect(await redis.incrby('s:n', 41)).toBe(42);
    expect(await redis.incrbyfloat('s:f', 1.5)).toBe(1.5);
    expect(await redis.decr('s:n')).toBe(41);
    expect(await redis.mset({ 's:m1': 'x', 's:m2': 'y' })).toBe('OK');
    expect(await redis.mget('s:m1', 's:m2', 's:missing')).toEqual(['x', 'y', null]);
    expect(await redis.set('s:a', 'nope', { nx: true })).toBeNull();
    expect(await redis.set('s:ex', 'v', { ex: 100 })).toBe('OK');
    expect(await redis.ttl('s:ex')).toBeGreaterThan(90);
    expect(await redis.getdel('s:m1')).toBe('x');
    expect(await redis.set('s:obj', { a: 1, b: [1, 2] })).toBe('OK');
    expect(await redis.get('s:obj')).toEqual({ a: 1, b: [1, 2] });
  });

  it('hashes', async () => {
    expect(await redis.hset('h', { f1: 'v1', f2: 'v2', n: 1 })).toBe(3);
    expect(await redis.hget('h', 'f1')).toBe('v1');
    expect(await redis.hgetall('h')).toEqual({ f1: 'v1', f2: 'v2', n: 1 });
    expect(await redis.hincrby('h', 'n', 5)).toBe(6);
    expect(await redis.hmget('h', 'f1', 'nope')).toEqual({ f1: 'v1', nope: null });
    expect((await redis.hkeys('h')).sort()).toEqual(['f1', 'f2', 'n']);
    expect(await redis.hdel('h', 'f2')).toBe(1);
    expect(await redis.hlen('h')).toBe(2);
    expect(await redis.hexists('h', 'f2')).toBe(0);
  });

  it('lists', async () => {
    expect(await redis.rpush('l', 'a', 'b', 'c')).toBe(3);
    expect(await redis.lpush('l', 'z')).toBe(4);
    expect(await redis.lrange('l', 0, -1)).toEqual(['z', 'a', 'b', 'c']);
    expect(await redis.lindex('l', 1)).toBe('a');
    expect(await redis.lpos('l', 'b')).toBe(2);
    expect(await redis.lset('l', 0, 'y')).toBe('OK');
    expect(await redis.lpop('l')).toBe('y');
    expect(await redis.rpop('l')).toBe('c');
    expect(await redis.llen('l')).toBe(2);
    expect(await redis.ltrim('l', 0, 0)).toBe('OK');
    expect(await redis.lrange('l', 0, -1)).toEqual(['a']);
  });

  it('sets', async () => {
    expect(await redis.sadd('set1', 'a', 'b', 'c')).toBe(3);
    expect(await redis.sadd('set2', 'b', 'c', 'd')).toBe(3);
    expect(await redis.sismember('set1', 'a')).toBe(1);
    expect(await redis.scard('set1')).toBe(3);
    expect((await redis.smembers('set1')).sort()).toEqual(['a', 'b', 'c']);
    expect((await redis.sinter('set1', 'set2')).sort()).toEqual(['b', 'c']);
    expect((await redis.sunion('set1', 'set2')).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(await redis.srem('set1', 'a')).toBe(1);
  });

  it('sorted sets', async () => {
    expect(await redis.zadd('z', { score: 1, member: 'one' }, { score: 2, member: 'two' })).toBe(2);
    expect(await redis.zadd('z', { score: 3.5, member: 'three' })).toBe(1);
    expect(await redis.zscore('z', 'three')).toBe(3.5);
    expect(await redis.zrange('z', 0, -1)).toEqual(['one', 'two', 'three']);
    expect(await redis.zrange('z', 0, -1, { withScores: true })).toEqual([
      'one',
      1,
      'two',
      2,
      'three',
      3.5,
    ]);
    expect(await redis.zrange('z', 2, 4, { byScore: true })).toEqual(['two', 'three']);
    expect(await redis.zincrby('z', 10, 'one')).toBe(11);
    expect(await redis.zrank('z', 'one')).toBe(2);
    expect(await redis.zcard('z')).toBe(3);
    expect(await redis.zrem('z', 'two')).toBe(1);
  });

  it('streams', async () => {
    const id1 = await redis.xadd('st', '*', { field: 'v1' });
    const id2 = await redis.xadd('st', '*', { field: 'v2', n: 2 });
    expect(id1).toMatch(/^\d+-\d+$/);
    expect(await redis.xlen('st')).toBe(2);
    expect(await redis.xrange('st', '-', '+')).toEqual({
      [id1]: { field: 'v1' },
      [id2]: { field: 'v2', n: 2 },
    });
    const read = await redis.xread('st', '0-0');
    expect(JSON.stringify(read)).toContain('v2');
    expect(await redis.xgroup('st', { type: 'CREATE', group: 'g', id: '0' })).toBe('OK');
    const entries = await redis.xreadgroup('g', 'c1', 'st', '>');
    expect(JSON.stringify(entries)).toContain(id1);
    expect(await redis.xack('st', 'g', id1)).toBe(1);
    expect(await redis.xdel('st', id1)).toBe(1);
  });

  it('bitmaps', async () => {
    expect(await redis.setbit('bits', 7, 1)).toBe(0);
    expect(await redis.getbit('bits', 7)).toBe(1);
    expect(await redis.setbit('bits2', 6, 1)).toBe(0);
    expect(await redis.bitcount('bits', 0, -1)).toBe(1);
    expect(await redis.bitpos('bits', 1)).toBe(7);
    expect(await redis.bitop('or', 'bits3', 'bits', 'bits2')).toBe(1);
    expect(await redis.bitcount('bits3', 0, -1)).toBe(2);
  });

  it('HyperLogLog', async () => {
    expect(await redis.pfadd('hll1', 'a', 'b', 'c')).toBe(1);
    expect(await redis.pfadd('hll2', 'c', 'd')).toBe(1);
    expect(await redis.pfcount('hll1')).toBe(3);
    expect(await redis.pfmerge('hll3', 'hll1', 'hll2')).toBe('OK');
    expect(await redis.pfcount('hll3')).toBe(4);
  });

  it('geo', async () => {
    expect(
      await redis.geoadd(
        'geo',
        { longitude: 13.361389, latitude: 38.115556, member: 'Palermo' },
        { longitude: 15.087269, latitude: 37.502669, member: 'Catania' },
      ),
    ).toBe(2);
    const dist = await redis.geodist('geo', 'Palermo', 'Catania', 'KM');
    expect(dist).toBeCloseTo(166.27, 1);
    const [pos] = await redis.geopos('geo', 'Palermo');
    expect(pos?.lng).toBeCloseTo(13.361389, 4);
    const found = await redis.geosearch(
      'geo',
      { type: 'FROMMEMBER', member: 'Palermo' },
      { type: 'BYRADIUS', radius: 200, radiusType: 'KM' },
      'ASC',
    );
    expect(found.map((f) => f.member)).toEqual(['Palermo', 'Catania']);
  });

  it('keys, TTL and type', async () => {
    await redis.set('k:1', 'v');
    expect(await redis.exists('k:1', 'k:nope')).toBe(1);
    expect(await redis.type('k:1')).toBe('string');
    expect(await redis.expire('k:1', 50)).toBe(1);
    expect(await redis.ttl('k:1')).toBeGreaterThan(40);
    expect(await redis.pttl('k:1')).toBeGreaterThan(40_000);
    expect(await redis.persist('k:1')).toBe(1);
    expect(await redis.ttl('k:1')).toBe(-1);
    expect(await redis.rename('k:1', 'k:2')).toBe('OK');
    expect(await redis.keys('k:*')).toEqual(['k:2']);
    expect(await redis.del('k:2', 'k:nope')).toBe(1);
  });

  it('SCAN walks every key', async () => {
    await redis.mset(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`scan:${i}`, i])));
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, { match: 'scan:*', count: 10 });
      for (const key of keys) seen.add(key);
      cursor = String(next);
    } while (cursor !== '0');
    expect(seen.size).toBe(50);
  });

  it('EVAL, EVALSHA and createScript with the NOSCRIPT fallback', async () => {
    expect(await redis.eval('return ARGV[1]', [], ['hi'])).toBe('hi');
    expect(await redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", ['ev'], ['x'])).toBe(
      'OK',
    );
    const sha = await redis.scriptLoad('return {KEYS[1], ARGV[1], 7}');
    expect(await redis.evalsha(sha, ['k'], ['a'])).toEqual(['k', 'a', 7]);
    await expect(redis.evalsha('0'.repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
    // A fresh script is not in the cache: EVALSHA fails with NOSCRIPT, the client falls back.
    const script = redis.createScript<string>(`return 'script-' .. ARGV[1] -- ${Date.now()}`);
    expect(await script.exec([], ['one'])).toBe('script-one');
    expect(await script.exec([], ['two'])).toBe('script-two');
  });

  it('explicit pipelines, including per-command errors', async () => {
    const p = redis.pipeline();
    p.set('p:1', 'a');
    p.incr('p:n');
    p.get('p:1');
    expect(await p.exec()).toEqual(['OK', 1, 'a']);

    const failing = redis.pipeline();
    failing.set('p:str', 'a');
    failing.lpush('p:str', 'x');
    failing.get('p:str');
    const kept = await failing.exec({ keepErrors: true });
    expect(kept[1]?.error).toMatch(/^WRONGTYPE/);
    expect(kept[2]?.result).toBe('a');
  });

  it('multi() is atomic and reports runtime errors per command', async () => {
    const tx = redis.multi();
    tx.set('tx:a', '1');
    tx.incr('tx:a');
    tx.get('tx:a');
    expect(await tx.exec()).toEqual(['OK', 2, 2]);

    const bad = redis.multi();
    bad.set('tx:s', 'x');
    bad.incr('tx:s');
    await expect(bad.exec()).rejects.toThrow(/not an integer/);
    expect(await redis.get('tx:s')).toBe('x');
  });

  it('auto-pipelining batches concurrent commands', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => redis.set(`ap:${i}`, `v${i}`)),
    );
    expect(results.every((r) => r === 'OK')).toBe(true);
    const values = await Promise.all(Array.from({ length: 100 }, (_, i) => redis.get(`ap:${i}`)));
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
  });

  it('round-trips unicode and base64-looking values exactly', async () => {
    const values = ['PONG', 'abcd', 'test', 'T0s=', 'OK', 'dg==', '😀 émoji ☃', '', 'a\nb\r\nc'];
    for (const [i, value] of values.entries()) {
      await raw.set(`u:${i}`, value);
      expect(await raw.get(`u:${i}`)).toBe(value);
    }
    expect(await raw.mget(...values.map((_, i) => `u:${i}`))).toEqual(values);
    expect(await raw.hset('u:h', { PONG: 'abcd', '😀': 'T0s=' })).toBe(2);
    // Without deserialization the client hands back HGETALL's flat array as is.
    expect(await raw.hgetall('u:h')).toEqual(['PONG', 'abcd', '😀', 'T0s=']);
    expect(await redis.hgetall('u:h')).toEqual({ PONG: 'abcd', '😀': 'T0s=' });
    // Bytes written by another client come back as the same UTF-8 text.
    await direct.set('u:direct', Buffer.from('héllo wörld', 'utf8'));
    expect(await raw.get('u:direct')).toBe('héllo wörld');
  });

  it('stores and reads a 1 MB value', async () => {
    const big = `${'x'.repeat(1024 * 1024 - 7)}the-end`;
    expect(await raw.set('big', big)).toBe('OK');
    const back = await raw.get<string>('big');
    expect(back?.length).toBe(big.length);
    expect(back === big).toBe(true);
  });

  it('passes the WRONGTYPE message through intact', async () => {
    await redis.set('wt', 'x');
    await expect(redis.lpush('wt', 'y')).rejects.toThrow(
      'WRONGTYPE Operation against a key holding the wrong kind of value',
    );
    const reply = await post(gw.url, '/', ['LPUSH', 'wt', 'y']);
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({
      error: 'WRONGTYPE Operation against a key holding the wrong kind of value',
    });
  });

  it('rejects a bad token with 401', async () => {
    const bad = new Redis({ url: gw.url, token: 'wrong', enableTelemetry: false });
    await expect(bad.get('x')).rejects.toThrow(/Unauthorized/);
    const reply = await post(gw.url, '/', ['PING'], { authorization: 'Bearer wrong' });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: 'Unauthorized' });
  });

  it('works with the read-only token for reads', async () => {
    const ro = new Redis({ url: gw.url, token: READONLY_TOKEN, enableTelemetry: false });
    await redis.set('ro:k', 'v');
    expect(await ro.get('ro:k')).toBe('v');
    await expect(ro.set('ro:k', 'w')).rejects.toThrow(/read-only/);
    expect(await redis.get('ro:k')).toBe('v');
  });

  it('subscribe() receives messages over SSE and cleans up on unsubscribe', async () => {
    const sub = redis.subscribe<unknown>(['news']);
    const messages: unknown[] = [];
    const counts: number[] = [];
    sub.on('subscribe', (count) => counts.push(count));
    sub.on('message', ({ channel, message }) => messages.push({ channel, message }));
    await waitFor(() => counts.length === 1, 5000, 'subscribe confirmation');
    expect(counts).toEqual([1]);
    await redis.publish('news', 'hello');
    await redis.publish('news', { deep: [1, 'two'] });
    await waitFor(() => messages.length === 2, 5000, 'messages');
    expect(messages).toEqual([
      { channel: 'news', message: 'hello' },
      { channel: 'news', message: { deep: [1, 'two'] } },
    ]);
    expect(await direct.call('PUBSUB', 'NUMSUB', 'news')).toEqual(['news', 1]);
    await sub.unsubscribe();
    await waitFor(
      async () => JSON.stringify(await direct.call('PUBSUB', 'NUMSUB', 'news')) === '["news",0]',
      5000,
      'the backend subscription to end',
    );
  });

  it('psubscribe() receives pattern messages', async () => {
    const sub = redis.psubscribe<unknown>(['ev:*']);
    const messages: unknown[] = [];
    const errors: unknown[] = [];
    sub.on('error', (e) => errors.push(e));
    let subscribed = false;
    sub.on('psubscribe', () => {
      subscribed = true;
    });
    sub.on('pmessage', (m) => messages.push(m));
    await waitFor(() => subscribed, 5000, 'psubscribe confirmation');
    // The client JSON-parses pattern messages without a fallback, so publish JSON.
    await redis.publish('ev:one', { n: 1 });
    await waitFor(() => messages.length === 1, 5000, 'pattern message');
    expect(messages).toEqual([{ pattern: 'ev:*', channel: 'ev:one', message: { n: 1 } }]);
    expect(errors).toEqual([]);
    await sub.unsubscribe();
  });

  // The client takes every `data: ` line as an event: a payload framed over several lines would
  // let any publisher to one channel forge messages on another.
  it('a payload with line breaks arrives whole, on its own channel only', async () => {
    const forged = 'first line\nmessage,payments,refund 1000 EUR';
    const crlf = 'a\r\ndata: message,payments,x\r\n\r\nb';
    const pretty = '{\n  "amount": 10,\r\n  "note": "line\\nbreak"\n}';
    const events = (client: Redis) => {
      const sub = client.subscribe<unknown>(['orders', 'payments']);
      const got: unknown[] = [];
      let confirmed = 0;
      sub.on('subscribe', () => confirmed++);
      sub.on('message', ({ channel, message }) => got.push({ channel, message }));
      return { sub, got, ready: () => confirmed === 2 };
    };
    const parsed = events(redis);
    const unparsed = events(raw);
    await waitFor(() => parsed.ready() && unparsed.ready(), 5000, 'subscribe confirmations');

    // From any publisher, not only @upstash/redis (which sends strings as they are).
    await direct.publish('orders', forged);
    await redis.publish('orders', crlf);
    await direct.publish('orders', pretty);
    await direct.publish('payments', 'done');
    await waitFor(() => parsed.got.length >= 4 && unparsed.got.length >= 4, 5000, 'messages');
    await sleep(100);

    // What the client would deliver had it read each payload whole (it JSON-parses them).
    expect(parsed.got).toEqual([
      { channel: 'orders', message: forged },
      { channel: 'orders', message: crlf },
      { channel: 'orders', message: { amount: 10, note: 'line\nbreak' } },
      { channel: 'payments', message: 'done' },
    ]);
    // Without deserialization the single-line form shows, but still nothing forged.
    expect(unparsed.got).toEqual([
      { channel: 'orders', message: JSON.stringify(forged) },
      { channel: 'orders', message: JSON.stringify(crlf) },
      { channel: 'orders', message: '{   "amount": 10,    "note": "line\\nbreak" }' },
      { channel: 'payments', message: 'done' },
    ]);
    await parsed.sub.unsubscribe();
    await unparsed.sub.unsubscribe();
  });

  it('a pattern message with line breaks cannot forge one from another channel', async () => {
    const sub = redis.psubscribe<unknown>(['pm:*']);
    const got: unknown[] = [];
    let subscribed = false;
    sub.on('psubscribe', () => {
      subscribed = true;
    });
    sub.on('pmessage', (m) => got.push(m));
    sub.on('error', () => {});
    await waitFor(() => subscribed, 5000, 'psubscribe confirmation');
    const forged = 'x\npmessage,pm:*,pm:bank,{"refund":1000}';
    await direct.publish('pm:shop', forged);
    // A channel name may hold a line break too. (Its commas still confuse the client's
    // comma-split parse, an error event, but that cannot name another channel.)
    await direct.publish('pm:a\npmessage,pm:*,pm:bank,{"refund":1}\n', '{"n":1}');
    await direct.publish('pm:end', '{"n":2}');
    await waitFor(() => got.some((m) => (m as { channel: string }).channel === 'pm:end'), 5000);
    await sleep(100);
    expect(got).toContainEqual({ pattern: 'pm:*', channel: 'pm:shop', message: forged });
    expect(got).toContainEqual({ pattern: 'pm:*', channel: 'pm:end', message: { n: 2 } });
    expect(got.filter((m) => (m as { channel: string }).channel === 'pm:bank')).toEqual([]);
    expect(got).toHaveLength(2);
    await sub.unsubscribe();
  });
});

describe('raw results equal a direct RESP client', () => {
  beforeAll(async () => {
    await direct.set('raw:s', 'plain text ☃');
    await direct.hset('raw:h', 'a', '1', 'b', 'two');
    await direct.rpush('raw:l', 'x', 'y', 'z');
    await direct.zadd('raw:z', 1.5, 'm1', 2, 'm2');
    await direct.sadd('raw:set', '3', '1', '2');
    await direct.xadd('raw:st', '1-1', 'f', 'v');
    await direct.geoadd('raw:g', 13.361389, 38.115556, 'Palermo');
    await direct.pfadd('raw:hll', 'a', 'b');
    await direct.set('raw:bin', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]));
  });

  const commands: string[][] = [
    ['GET', 'raw:s'],
    ['GET', 'raw:missing'],
    ['STRLEN', 'raw:s'],
    ['HGETALL', 'raw:h'],
    ['LRANGE', 'raw:l', '0', '-1'],
    ['ZRANGE', 'raw:z', '0', '-1', 'WITHSCORES'],
    ['ZSCORE', 'raw:z', 'm1'],
    ['SMEMBERS', 'raw:set'],
    ['XRANGE', 'raw:st', '-', '+'],
    ['GEOPOS', 'raw:g', 'Palermo', 'nowhere'],
    ['PFCOUNT', 'raw:hll'],
    ['TYPE', 'raw:h'],
    ['TTL', 'raw:s'],
    ['EXISTS', 'raw:s', 'raw:h', 'raw:none'],
    ['OBJECT', 'ENCODING', 'raw:l'],
    ['ECHO', 'echo me'],
    ['PING'],
    ['EVAL', "return {1, 'two', {3, 'four'}, false}", '0'],
  ];

  it.each(commands)('%s %s', async (...command) => {
    const expected = await direct.call(command[0]!, ...command.slice(1));
    const reply = await post(gw.url, '/', command);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ result: expected });
  });

  it('base64 results are the exact bytes, except OK', async () => {
    // Only a top-level `OK` stays as is (see encoding.ts for why nested ones are encoded).
    const toBase64 = (v: unknown, nested = false): unknown =>
      Array.isArray(v)
        ? v.map((item) => toBase64(item, true))
        : Buffer.isBuffer(v)
          ? !nested && v.toString() === 'OK'
            ? 'OK'
            : v.toString('base64')
          : v;
    await direct.rpush('raw:oks', 'OK', 'ok');
    const extra = [
      ['GET', 'raw:bin'],
      ['SET', 'raw:ok', 'OK'],
      ['GET', 'raw:ok'],
      ['LRANGE', 'raw:oks', '0', '-1'],
    ];
    for (const command of [...commands, ...extra]) {
      const expected = toBase64(await direct.callBuffer(command[0]!, ...command.slice(1)));
      const reply = await post(gw.url, '/', command, { 'upstash-encoding': 'base64' });
      expect(reply.body, command.join(' ')).toEqual({ result: expected });
    }
  });

  it('pipelines and transactions return per-command results', async () => {
    const batch = [
      ['GET', 'raw:s'],
      ['LPUSH', 'raw:s', 'x'],
      ['HGET', 'raw:h', 'b'],
    ];
    for (const path of ['/pipeline', '/multi-exec']) {
      const reply = await post(gw.url, path, batch);
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual([
        { result: 'plain text ☃' },
        { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' },
        { result: 'two' },
      ]);
    }
  });

  it('a discarded transaction is one 400 error and runs nothing', async () => {
    const reply = await post(gw.url, '/multi-exec', [['SET', 'raw:discarded', '1'], ['GET']]);
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({
      error:
        "EXECABORT Transaction discarded because of previous errors. ERR wrong number of arguments for 'get' command",
    });
    expect(await direct.exists('raw:discarded')).toBe(0);
  });

  it("integers beyond 2^53 keep Redis' exact digits in the JSON text", async () => {
    // JSON.parse would round them: compare the text itself.
    const text = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const reply = await post(gw.url, path, body, headers);
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      return reply.text;
    };
    expect(await text('/', ['INCRBY', 'raw:big', '9007199254740993'])).toBe(
      '{"result":9007199254740993}',
    );
    expect(await text('/', ['DECRBY', 'raw:neg', '9223372036854775807'])).toBe(
      '{"result":-9223372036854775807}',
    );
    expect(await text('/', ['DECR', 'raw:neg'])).toBe('{"result":-9223372036854775808}');
    // Bulk strings holding digits stay strings; small integers are written as before.
    expect(
      await text('/pipeline', [
        ['INCR', 'raw:big'],
        ['GET', 'raw:big'],
        ['INCR', 'raw:small'],
        ['GET', 'raw:nothing'],
      ]),
    ).toBe(
      '[{"result":9007199254740994},{"result":"9007199254740994"},{"result":1},{"result":null}]',
    );
    const bitfield = [
      'BITFIELD',
      'raw:bf',
      'SET',
      'i64',
      '0',
      '9223372036854775807',
      'GET',
      'i64',
      '0',
    ];
    expect(await text('/multi-exec', [bitfield, ['SET', 'raw:ok', 'v']])).toBe(
      '[{"result":[0,9223372036854775807]},{"result":"OK"}]',
    );
    expect(
      await text('/', ['BITFIELD', 'raw:bf', 'GET', 'i64', '0'], { 'upstash-encoding': 'base64' }),
    ).toBe('{"result":[9223372036854775807]}');
    expect(await text('/', ['INCRBY', 'raw:small', '-1'])).toBe('{"result":0}');
    expect(await direct.get('raw:big')).toBe('9007199254740994');
  });

  it('stringifies numbers and booleans, and supports the path form', async () => {
    expect((await post(gw.url, '/', ['SET', 'raw:num', 12.5])).body).toEqual({ result: 'OK' });
    expect(await direct.get('raw:num')).toBe('12.5');
    expect((await post(gw.url, '/', ['SET', 'raw:bool', true])).body).toEqual({ result: 'OK' });
    expect(await direct.get('raw:bool')).toBe('true');

    const auth = { authorization: `Bearer ${TOKEN}` };
    const set = await fetch(`${gw.url}/set/raw:path%2Fkey/hello%20world?EX=100`, { headers: auth });
    expect(await set.json()).toEqual({ result: 'OK' });
    expect(await direct.get('raw:path/key')).toBe('hello world');
    expect(await direct.ttl('raw:path/key')).toBeGreaterThan(90);
    // POST body is the value (raw bytes), query entries come after it.
    const bytes = Buffer.from([0, 0xff, 10, 13, 0x80]);
    const posted = await fetch(`${gw.url}/set/raw:posted?PX=100000&NX`, {
      method: 'POST',
      headers: auth,
      body: bytes,
    });
    expect(await posted.json()).toEqual({ result: 'OK' });
    expect(await direct.getBuffer('raw:posted')).toEqual(bytes);
    expect(await direct.pttl('raw:posted')).toBeGreaterThan(90_000);
    const got = await fetch(`${gw.url}/get/raw:posted?_token=${TOKEN}`, {
      headers: { 'upstash-encoding': 'base64' },
    });
    expect(await got.json()).toEqual({ result: bytes.toString('base64') });
  });

  it('every 2xx response carries an increasing upstash-sync-token', async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await post(gw.url, '/', ['PING']);
      tokens.push(reply.headers.get('upstash-sync-token') ?? '');
    }
    const [boot] = tokens[0]!.split('-');
    expect(tokens.every((t) => t.startsWith(`${boot}-`))).toBe(true);
    const counters = tokens.map((t) => Number(t.split('-')[1]));
    expect(counters[1]).toBeGreaterThan(counters[0]!);
    expect(counters[2]).toBeGreaterThan(counters[1]!);
    const error = await post(gw.url, '/', ['LPUSH', 'raw:s', 'x']);
    expect(error.headers.get('upstash-sync-token')).toBeNull();
  });

  it('SSE frames follow the Upstash format', async () => {
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/subscribe/raw-chan/raw-chan2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += Buffer.from(value).toString();
      }
    };
    await readUntil('subscribe,raw-chan2,2');
    await direct.publish('raw-chan', 'line1\nline2');
    await direct.publish('raw-chan2', 'a,b,c');
    await readUntil('message,raw-chan2,a,b,c');
    expect(text).toBe(
      'data: subscribe,raw-chan,1\n\n' +
        'data: subscribe,raw-chan2,2\n\n' +
        // One `data:` line per event: a line break inside a payload is JSON-quoted.
        'data: message,raw-chan,"line1\\nline2"\n\n' +
        'data: message,raw-chan2,a,b,c\n\n',
    );
    controller.abort();
    await waitFor(
      async () =>
        JSON.stringify(await direct.call('PUBSUB', 'NUMSUB', 'raw-chan')) === '["raw-chan",0]',
      5000,
      'the subscription to end after the client disconnected',
    );
  });
});
