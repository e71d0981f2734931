/**
 * One member's Upstash REST transport: sends a command or a batch, decodes the reply exactly
 * like `@upstash/redis`, keeps this member's read-your-writes token, and classifies every
 * attempt (design 4.4) so the requester can decide alone whether a retry is safe.
 *
 * Plain `fetch`, not ky. With the options this transport needs (`retry: 0`,
 * `throwHttpErrors: false`, `timeout: false`) ky adds nothing we use: we still read status,
 * headers and body ourselves to classify. What it does add, measured with ky 1.14.3 on
 * Node 20: ~100-130 µs per call (it builds a `Request` and clones it for retries on every
 * call), a tee'd request body that workerd warns about ("ReadableStream branch was created
 * but never consumed"), a `Request` built at module load for a feature test, and ~5 KB gzip in
 * every client bundle. Errors also reach us as fetch threw them, which is what
 * `classifyFetchError` needs.
 *
 * Nothing here runs at module scope: the timer and AbortController are created inside `send`
 * (workerd forbids them globally and they must not cross requests).
 *
 * Cancellation is lazy. Every attempt is bounded by its timeout, but an attempt to a member
 * that has not timed out or dropped a connection lately gets no `AbortSignal`: Node 20's
 * undici pays ~25 µs of CPU for any signal (a follower controller, a WeakRef and a
 * FinalizationRegistry entry per request), which was most of the happy-path cost over plain
 * `@upstash/redis`. Such an attempt is raced against a timer instead; if the timer wins, the
 * request is abandoned (a late answer is drained) and the member's attempts carry a signal
 * for the next CANCEL_WINDOW_MS, so a member that hangs leaves at most the requests that were
 * already in flight when it hung, each until the runtime's own limit (undici: 300 s; workerd:
 * the end of the request), and every later attempt to it is really cancelled. A caller's
 * signal (request disconnect, hedged read) always makes the attempt cancellable.
 */

import { type MemberFailureReason, MemberRequestError } from './errors.js';
import type {
  AttemptOutcome,
  MemberRequest,
  MemberTransport,
  RestReply,
  SendOptions,
} from './types.js';
import { NOT_SENT_HEADER, REFUSED_HEADER, WRITE_REFUSAL_CODES } from './types.js';

export interface RestMember {
  name: string;
  url: string;
  token: string;
}

export interface RestTransportOptions {
  /** Send this member's last `upstash-sync-token` back to it (default true). */
  readYourWrites?: boolean;
  /** Replaces the global `fetch` (e.g. a runtime-specific or instrumented one). */
  fetch?: typeof fetch;
  /** Extra request headers; they cannot override auth, content type, encoding or sync token. */
  headers?: Record<string, string>;
  /** Give every attempt an AbortSignal, not only after a failure (see CANCEL_WINDOW_MS). */
  cancelAlways?: boolean;
}

const SYNC_TOKEN_HEADER = 'upstash-sync-token';
const RESERVED_HEADERS = /^(authorization|content-type|upstash-encoding|upstash-sync-token)$/i;
// setTimeout fires at once for larger delays.
const MAX_TIMER_MS = 2_147_483_647;
/**
 * How long a member's attempts stay cancellable after a timeout or dropped connection: as long
 * as undici's own headers timeout, so requests abandoned in one hang are gone before the next
 * hang can abandon more.
 */
export const CANCEL_WINDOW_MS = 300_000;
/** Rejection reason of the timer an uncancellable attempt is raced against. */
const TIMED_OUT = Symbol('timed out');

/**
 * Error codes that prove the request never left this client: no connection was established
 * (refused, unroutable, DNS, connect timeout) or TLS failed before any HTTP bytes were written.
 * `EAI_*` are every getaddrinfo failure; `ConnectionRefused` is Bun's. One regex rather than a
 * Set of twenty strings: it is checked only on failures, and it is a third of the bytes.
 */
const NOT_SENT_CODE =
  /^(ECONNREFUSED|ENOTFOUND|EAI_\w+|ENET(UNREACH|DOWN)|EHOST(UNREACH|DOWN)|EADDRNOTAVAIL|UND_ERR_CONNECT_TIMEOUT|ERR_INVALID_URL|CERT_HAS_EXPIRED|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|ERR_TLS_CERT_ALTNAME_INVALID|ConnectionRefused)$/;

