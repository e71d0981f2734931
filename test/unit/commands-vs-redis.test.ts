/**
 * Checks the safety table against the command flags of a real redis-server 7.0
 * (COMMAND INFO), so a typo or a forgotten command fails here instead of in production.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/testing/ports.js';
import { RedisProcess, RedisStartError } from '../../src/testing/redis-process.js';
import { classifyCommand, knownCommandNames } from '../../src/transport/commands.js';

const REDIS_BIN = '/usr/bin/redis-server';

/**
 * Names in the table that a 7.0 server does not know, each with where it comes from. All are
 * exposed by @upstash/redis 1.39, so a caller can send them to a newer member.
 */
const NEWER_THAN_7_0: Record<string, string> = {
  'client|setinfo': 'Redis 7.2',
  hexpire: 'Redis 7.4 hash-field expiry',
  hpexpire: 'Redis 7.4 hash-field expiry',
  hexpireat: 'Redis 7.4 hash-field expiry',
  hpexpireat: 'Redis 7.4 hash-field expiry',
  httl: 'Redis 7.4 hash-field expiry',
  hpttl: 'Redis 7.4 hash-field expiry',
  hexpiretime: 'Redis 7.4 hash-field expiry',
  hpexpiretime: 'Redis 7.4 hash-field expiry',
  hpersist: 'Redis 7.4 hash-field expiry',
  hgetdel: 'Redis 8.0',
  hgetex: 'Redis 8.0',
  hsetex: 'Redis 8.0',
  xackdel: 'Redis 8.2',
  xdelex: 'Redis 8.2',
  'json.get': 'RedisJSON',
  'json.mget': 'RedisJSON',
  'json.type': 'RedisJSON',
  'json.strlen': 'RedisJSON',
  'json.arrlen': 'RedisJSON',
  'json.arrindex': 'RedisJSON',
  'json.objkeys': 'RedisJSON',
  'json.objlen': 'RedisJSON',
  'json.resp': 'RedisJSON',
  'json.set': 'RedisJSON',
  'json.mset': 'RedisJSON',
  'json.merge': 'RedisJSON',
  'json.del': 'RedisJSON',
  'json.forget': 'RedisJSON',
  'json.clear': 'RedisJSON',
  'json.numincrby': 'RedisJSON',
  'json.nummultby': 'RedisJSON',
  'json.strappend': 'RedisJSON',
  'json.arrappend': 'RedisJSON',
  'json.arrinsert': 'RedisJSON',
  'json.arrpop': 'RedisJSON',
  'json.arrtrim': 'RedisJSON',
  'json.toggle': 'RedisJSON',
};

/**
 * Flagged `write` by Redis but `read` in the table without these arguments: Redis flags the
 * whole command because of its STORE option (BITFIELD: its SET and INCRBY operations; with GET
 * alone it only reads). Checked here with the option that writes.
 */
const WRITE_ONLY_WITH: Record<string, unknown[]> = {
  bitfield: ['bitfield', 'b', 'SET', 'u8', 0, 1],
  sort: ['sort', 'l', 'STORE', 'dst'],
  georadius: ['georadius', 'g', 15, 37, 200, 'km', 'STORE', 'dst'],
  georadiusbymember: ['georadiusbymember', 'g', 'm', 200, 'km', 'STOREDIST', 'dst'],
};

interface CommandFlags {
  name: string;
  flags: string[];
}

let redis: RedisProcess | undefined;
let dir: string | undefined;
const commands = new Map<string, CommandFlags>();

async function startRedis(): Promise<RedisProcess> {
  for (let attempt = 0; ; attempt++) {
    dir = mkdtempSync(join(tmpdir(), 'ref-commands-'));
    try {
      return await RedisProcess.start({ port: await freePort(), dir, bin: REDIS_BIN });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      if (!(err instanceof RedisStartError && err.addressInUse) || attempt >= 4) throw err;
    }
  }
}

beforeAll(async () => {
  redis = await startRedis();
  const client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    const info = (await client.call('COMMAND')) as unknown[][];
    for (const entry of info) {
      const name = String(entry[0]).toLowerCase();
      commands.set(name, { name, flags: (entry[2] as string[]).map(String) });
      for (const sub of (entry[9] as unknown[][] | undefined) ?? []) {
        const subName = String(sub[0]).toLowerCase();
        commands.set(subName, { name: subName, flags: (sub[2] as string[]).map(String) });
      }
    }
  } finally {
    client.disconnect();
  }
});

afterAll(async () => {
  await redis?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `["object", "encoding"]` for `object|encoding`, as a request would carry it. */
function asCommand(name: string): unknown[] {
  return name.split('|');
}

function flagged(flag: string): string[] {
  return [...commands.values()].filter((c) => c.flags.includes(flag)).map((c) => c.name);
}

describe('command table vs redis-server 7.0 COMMAND INFO', () => {
  it('got a plausible command list', () => {
    expect(commands.size).toBeGreaterThan(200);
    expect(commands.get('get')?.flags).toContain('readonly');
    expect(commands.get('object|encoding')?.flags).toContain('readonly');
  });

  it('classifies every command Redis flags readonly as read', () => {
    const readonly = flagged('readonly');
    expect(readonly.length).toBeGreaterThan(80);
    const wrong = readonly.filter((name) => classifyCommand(asCommand(name)) !== 'read');
    expect(wrong).toEqual([]);
  });

  it('never classifies a command Redis flags write as read', () => {
    const writes = flagged('write');
    expect(writes.length).toBeGreaterThan(80);
    const wrong = writes.filter((name) => {
      const command = WRITE_ONLY_WITH[name] ?? asCommand(name);
      return classifyCommand(command) === 'read';
    });
    expect(wrong).toEqual([]);
    for (const name of Object.keys(WRITE_ONLY_WITH)) {
      expect(commands.get(name)?.flags, name).toContain('write');
      expect(classifyCommand([name, 'k']), name).toBe('read');
    }
  });

  it('has an entry for every readonly or write command (nothing falls to the default by accident)', () => {
    const known = new Set(knownCommandNames());
    const missing = [...flagged('readonly'), ...flagged('write')].filter((n) => !known.has(n));
    expect(missing).toEqual([]);
  });

  it('names only commands that exist in Redis 7.0 or are listed as newer', () => {
    const unknown = knownCommandNames().filter(
      (name) => !commands.has(name) && !(name in NEWER_THAN_7_0),
    );
    expect(unknown).toEqual([]);
  });

  it('lists as newer only names the table really has and 7.0 really lacks', () => {
    const known = new Set(knownCommandNames());
    for (const name of Object.keys(NEWER_THAN_7_0)) {
      expect(known.has(name), name).toBe(true);
      expect(commands.has(name), name).toBe(false);
    }
  });
});
