import { describe, expect, it } from 'vitest';
import { DEFAULTS, resolveOptions } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const SECRET = 'tok-very-secret-123';
const member = (over: Record<string, unknown> = {}) => ({
  name: 'a',
  url: 'https://a.example.com',
  token: SECRET,
  ...over,
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain(SECRET);
    return (e as ConfigError).field;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveOptions', () => {
  it('fills defaults in one place', () => {
    const o = resolveOptions({ members: [member()] });
    expect(o.timeoutMs).toBe(DEFAULTS.timeoutMs);
    expect(o.deadlineMs).toBe(DEFAULTS.deadlineMs);
    expect(o.members[0]!.weight).toBe(1);
    expect(o.circuit.consecutive).toEqual({ threshold: 3 });
    expect(o.circuit.gracePeriodMs).toBe(60_000);
    expect(o.retryAmbiguousWrites).toBe(false);
    expect(o.hedgeAfterMs).toBeUndefined();
  });

  it('strips a trailing slash from member URLs', () => {
    expect(
      resolveOptions({ members: [member({ url: 'https://a.example.com/' })] }).members[0]!.url,
    ).toBe('https://a.example.com');
  });

  it('names the offending field', () => {
    expect(fieldOf(() => resolveOptions({ members: [] }))).toBe('members');
    expect(fieldOf(() => resolveOptions({ members: [member(), member()] }))).toBe(
      'members[1].name',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ weight: 0 })] }))).toBe(
      'members[0] ("a").weight',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ weight: -2 })] }))).toBe(
      'members[0] ("a").weight',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ token: '' })] }))).toBe(
      'members[0] ("a").token',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ name: '' })] }))).toBe(
      'members[0].name',
    );
    expect(fieldOf(() => resolveOptions({ members: [member({ url: 'not a url' })] }))).toBe(
      'members[0] ("a").url',
    );
    expect(fieldOf(() => resolveOptions({ members: [member()], timeoutMs: 0 }))).toBe('timeoutMs');
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member()], circuit: { failureRate: { threshold: 2 } } }),
      ),
    ).toBe('circuit.failureRate.threshold');
    expect(fieldOf(() => resolveOptions({ members: [member({ location: { lat: 100 } })] }))).toBe(
      'members[0] ("a").location.lat',
    );
    expect(
      fieldOf(() =>
        resolveOptions({
          members: [
            member({ availability: { url: 'https://c:9443', username: '', password: 'p' } }),
          ],
        }),
      ),
    ).toBe('members[0] ("a").availability.username');
  });

  it('refuses http:// to non-loopback hosts unless allowed', () => {
    expect(
      fieldOf(() => resolveOptions({ members: [member({ url: 'http://redis.example.com' })] })),
    ).toBe('members[0] ("a").url');
    expect(
      resolveOptions({
        members: [member({ url: 'http://redis.example.com' })],
        allowInsecureHttp: true,
      }).members[0]!.url,
    ).toBe('http://redis.example.com');
    for (const url of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:2']) {
      expect(resolveOptions({ members: [member({ url })] }).members[0]!.url).toBe(url);
    }
  });

  it('refuses credentials in URLs (they would leak into logs)', () => {
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member({ url: 'https://user:pw@a.example.com' })] }),
      ),
    ).toBe('members[0] ("a").url');
    expect(
      fieldOf(() =>
        resolveOptions({ members: [member({ url: `https://a.example.com/?_token=${SECRET}` })] }),
      ),
    ).toBe('members[0] ("a").url');
  });

  it('never echoes a token even when the token is what is wrong', () => {
    expect(() => resolveOptions({ members: [member({ url: SECRET })] })).toThrow(ConfigError);
  });
});
