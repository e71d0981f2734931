/** Cold-start subject: plain `@upstash/redis` (main entry), one GET per request. */
import { Redis } from '@upstash/redis';

interface Env {
  URL: string;
  TOKEN: string;
}

export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const redis = new Redis({
      url: env.URL,
      token: env.TOKEN,
      enableAutoPipelining: false,
      enableTelemetry: false,
    });
    const value = await redis.get<string>('bench:cold');
    return new Response(String(value));
  },
};