/**
 * Runtimes that give no code: undici's causes for blocked ports and schemes, Deno's
 * "tcp connect error: Connection refused" and "dns error: failed to lookup address".
 * workerd reports a refused connection as "Network connection lost.", the same text as a
 * connection dropped mid-request, so it cannot be listed here and stays unknown-outcome.
 */
const NOT_SENT_MESSAGE =
  /connection refused|dns error|failed to lookup address|^bad port$|^unknown scheme$|failed to parse url|^invalid url$/i;

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function isNotSentError(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const err = value as ErrorLike;
  if (typeof err.code === 'string' && NOT_SENT_CODE.test(err.code)) return true;
  if (typeof err.message === 'string' && NOT_SENT_MESSAGE.test(err.message)) return true;
  // Happy-eyeballs connects fail with an AggregateError of one error per address tried.
  if (Array.isArray(err.errors) && err.errors.length > 0) return err.errors.every(isNotSentError);
  return false;
}

/**
 * Did a rejected `fetch` leave the member untouched? Only errors that prove no connection
 * carried the request are `not-sent`; everything else (reset, "terminated", "Network
 * connection lost", browsers' opaque "Failed to fetch", unknown) may have run on the member.
 */
export function classifyFetchError(err: unknown): 'not-sent' | 'unknown-outcome' {
  let current: unknown = err;
  // undici wraps the socket error in `cause`; stop at a small depth against cycles.
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (isNotSentError(current)) return 'not-sent';
    current = (current as ErrorLike).cause;
  }
  return 'unknown-outcome';
}

/** Does the error, or one of its causes, quote `token` (a runtime quoting a header it refused)? */
function quotes(err: unknown, token: string): boolean {
  if (typeof err === 'string') return err.includes(token);
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (String((current as ErrorLike).message).includes(token)) return true;
    current = (current as ErrorLike).cause;
  }
  return false;
}

/**
 * What is kept of a fetch error as `cause`: the name, code and message of it and its causes, in
 * a chain of plain Errors. Loggers print a cause whole, and a fetch (a wrapper, a polyfill) may
 * reject with a string or an object quoting the request, Authorization header and all; a
 * message that quotes the token is left out too.
 */
function cleanCause(err: unknown, token: string): Error {
  const chain: unknown[] = [];
  for (let c = err; chain.length < 4 && c != null; c = (c as ErrorLike).cause) chain.push(c);
  let copy: Error | undefined;
  for (const c of chain.reverse()) {
    const { message, code } = c as ErrorLike;
    const text = typeof message === 'string' && !message.includes(token) ? message : 'fetch failed';
    const next: Error & ErrorLike = new Error(text, copy && { cause: copy });
    if (c instanceof Error) next.name = c.name;
    if (typeof code === 'string') next.code = code;
    copy = next;
  }
  return copy!;
}

/** A short, secret-free description of a fetch error: its code, or a message without a URL. */
function describeFetchError(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as ErrorLike).code;
    if (typeof code === 'string' && code !== '') return code;
    current = (current as ErrorLike).cause;
  }
  if (err instanceof Error) {
    const message = err.message;
    if (message !== '' && message.length <= 80 && !/:\/\/|\?/.test(message)) return message;
    return err.name;
  }
  return 'unknown error';
}

// Created on first use, not at module load; a non-streaming TextDecoder holds no state
// between calls, so sharing it across requests is safe (it is not an I/O object).
let textDecoder: TextDecoder | undefined;

