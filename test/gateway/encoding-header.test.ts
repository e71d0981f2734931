import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useRedisWithGateway } from './fixture.js';
import { post, type Reply, TOKEN } from './helpers.js';

/**
 * `Upstash-Encoding`: case-insensitive; a header sent twice arrives comma-joined
 * (`base64, base64`) and still means base64 (it used to come back silently unencoded, which a
 * client expecting base64 then mis-decodes); a value the gateway does not know, or two
 * different ones, is a 400 naming the header, and nothing runs.
 */
const fixture = useRedisWithGateway();

const B64 = Buffer.from('héllo').toString('base64');

/** POST with the header sent as separate lines, exactly as given (fetch would join them). */
function postRaw(path: string, body: unknown, encodings: string[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, fixture.gw.url);
    const req = httpRequest(url, { method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (typeof v === 'string') headers.set(k, v);
        }
        resolve({ status: res.statusCode ?? 0, headers, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.setHeader('authorization', `Bearer ${TOKEN}`);
    req.setHeader('content-type', 'application/json');
    req.setHeader('Upstash-Encoding', encodings);
    req.end(JSON.stringify(body));
  });
}

describe('Upstash-Encoding request header', () => {
  it('accepts any case and a repeat of the same value', async () => {
    await fixture.direct.set('enc:k', 'héllo');
    for (const value of ['base64', 'BASE64', 'Base64', 'base64, base64', ' base64 ,BASE64']) {
      const reply = await post(fixture.gw.url, '/', ['GET', 'enc:k'], {
        'upstash-encoding': value,
      });
      expect(reply.body, value).toEqual({ result: B64 });
    }
    // Two header lines, as a client or proxy that adds the header twice sends them.
    expect((await postRaw('/', ['GET', 'enc:k'], ['base64', 'base64'])).body).toEqual({
      result: B64,
    });
    expect((await postRaw('/', ['GET', 'enc:k'], ['base64', 'BASE64'])).body).toEqual({
      result: B64,
    });
    for (const path of ['/pipeline', '/multi-exec']) {
      const reply = await postRaw(path, [['GET', 'enc:k']], ['base64', 'base64']);
      expect(reply.body, path).toEqual([{ result: B64 }]);
    }
    // No header, or an empty one: plain text, as before.
    expect((await post(fixture.gw.url, '/', ['GET', 'enc:k'])).body).toEqual({ result: 'héllo' });
    expect(
      (await post(fixture.gw.url, '/', ['GET', 'enc:k'], { 'upstash-encoding': '' })).body,
    ).toEqual({
      result: 'héllo',
    });
  });

  it('refuses an unknown or conflicting value with a 400 naming the header, running nothing', async () => {
    await fixture.direct.del('enc:n');
    const attempts: Array<[string, unknown, string[]]> = [
      ['/', ['INCR', 'enc:n'], ['gzip']],
      ['/', ['INCR', 'enc:n'], ['base64, identity']],
      ['/', ['INCR', 'enc:n'], ['base64', 'utf-8']],
      ['/', ['INCR', 'enc:n'], ['value-9f3e-not-echoed']],
      ['/pipeline', [['INCR', 'enc:n']], ['base64', 'json']],
      ['/multi-exec', [['INCR', 'enc:n']], ['base32']],
      ['/incr/enc:n', undefined, ['hex']],
    ];
    for (const [path, body, encodings] of attempts) {
      const reply = await postRaw(path, body, encodings);
      const what = `${path} ${encodings.join(' | ')}: ${reply.text}`;
      expect(reply.status, what).toBe(400);
      expect(reply.headers.get('content-type'), what).toMatch(/^application\/json/);
      expect(reply.body, what).toEqual({
        error: expect.stringMatching(/^Upstash-Encoding: /),
        code: 'INVALID_REQUEST',
      });
      expect(reply.text, what).not.toMatch(/9f3e|gzip|identity|utf-8|base32|hex/);
    }
    expect(await fixture.direct.exists('enc:n')).toBe(0);
  });
});
