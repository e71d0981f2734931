import { describe, expect, it } from 'vitest';
import { useRedisWithGateway } from './fixture.js';
import { post } from './helpers.js';

/**
 * A command with a few hundred thousand arguments (a 2 MB body, well under the body limit)
 * is one Redis takes. The gateway spread the arguments into a function call, which overflowed
 * the stack past ~125k: a 502 "may have run" for a command that was never sent, and a 500 in a
 * batch.
 */
const fixture = useRedisWithGateway();

describe('commands with very many arguments', () => {
  const members = Array.from({ length: 200_000 }, (_, i) => `member-${i}`);

  it.each(['/', '/pipeline', '/multi-exec'])('run through %s', async (path) => {
    const key = `many:${path}`;
    const command = ['SADD', key, ...members];
    const answer = await post(
      fixture.gw.url,
      path,
      path === '/' ? command : [command, ['SCARD', key]],
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(
      path === '/' ? { result: 200_000 } : [{ result: 200_000 }, { result: 200_000 }],
    );
    expect(await fixture.direct.scard(key)).toBe(200_000);
    expect(fixture.gw.logs.filter((line) => line.includes('unexpected'))).toEqual([]);
  });
});