/** `@upstash/redis`' `base64decode`: atob + UTF-8, the raw string when atob rejects it. */
function base64decode(b64: string): string {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    return b64;
  }
  const size = binary.length;
  let ascii = true;
  for (let i = 0; i < size; i++) {
    if (binary.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  // ASCII bytes decode to themselves; skip the copy and the TextDecoder.
  if (ascii) return binary;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = binary.charCodeAt(i);
  textDecoder ??= new TextDecoder();
  return textDecoder.decode(bytes);
}

/**
 * `@upstash/redis`' `decode()`, quirks included, so results equal the official client's:
 * a top-level string is decoded unless it is exactly "OK", strings directly inside an array
 * are always decoded (even "OK"), deeper arrays recurse through this function, numbers pass,
 * a plain object becomes null and other types become undefined.
 */
export function decodeResult(raw: unknown): unknown {
  switch (typeof raw) {
    case 'undefined':
    case 'number':
      return raw;
    case 'string':
      return raw === 'OK' ? 'OK' : base64decode(raw);
    case 'object':
      if (Array.isArray(raw)) {
        return raw.map((v) =>
          typeof v === 'string'
            ? base64decode(v)
            : Array.isArray(v)
              ? v.map((element) => decodeResult(element))
              : v,
        );
      }
      return null;
    default:
      return undefined;
  }
}

function isReplyObject(value: unknown): value is { result?: unknown; error?: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const reply = value as { result?: unknown; error?: unknown };
  if ('error' in reply && reply.error !== undefined && typeof reply.error !== 'string') {
    return false;
  }
  return 'result' in reply || typeof reply.error === 'string';
}

/**
 * An error text goes to the caller as it is (`@upstash/redis` matches on `NOSCRIPT`), except
 * the token: a server that quotes the request's Authorization back must not put it in an error.
 */
function decodeReply(raw: { result?: unknown; error?: unknown }, token: string): RestReply {
  const error = raw.error as string | undefined;
  return { result: decodeResult(raw.result), error: error?.replaceAll(token, '***') };
}

/** The decoded reply, or undefined when the body is not what an Upstash REST server sends. */
function parseReply(
  request: MemberRequest,
  text: string,
  token: string,
): RestReply | RestReply[] | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (request.kind !== 'command' && Array.isArray(body)) {
    // One reply per command sent: any other count cannot be matched to the commands.
    if (body.length !== request.commands.length) return undefined;
    const replies: RestReply[] = [];
    for (const element of body) {
      if (!isReplyObject(element)) return undefined;
      replies.push(decodeReply(element, token));
    }
    return replies;
  }
  // A discarded transaction (and an error for the whole batch) is one `{error}` object.
  if (isReplyObject(body)) {
    if (request.kind !== 'command' && typeof body.error !== 'string') return undefined;
    return decodeReply(body, token);
  }
  return undefined;
}

function isErrorReply(reply: RestReply | RestReply[]): boolean {
  return !Array.isArray(reply) && typeof reply.error === 'string';
}

type FailureKind = Exclude<AttemptOutcome['kind'], 'ok'>;

/** A failed attempt; `message` names the member and never carries its URL or token. */
function failed(
  started: number,
  member: string,
  kind: FailureKind,
  reason: MemberFailureReason,
  message: string,
  status?: number,
  cause?: unknown,
): AttemptOutcome {
  const error = new MemberRequestError(message, member, kind, reason, status, cause);
  const outcome: AttemptOutcome = { kind, error, latencyMs: performance.now() - started };
  if (status !== undefined) outcome.status = status;
  return outcome;
}

/** Statuses decided without reading the body; undefined means "parse the body". */
function classifyStatus(
  response: Response,
  member: string,
  started: number,
): AttemptOutcome | undefined {
  const status = response.status;
  if (status >= 200 && status < 300) return undefined;
  const fail = (kind: FailureKind, reason: MemberFailureReason, problem: string) =>
    failed(started, member, kind, reason, `member "${member}" ${problem}`, status);
  if (status === 401 || status === 403) {
    return fail('config', 'auth', `rejected the token (HTTP ${status})`);
  }
  if (status === 404 || status === 405) {
    return fail(
      'config',
      'wrong-url',
      `answered HTTP ${status}: its URL is not an Upstash REST endpoint`,
    );
  }
  // Status 0 is the browser's opaque answer to `redirect: 'manual'`.
  if (status === 0 || (status >= 300 && status < 400)) {
    return fail(
      'config',
      'redirect',
      `redirected the request (HTTP ${status}); configure the final URL`,
    );
  }
  if (status === 503 && response.headers.get(NOT_SENT_HEADER) === '0') {
    // Decided from the headers, the body left unread (it could stall or be huge). The gateway
    // names Redis' refusal (OOM, LOADING, ...); only a plain code is repeated.
    const code = response.headers.get(REFUSED_HEADER);
    const why =
      code && /^[A-Z]{2,16}$/.test(code)
        ? `Redis refused it (${code})`
        : 'its Redis is unreachable';
    return fail(
      'not-sent',
      code && WRITE_REFUSAL_CODES.includes(code) ? 'writes-refused' : 'http-status',
      `did not run the request (HTTP 503: ${why})`,
    );
  }
  if (status >= 500) {
    return fail(
      'unknown-outcome',
      'http-status',
      `answered HTTP ${status}; the request may or may not have run`,
    );
  }
  // Other 4xx: a command error if the body is an `{error}` reply, otherwise unknown-outcome.
  return undefined;
}

