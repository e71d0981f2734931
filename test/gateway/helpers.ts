import { type RunningGateway, startGateway } from '../../src/gateway/index.js';
import type { GatewayOptions } from '../../src/gateway/types.js';
import type { RedisProcess } from './redis-process.js';

/** Distinctive secrets, so a test can assert they never show up in logs. */
export const TOKEN = 'full-token-7c1d9e';
export const READONLY_TOKEN = 'readonly-token-4b2a8f';
export const ADMIN_TOKEN = 'admin-token-91e3c0';
export const AVAILABILITY_USER = 'probe';
export const AVAILABILITY_PASSWORD = 'probe-password-5d6e';

export interface TestGateway {
  gateway: RunningGateway;
  url: string;
  /** Everything the gateway logged. */
  logs: string[];
}

export async function startTestGateway(
  redis: RedisProcess,
  options: Partial<GatewayOptions> = {},
): Promise<TestGateway> {
  const logs: string[] = [];
  const gateway = await startGateway({
    redisUrl: redis.url,
    token: TOKEN,
    log: (line) => logs.push(line),
    ...options,
  });
  return { gateway, url: gateway.url, logs };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** fetch + JSON parse (when the body is JSON) in one step. */
export async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** POST a JSON body (string bodies are sent as-is) with the full token. */
export function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return request(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asserts no secret leaked into log lines. */
export function secretsIn(logs: string[]): string[] {
  const secrets = [TOKEN, READONLY_TOKEN, ADMIN_TOKEN, AVAILABILITY_PASSWORD];
  return logs.filter((line) => secrets.some((s) => line.includes(s)));
}
