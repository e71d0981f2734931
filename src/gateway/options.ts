import type { AvailabilityEmulationOptions, GatewayOptions } from './types.js';

/**
 * Validation of `GatewayOptions` with errors that name the offending field (design 4.8), so a
 * typo fails at startup instead of as odd behaviour later. The CLI maps `field` to its flag.
 */
export class GatewayConfigError extends TypeError {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`GatewayOptions.${field} ${problem}`);
    this.name = 'GatewayConfigError';
  }
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxBodyBytes: 10 * 1024 * 1024,
  maxBatchCommands: 10_000,
  maxStreamBufferBytes: 32 * 1024 * 1024,
  poolSize: 4,
  backendTimeoutMs: 10_000,
  bdbUid: 1,
} as const;

/** Options with defaults applied. */
export interface ResolvedOptions {
  redisUrl: string;
  token: string;
  readonlyToken?: string;
  host: string;
  port: number;
  corsOrigins: string[];
  allow: string[];
  maxBodyBytes: number;
  maxBatchCommands: number;
  maxStreamBufferBytes: number;
  poolSize: number;
  backendTimeoutMs: number;
  availability?: AvailabilityEmulationOptions & { bdbUid: number };
  adminToken?: string;
}

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function secret(field: string, value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new GatewayConfigError(field, 'must be a non-empty string');
  }
  if (/\s/.test(value)) throw new GatewayConfigError(field, 'must not contain whitespace');
  return value;
}

function stringList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new GatewayConfigError(field, 'must be an array of non-empty strings');
  }
  return value as string[];
}

export function resolveOptions(options: GatewayOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new GatewayConfigError('(options)', 'must be an object');
  }
  let url: URL;
  try {
    url = new URL(String(options.redisUrl));
  } catch {
    throw new GatewayConfigError('redisUrl', 'must be a URL like redis://127.0.0.1:6379');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new GatewayConfigError('redisUrl', 'must use the redis:// or rediss:// scheme');
  }
  const token = secret('token', options.token, true)!;
  const readonlyToken = secret('readonlyToken', options.readonlyToken, false);
  if (readonlyToken === token) {
    throw new GatewayConfigError('readonlyToken', 'must differ from token');
  }
  const adminToken = secret('adminToken', options.adminToken, false);
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) {
    throw new GatewayConfigError('host', 'must be a non-empty string');
  }
  const port = options.port ?? DEFAULTS.port;
  if (!isInt(port, 0, 65535)) {
    throw new GatewayConfigError('port', 'must be an integer between 0 and 65535');
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  if (!isInt(maxBodyBytes, 1, 2 ** 31)) {
    throw new GatewayConfigError('maxBodyBytes', 'must be a positive integer');
  }
  const maxBatchCommands = options.maxBatchCommands ?? DEFAULTS.maxBatchCommands;
  if (!isInt(maxBatchCommands, 1, 2 ** 31)) {
    throw new GatewayConfigError('maxBatchCommands', 'must be a positive integer');
  }
  const maxStreamBufferBytes = options.maxStreamBufferBytes ?? DEFAULTS.maxStreamBufferBytes;
  if (!isInt(maxStreamBufferBytes, 1, 2 ** 31)) {
    throw new GatewayConfigError('maxStreamBufferBytes', 'must be a positive integer');
  }
  const poolSize = options.poolSize ?? DEFAULTS.poolSize;
  if (!isInt(poolSize, 1, 256)) {
    throw new GatewayConfigError('poolSize', 'must be an integer between 1 and 256');
  }
  const backendTimeoutMs = options.backendTimeoutMs ?? DEFAULTS.backendTimeoutMs;
  if (!isInt(backendTimeoutMs, 1, 600_000)) {
    throw new GatewayConfigError('backendTimeoutMs', 'must be an integer between 1 and 600000');
  }
  if (options.log !== undefined && typeof options.log !== 'function') {
    throw new GatewayConfigError('log', 'must be a function');
  }

  let availability: ResolvedOptions['availability'];
  const a = options.availability;
  if (a !== undefined) {
    if (typeof a !== 'object' || a === null) {
      throw new GatewayConfigError('availability', 'must be an object');
    }
    if (typeof a.username !== 'string' || a.username.length === 0 || a.username.includes(':')) {
      throw new GatewayConfigError(
        'availability.username',
        'must be a non-empty string without ":"',
      );
    }
    if (typeof a.password !== 'string' || a.password.length === 0) {
      throw new GatewayConfigError('availability.password', 'must be a non-empty string');
    }
    if (a.port !== undefined && !isInt(a.port, 0, 65535)) {
      throw new GatewayConfigError('availability.port', 'must be an integer between 0 and 65535');
    }
    const bdbUid = a.bdbUid ?? DEFAULTS.bdbUid;
    if (!isInt(bdbUid, 1, 2 ** 31)) {
      throw new GatewayConfigError('availability.bdbUid', 'must be a positive integer');
    }
    if (a.dnsName !== undefined && (typeof a.dnsName !== 'string' || a.dnsName.length === 0)) {
      throw new GatewayConfigError('availability.dnsName', 'must be a non-empty string');
    }
    availability = { ...a, bdbUid };
  }

  return {
    redisUrl: options.redisUrl,
    token,
    readonlyToken,
    host,
    port,
    corsOrigins: stringList('corsOrigins', options.corsOrigins),
    allow: stringList('allow', options.allow),
    maxBodyBytes,
    maxBatchCommands,
    maxStreamBufferBytes,
    poolSize,
    backendTimeoutMs,
    availability,
    adminToken,
  };
}