class RestTransport implements MemberTransport {
  readonly name: string;
  #syncToken = '';
  /** `#headers` plus the sync token, rebuilt when the token changes rather than per request. */
  #headersWithToken: Record<string, string> | undefined;
  readonly #readYourWrites: boolean;
  readonly #fetch: typeof fetch | undefined;
  readonly #headers: Record<string, string>;
  /** Only to keep it out of error messages. */
  readonly #token: string;
  readonly #commandUrl: string = '';
  readonly #pipelineUrl: string = '';
  readonly #multiExecUrl: string = '';
  readonly #urlProblem: string | undefined;
  /** Until when (performance.now()) attempts carry an AbortSignal; see CANCEL_WINDOW_MS. */
  #cancellableUntil = Number.NEGATIVE_INFINITY;

  constructor(member: RestMember, options: RestTransportOptions) {
    this.name = member.name;
    this.#readYourWrites = options.readYourWrites ?? true;
    if (options.cancelAlways) this.#cancellableUntil = Number.POSITIVE_INFINITY;
    this.#fetch = options.fetch;
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(options.headers ?? {})) {
      if (!RESERVED_HEADERS.test(key)) headers[key] = value;
    }
    this.#token = member.token;
    headers.Authorization = `Bearer ${member.token}`;
    headers['Content-Type'] = 'application/json';
    headers['Upstash-Encoding'] = 'base64';
    this.#headers = headers;

