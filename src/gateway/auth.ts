import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Credential checks. Secrets are compared as SHA-256 digests with `timingSafeEqual`: digests
 * have a fixed length, so neither the content nor the length of a token leaks through timing.
 */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** A secret held only as its digest. */
export class Secret {
  private readonly hash: Buffer;
  constructor(value: string) {
    this.hash = digest(value);
  }
  matches(candidate: string | undefined): boolean {
    // Hash even when absent, so "no credential" costs the same as a wrong one.
    return timingSafeEqual(this.hash, digest(candidate ?? '')) && candidate !== undefined;
  }
}

/** What a REST token is allowed to do. */
export type Role = 'full' | 'readonly';

/** Token from `Authorization: Bearer <t>`, else from `?_token=<t>` (Upstash accepts both). */
export function presentedToken(authorization: string | undefined, url: URL): string | undefined {
  const bearer = bearerToken(authorization);
  if (bearer !== undefined) return bearer;
  return url.searchParams.get('_token') ?? undefined;
}

export function bearerToken(authorization: string | undefined): string | undefined {
  const match = authorization?.match(/^\s*Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/** The REST tokens: the full one and an optional read-only one. */
export class TokenAuth {
  private readonly full: Secret;
  private readonly readOnly?: Secret;

  constructor(token: string, readonlyToken?: string) {
    this.full = new Secret(token);
    if (readonlyToken) this.readOnly = new Secret(readonlyToken);
  }

  /** The role the presented token grants, or `null` (401). */
  role(candidate: string | undefined): Role | null {
    // Both comparisons always run, so timing does not tell which token (if any) matched.
    const isFull = this.full.matches(candidate);
    const isReadonly = this.readOnly?.matches(candidate) ?? false;
    if (isFull) return 'full';
    return isReadonly ? 'readonly' : null;
  }
}

/** HTTP Basic credentials (the availability API's scheme). */
export class BasicAuth {
  private readonly user: Secret;
  private readonly password: Secret;

  constructor(username: string, password: string) {
    this.user = new Secret(username);
    this.password = new Secret(password);
  }

  check(authorization: string | undefined): boolean {
    const match = authorization?.match(/^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
    let user: string | undefined;
    let password: string | undefined;
    if (match?.[1]) {
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) {
        user = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    const userOk = this.user.matches(user);
    const passwordOk = this.password.matches(password);
    return userOk && passwordOk;
  }
}
