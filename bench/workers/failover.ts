/**
 * Cold-start subject: this library, one client per isolate (built on the first request, since
 * module workers get `env` only then), a request scope per request, one GET per request.
 */
import { createFailoverRedis, type FailoverRedis, type MemberConfig } from '../../src/index.js';

interface Env {
  MEMBERS: string;
}

interface Ctx {
  waitUntil(promise: Promise<unknown>): void;
}

let client: FailoverRedis | undefined;

export default {
  async fetch(_request: Request, env: Env, ctx: Ctx): Promise<Response> {
    client ??= createFailoverRedis({ members: JSON.parse(env.MEMBERS) as MemberConfig[] });
    const redis = client.scope({ waitUntil: (promise) => ctx.waitUntil(promise) });
    const value = await redis.get<string>('bench:cold');
    return new Response(`${value} via ${redis.pinnedMember}`);
  },
};
