/** Shared helpers of the security suites. */

export interface RecordedRequest {
  url: URL;
  method: string;
  headers: Headers;
  body: string;
  /** HTTP status, or undefined when fetch rejected. */
  status?: number;
  /** `upstash-sync-token` of the response, if any. */
  responseSyncToken?: string;
}

/**
 * A `fetch` that records every request (URL, headers, body) and its answer, then passes it to
 * the real fetch. Handles both call shapes: `(url, init)` (the REST transport) and
 * `(Request, init)` (ky, used for the availability API).
 */
export function recordingFetch(log: RecordedRequest[]): typeof fetch {
  return async (input, init) => {
    const request = input instanceof Request ? input : undefined;
    const headers = new Headers(request?.headers);
    if (init?.headers) for (const [k, v] of new Headers(init.headers)) headers.set(k, v);
    let body = '';
    if (typeof init?.body === 'string') body = init.body;
    else if (request && request.body !== null) body = await request.clone().text();
    const entry: RecordedRequest = {
      url: new URL(request ? request.url : String(input)),
      method: init?.method ?? request?.method ?? 'GET',
      headers,
      body,
    };
    log.push(entry);
    const response = await fetch(input, init);
    entry.status = response.status;
    const sync = response.headers.get('upstash-sync-token');
    if (sync) entry.responseSyncToken = sync;
    return response;
  };
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/**
 * Every way a secret could show up in text: as is, URL-encoded, JSON-escaped, base64 (alone,
 * and inside Basic credentials is covered by passing `user:password` as a secret).
 */
export function secretForms(secret: string): string[] {
  const forms = new Set([
    secret,
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString('base64'),
    Buffer.from(secret).toString('base64url'),
  ]);
  return [...forms].filter((f) => f.length >= 8);
}

/** Serializes anything (errors with their cause chain, events, snapshots) for a secret scan. */
export function deepText(value: unknown, seen = new Set<unknown>()): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return String(value);
  if (seen.has(value)) return '';
  seen.add(value);
  const parts: string[] = [];
  if (value instanceof Error) {
    parts.push(value.name, value.message, value.stack ?? '', deepText(value.cause, seen));
  }
  if (value instanceof Headers) {
    for (const [k, v] of value) parts.push(`${k}: ${v}`);
  }
  for (const key of Reflect.ownKeys(value)) {
    let inner: unknown;
    try {
      inner = (value as Record<string | symbol, unknown>)[key];
    } catch {
      continue;
    }
    if (typeof inner === 'function') continue;
    parts.push(String(key), deepText(inner, seen));
  }
  return parts.join('\n');
}

/** The secrets found in `text`, by label. */
export function leaks(text: string, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [label, secret] of Object.entries(secrets)) {
    if (secretForms(secret).some((form) => text.includes(form))) found.push(label);
  }
  return found;
}