    let url: URL | undefined;
    try {
      url = new URL(member.url);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      // The URL is not repeated: it may carry a `_token` query parameter.
      this.#urlProblem = `member "${member.name}" has an invalid URL (expected http:// or https://)`;
      return;
    }
    // Same endpoints as @upstash/redis (base without trailing slash, batch paths appended),
    // built with URL so a query string stays a query string.
    const path = url.pathname.replace(/\/+$/, '');
    url.pathname = path === '' ? '/' : path;
    this.#commandUrl = url.href;
    url.pathname = `${path}/pipeline`;
    this.#pipelineUrl = url.href;
    url.pathname = `${path}/multi-exec`;
    this.#multiExecUrl = url.href;
  }

  /** This member timed out or dropped a connection: cancel its attempts for a while. */
  #suspect(): void {
    this.#cancellableUntil = Math.max(this.#cancellableUntil, performance.now() + CANCEL_WINDOW_MS);
  }

  /** An error after our own abort (or timer) is its doing, not the member's. */
  #aborted(
    by: 'timeout' | 'caller',
    started: number,
    timeoutMs: number,
    cause: unknown,
  ): AttemptOutcome {
    const member = this.name;
    if (by === 'caller') {
      return failed(
        started,
        member,
        'unknown-outcome',
        'aborted',
        `request to member "${member}" was aborted by the caller`,
        undefined,
        cause,
      );
    }
    this.#suspect();
    return failed(
      started,
      member,
      'unknown-outcome',
      'timeout',
      `member "${member}" did not answer within ${timeoutMs} ms`,
      undefined,
      cause === TIMED_OUT ? undefined : cause,
    );
  }

  get syncToken(): string {
    return this.#syncToken;
  }

  adoptSyncToken(token: string): void {
    // It goes into a header: one fetch would refuse must not get that far.
    if (this.#readYourWrites && token !== this.#syncToken && /^[\x21-\x7e]+$/.test(token)) {
      this.#syncToken = token;
      this.#headersWithToken = { ...this.#headers, [SYNC_TOKEN_HEADER]: token };
    }
  }

  async send(request: MemberRequest, options: SendOptions): Promise<AttemptOutcome> {
    const started = performance.now();
    const member = this.name;

    if (this.#urlProblem !== undefined) {
      return failed(started, member, 'config', 'wrong-url', this.#urlProblem);
    }
    const callerSignal = options.signal;
    if (callerSignal?.aborted) {
      // Nothing went out: reporting not-sent keeps a write from looking ambiguous.
      const message = `request to member "${member}" was not sent: the caller had already aborted`;
      return failed(
        started,
        member,
        'not-sent',
        'aborted',
        message,
        undefined,
        callerSignal.reason,
      );
    }

    let url: string;
    let body: string;
    if (request.kind === 'command') {
      url = this.#commandUrl;
      body = JSON.stringify(request.command);
    } else {
      url = request.kind === 'pipeline' ? this.#pipelineUrl : this.#multiExecUrl;
      body = JSON.stringify(request.commands);
    }
    const headers = this.#headersWithToken ?? this.#headers;

    const customFetch = this.#fetch;
    const timeoutMs = options.timeoutMs;
    // Lazy cancellation (see the module comment): a signal only for a member that failed lately,
    // or to pass the caller's abort on.
    const controller =
      callerSignal !== undefined || started < this.#cancellableUntil
        ? new AbortController()
        : undefined;
    let abortedBy: 'timeout' | 'caller' | undefined;
    // Rejects whichever stage (fetch, body read) is being awaited: the attempt ends on time with
    // no signal, and with a supplied fetch that ignores its signal.
    let expire: ((reason: unknown) => void) | undefined;
    const stop = (by: 'timeout' | 'caller', reason?: unknown) => {
      abortedBy ??= by;
      controller?.abort(reason);
      expire?.(reason ?? TIMED_OUT);
    };
    const onCallerAbort = callerSignal && (() => stop('caller', callerSignal.reason));
    if (onCallerAbort) callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => stop('timeout'), Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS))
      : undefined;
    const untilDone = <T>(promise: Promise<T>): Promise<T> =>
      timer === undefined && controller === undefined
        ? promise
        : new Promise<T>((resolve, reject) => {
            expire = reject;
            promise.then(resolve, reject);
          });
    try {
      let response: Response;
      const init: RequestInit = {
        method: 'POST',
        headers,
        body,
        // Following would hand the token to another URL, and 301/302 turn POST into GET.
        redirect: 'manual',
      };
      if (controller) init.signal = controller.signal;
      let sent: Promise<Response> | undefined;
      try {
        // Inside the try: a supplied fetch may throw instead of rejecting.
        sent = customFetch ? customFetch(url, init) : fetch(url, init);
        response = await untilDone(sent);
      } catch (err) {
        if (abortedBy !== undefined) {
          // Abandoned without a signal: free the connection if the member answers after all.
          if (!controller) sent?.then((late) => late.body?.cancel()).catch(() => undefined);
          return this.#aborted(abortedBy, started, timeoutMs, err);
        }
        const kind = classifyFetchError(err);
        if (kind === 'unknown-outcome') this.#suspect();
        // Neither the text nor the error itself may carry the token onwards.
        const leaks = quotes(err, this.#token);
        const detail = leaks ? 'fetch refused the request' : describeFetchError(err);
        const message =
          kind === 'not-sent'
            ? `member "${member}" is unreachable (${detail}); the request was not sent`
            : `connection to member "${member}" failed (${detail}); the request may or may not have run`;
        return failed(
          started,
          member,
          kind,
          'network',
          message,
          undefined,
          cleanCause(err, this.#token),
        );
      }

      const status = response.status;
      if (status >= 200 && status < 300 && this.#readYourWrites) {
        const token = response.headers.get(SYNC_TOKEN_HEADER);
        if (token) this.adoptSyncToken(token);
      }
      const early = classifyStatus(response, member, started);
      if (early !== undefined) {
        response.body?.cancel().catch(() => undefined);
        return early;
      }

      let text: string;
      const reading = response.text();
      try {
        text = await untilDone(reading);
      } catch (err) {
        if (abortedBy !== undefined) {
          reading.catch(() => undefined);
          return this.#aborted(abortedBy, started, timeoutMs, err);
        }
        this.#suspect();
        const message = `member "${member}" broke off its reply (${describeFetchError(err)}); the request may or may not have run`;
        return failed(
          started,
          member,
          'unknown-outcome',
          'network',
          message,
          status,
          cleanCause(err, this.#token),
        );
      }

      const reply = parseReply(request, text, this.#token);
      // 2xx: any REST reply. 4xx: only an `{error}`, the command error the caller gets as-is.
      if (reply !== undefined && (status < 300 || isErrorReply(reply))) {
        return { kind: 'ok', reply, status, latencyMs: performance.now() - started };
      }
      const message = `member "${member}" answered HTTP ${status} with a body that is not an Upstash REST reply; the request may or may not have run`;
      return failed(started, member, 'unknown-outcome', 'malformed-reply', message, status);
    } finally {
      clearTimeout(timer);
      if (onCallerAbort) callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }
}

/** Creates the transport for one member; its token and sync token go only to `member.url`. */
export function createRestTransport(
  member: RestMember,
  options: RestTransportOptions = {},
): MemberTransport {
  return new RestTransport(member, options);
}
