import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The gateway compares credentials in constant time: SHA-256 digests (fixed length, so neither
 * content nor length of the presented token shows in the timing) compared with
 * `crypto.timingSafeEqual`. Checked three ways, without timing measurements: the source, the
 * calls `timingSafeEqual` receives, and the answers over HTTP for wrong tokens of every length.
 */
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return { ...original, timingSafeEqual: vi.fn(original.timingSafeEqual) };
});

const crypto = await import('node:crypto');
const { BasicAuth, Secret, TokenAuth } = await import('../../src/gateway/auth.js');
const { startGateway } = await import('../../src/gateway/index.js');
const { startLocalCluster } = await import('../../src/testing/index.js');
type RunningGateway = Awaited<ReturnType<typeof startGateway>>;
type LocalCluster = Awaited<ReturnType<typeof startLocalCluster>>;

const GATEWAY_DIR = fileURLToPath(new URL('../../src/gateway/', import.meta.url));
const TOKEN = 'full-token-0123456789abcdefghij';
const READONLY = 'read-token-0123456789abcdefghij';
const ADMIN = 'admin-token-0123456789abcdefghi';
const USER = 'admin@local';
const PASSWORD = 'availability-password-0123456789';
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

/** Same length as `secret`, differing only in the last character. */
function sameLength(secret: string): string {
  return `${secret.slice(0, -1)}${secret.endsWith('x') ? 'y' : 'x'}`;
}
function wrongCandidates(secret: string): string[] {
  return [
    sameLength(secret),
    `x${secret.slice(1)}`,
    secret.slice(0, -1),
    `${secret}x`,
    secret.slice(0, 8),
    'x',
    secret.toUpperCase(),
    'x'.repeat(4096),
  ];
}

/**
 * `a === b` / `a !== b` where both sides are variables or properties (not literals, `undefined`,
 * `null` or a `typeof`/`.length` check) and one of them names a credential.
 */
function secretComparisons(text: string): string[] {
  const found: string[] = [];
  const operand = /[A-Za-z_$][\w$]*(?:(?:\?\.|\.)[A-Za-z_$][\w$]*|\[\d+\])*/.source;
  const pattern = new RegExp(`(${operand})\\s*(?:===|!==|==|!=)\\s*(${operand})`, 'g');
  const harmless = /^(undefined|null|true|false|NaN)$|\.length$|^typeof$/;
  const credential = /token|password|secret|candidate|credential|hash|digest/i;
  for (const match of text.matchAll(pattern)) {
    const [whole, left = '', right = ''] = match;
    if (harmless.test(left) || harmless.test(right)) continue;
    const before = text.slice(Math.max(0, (match.index ?? 0) - 7), match.index);
    if (/typeof\s*$/.test(before)) continue;
    if (credential.test(left) || credential.test(right)) found.push(whole);
  }
  return found;
}

describe('source: credentials are compared as digests with timingSafeEqual', () => {
  const auth = readFileSync(`${GATEWAY_DIR}auth.ts`, 'utf8');

  it('auth.ts hashes with SHA-256 and compares with crypto.timingSafeEqual', () => {
    expect(auth).toMatch(/import\s*{[^}]*\btimingSafeEqual\b[^}]*}\s*from\s*'node:crypto'/);
    expect(auth).toMatch(/createHash\('sha256'\)/);
    expect(auth).toMatch(/timingSafeEqual\(\s*this\.hash\s*,\s*digest\(/);
    // No secret compared with string equality or prefix tests.
    expect(secretComparisons(auth)).toEqual([]);
    expect(auth).not.toMatch(/\.(startsWith|endsWith|includes|localeCompare)\(/);
  });

  it('no gateway module compares a presented credential any other way', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(GATEWAY_DIR).filter((f) => f.endsWith('.ts'))) {
      for (const comparison of secretComparisons(readFileSync(`${GATEWAY_DIR}${file}`, 'utf8'))) {
        // Config validation compares two configured secrets, not a presented one.
        if (file === 'options.ts' && comparison === 'readonlyToken === token') continue;
        offenders.push(`${file}: ${comparison}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the source check itself catches a plain comparison (self-check)', () => {
    expect(secretComparisons('if (candidate === this.token) return true;')).toEqual([
      'candidate === this.token',
    ]);
    expect(secretComparisons("if (token === 'STREAMS' || x !== undefined) {}")).toEqual([]);
  });
});

describe('timingSafeEqual always sees two 32-byte digests', () => {
  beforeEach(() => {
    timingSafeEqual.mockClear();
  });

  function expectDigestCalls(minCalls: number): void {
    expect(timingSafeEqual.mock.calls.length).toBeGreaterThanOrEqual(minCalls);
    for (const [a, b] of timingSafeEqual.mock.calls) {
      expect((a as Buffer).byteLength).toBe(32);
      expect((b as Buffer).byteLength).toBe(32);
    }
  }

  it('Secret: wrong candidates of every length, and a missing one', () => {
    const secret = new Secret(TOKEN);
    for (const candidate of [...wrongCandidates(TOKEN), '', undefined]) {
      expect(secret.matches(candidate)).toBe(false);
    }
    expect(secret.matches(TOKEN)).toBe(true);
    expectDigestCalls(wrongCandidates(TOKEN).length + 3);
  });

  it('TokenAuth checks both tokens every time, whatever matched', () => {
    const auth = new TokenAuth(TOKEN, READONLY);
    expect(auth.role(TOKEN)).toBe('full');
    expect(timingSafeEqual).toHaveBeenCalledTimes(2);
    expect(auth.role(READONLY)).toBe('readonly');
    expect(timingSafeEqual).toHaveBeenCalledTimes(4);
    for (const candidate of wrongCandidates(TOKEN)) expect(auth.role(candidate)).toBeNull();
    expectDigestCalls(4 + 2 * wrongCandidates(TOKEN).length);
  });

  it('BasicAuth checks user and password every time', () => {
    const auth = new BasicAuth(USER, PASSWORD);
    const header = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    expect(auth.check(header(USER, PASSWORD))).toBe(true);
    for (const p of wrongCandidates(PASSWORD)) expect(auth.check(header(USER, p))).toBe(false);
    expect(auth.check(header(sameLength(USER), PASSWORD))).toBe(false);
    expect(auth.check(undefined)).toBe(false);
    expect(auth.check('Basic !!!')).toBe(false);
    expectDigestCalls(2 * (wrongCandidates(PASSWORD).length + 4));
  });
});

describe('over HTTP: every wrong credential gets the same 401', () => {
  let cluster: LocalCluster;
  let gateway: RunningGateway;

  beforeAll(async () => {
    cluster = await startLocalCluster({ members: 1 });
    gateway = await startGateway({
      redisUrl: cluster.redisUrls!.a!,
      token: TOKEN,
      readonlyToken: READONLY,
      adminToken: ADMIN,
      availability: { username: USER, password: PASSWORD },
      log: () => {},
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await cluster?.stop();
  });

  async function status(
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<[number, string]> {
    const response = await fetch(`${gateway.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
    });
    return [response.status, await response.text()];
  }

  it('REST bearer tokens and ?_token=', async () => {
    expect((await status('/', { authorization: `Bearer ${TOKEN}` }, '["PING"]'))[0]).toBe(200);
    const answers = new Set<string>();
    for (const candidate of wrongCandidates(TOKEN)) {
      const [code, text] = await status('/', { authorization: `Bearer ${candidate}` }, '["PING"]');
      expect(code, candidate.slice(0, 40)).toBe(401);
      answers.add(text);
      const [qCode, qText] = await status(
        `/?_token=${encodeURIComponent(candidate)}`,
        {},
        '["PING"]',
      );
      expect(qCode).toBe(401);
      answers.add(qText);
    }
    const [noAuth, noAuthText] = await status('/', {}, '["PING"]');
    expect(noAuth).toBe(401);
    answers.add(noAuthText);
    // One answer for every kind of wrong: nothing to learn from the response either.
    expect([...answers]).toEqual(['{"error":"Unauthorized"}']);
  });

  it('the read-only token is read-only, and not a prefix match of the full one', async () => {
    expect((await status('/', { authorization: `Bearer ${READONLY}` }, '["GET","k"]'))[0]).toBe(
      200,
    );
    // The token is accepted; the command is refused (a command error, not an auth failure).
    expect((await status('/', { authorization: `Bearer ${READONLY}` }, '["SET","k","v"]'))[0]).toBe(
      400,
    );
    expect(
      (await status('/', { authorization: `Bearer ${sameLength(READONLY)}` }, '["GET","k"]'))[0],
    ).toBe(401);
  });

  it('availability API Basic credentials', async () => {
    const basic = (u: string, p: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });
    const path = '/v1/bdbs/1/availability';
    expect((await status(path, basic(USER, PASSWORD)))[0]).toBe(200);
    for (const p of wrongCandidates(PASSWORD))
      expect((await status(path, basic(USER, p)))[0]).toBe(401);
    expect((await status(path, basic(sameLength(USER), PASSWORD)))[0]).toBe(401);
    expect((await status(path, { authorization: `Bearer ${TOKEN}` }))[0]).toBe(401);
    expect((await status(path, {}))[0]).toBe(401);
  });

  it('admin token', async () => {
    expect((await status('/admin/state', { authorization: `Bearer ${ADMIN}` }))[0]).toBe(200);
    for (const candidate of [...wrongCandidates(ADMIN), TOKEN]) {
      expect((await status('/admin/state', { authorization: `Bearer ${candidate}` }))[0]).toBe(401);
    }
  });
});
