// The only module that reads process.env. loadConfig() validates every variable once, with
// zod, and returns a frozen, typed Config; every problem is reported at once, by name.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

export type DatabaseFlavour = 'sqlite' | 'postgresql';

export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly issuer: string;
  readonly database: { readonly url: string; readonly flavour: DatabaseFlavour; readonly poolSize: number };
  /** Newest first. The first signs and encrypts; the others still verify and decrypt. */
  readonly secrets: readonly string[];
  /** Where a development secret was generated and kept, when that happened. */
  readonly generatedSecretFile: string | undefined;
  /** Express's `trust proxy` value; anything but `false` also makes the engine trust X-Forwarded-*. */
  readonly trustProxy: boolean | number | string;
  /** Lifetimes in seconds. */
  readonly ttl: {
    readonly accessToken: number;
    readonly idToken: number;
    readonly authorizationCode: number;
    readonly refreshToken: number;
    readonly session: number;
    readonly interaction: number;
    readonly grant: number;
    /** Refresh tokens never outlive this, counted from the sign-in that started the grant. */
    readonly refreshTokenAbsolute: number;
    readonly deviceCode: number;
  };
  readonly backchannelLogout: {
    readonly retryDelaysMs: readonly number[];
    readonly timeoutMs: number;
    readonly allowPrivateNetworks: boolean;
  };
  /** Protocol capabilities that can be turned off (or, for registration, on) per deployment. */
  readonly features: {
    readonly clientCredentials: boolean;
    readonly introspection: boolean;
    readonly revocation: boolean;
    readonly deviceFlow: boolean;
    readonly backchannelLogout: boolean;
    readonly pushedAuthorizationRequests: boolean;
    readonly requestObjects: boolean;
    readonly dpop: boolean;
    readonly registration: boolean;
  };
  /**
   * Accept authorization (and logout) requests as POST forms, as OpenID Connect Core requires.
   * The engine then needs SameSite=None session cookies.
   */
  readonly authorizationPost: boolean;
  readonly bcryptCost: number;
  /** New passwords (seed, admin, account page) need at least this many characters. */
  readonly passwordMinLength: number;
  /** Brute-force limits; counters live in the database, so every instance enforces them. */
  readonly bruteForce: {
    /** Failed sign-ins of one account within `windowSeconds` before it is locked. */
    readonly accountMaxFailures: number;
    /** Failed sign-ins from one IP address within `windowSeconds` before it is locked out. */
    readonly ipMaxFailures: number;
    readonly windowSeconds: number;
    readonly lockoutSeconds: number;
    /** Each failure so far adds this much delay to the next answer (increasing delay). */
    readonly delayStepMs: number;
    /** Failed client authentications of one client within `windowSeconds` before it is locked. */
    readonly clientMaxFailures: number;
  };
  /** Audit events older than this are deleted by the sweeper. */
  readonly auditRetentionSeconds: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly autoMigrate: boolean;
  /** Seconds between sweeps of expired artifacts; 0 turns the sweeper off. */
  readonly sweepIntervalSeconds: number;
  /** On SIGTERM/SIGINT, in-flight requests and pending work get this long before a forced exit. */
  readonly shutdownTimeoutSeconds: number;
  readonly demo: boolean;
  readonly seedFile: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** "3600", "90s", "15m", "12h", "14d" → seconds. */
function duration(example: string, { zeroMeansOff = false } = {}) {
  return z.string().trim().transform((value, ctx) => {
    const match = /^(\d+)\s*([smhd]?)$/.exec(value);
    const seconds = match ? Number(match[1]) * DURATION_UNITS[(match[2] || 's') as keyof typeof DURATION_UNITS] : NaN;
    if (!Number.isSafeInteger(seconds) || seconds < 0 || (seconds === 0 && !zeroMeansOff)) {
      const off = zeroMeansOff ? '0 (off) or ' : '';
      ctx.addIssue({ code: 'custom', message: `must be ${off}a positive duration in seconds or with a unit s/m/h/d (e.g. ${example})` });
      return z.NEVER;
    }
    return seconds;
  });
}

function boolean(example: string) {
  return z.string().trim().toLowerCase().transform((value, ctx) => {
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    ctx.addIssue({ code: 'custom', message: `must be true or false (e.g. ${example})` });
    return z.NEVER;
  });
}

function integer(min: number, max: number, example: string) {
  return z.string().trim().transform((value, ctx) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max} (e.g. ${example})` });
      return z.NEVER;
    }
    return n;
  });
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every variable Gatehouse reads: its schema, its default (as the string a person would
 * write) and one line for humans. `.env.example` documents exactly these (a test checks).
 */
export const VARIABLES = {
  NODE_ENV: {
    schema: z.enum(['development', 'production', 'test'], { message: 'must be development, production or test' }),
    default: 'development',
    doc: 'development (demo data, generated secret allowed) or production (strict).',
  },
  HOST: { schema: z.string().trim().min(1, 'must not be empty (e.g. 0.0.0.0)'), default: '0.0.0.0', doc: 'Interface to listen on.' },
  PORT: { schema: integer(0, 65535, '3000'), default: '3000', doc: 'TCP port to listen on.' },
  ISSUER: {
    schema: z.string().trim().optional(),
    default: undefined,
    doc: 'Public base URL, exactly as clients see it (https in production). Default outside production: http://localhost:$PORT.',
  },
  DATABASE_URL: {
    schema: z.string().trim(),
    default: 'file:./data/gatehouse.db',
    doc: 'file:./path.db for embedded SQLite, or postgresql://user:pass@host:5432/db for PostgreSQL.',
  },
  DATABASE_POOL_SIZE: { schema: integer(1, 200, '10'), default: '10', doc: 'PostgreSQL connections per instance.' },
  SECRETS: {
    schema: z.string().optional(),
    default: undefined,
    doc: 'Comma-separated secrets of 32+ characters, newest first. Sign cookies and encrypt signing keys at rest. Rotate by prepending a new one. Required in production.',
  },
  SECRETS_FILE: {
    schema: z.string().trim().min(1, 'must not be empty (e.g. ./data/dev-secret)'),
    default: './data/dev-secret',
    doc: 'Development only: where a generated secret is kept when SECRETS is unset.',
  },
  TRUST_PROXY: {
    schema: z.string().trim(),
    default: 'false',
    doc: 'false, true, a hop count, or comma-separated proxy addresses/subnets (Express "trust proxy"). Set behind a TLS-terminating proxy.',
  },
  ACCESS_TOKEN_TTL: { schema: duration('1h'), default: '1h', doc: 'Access token lifetime.' },
  ID_TOKEN_TTL: { schema: duration('1h'), default: '1h', doc: 'ID token lifetime.' },
  AUTHORIZATION_CODE_TTL: { schema: duration('60s'), default: '60s', doc: 'Authorization code lifetime.' },
  REFRESH_TOKEN_TTL: { schema: duration('14d'), default: '14d', doc: 'Refresh token lifetime.' },
  SESSION_TTL: { schema: duration('14d'), default: '14d', doc: 'Sign-in session lifetime.' },
  INTERACTION_TTL: { schema: duration('1h'), default: '1h', doc: 'How long a sign-in or consent page stays valid.' },
  GRANT_TTL: { schema: duration('365d'), default: '365d', doc: 'How long a consent (grant) is remembered.' },
  REFRESH_TOKEN_ABSOLUTE_TTL: {
    schema: duration('90d'),
    default: '90d',
    doc: 'Refresh tokens never outlive this, counted from the sign-in that started the grant, however often they rotate.',
  },
  DEVICE_CODE_TTL: { schema: duration('10m'), default: '10m', doc: 'How long a device code (RFC 8628) stays valid.' },
  FEATURE_CLIENT_CREDENTIALS: { schema: boolean('true'), default: 'true', doc: 'client_credentials grant for machine-to-machine clients (RFC 6749 4.4).' },
  FEATURE_INTROSPECTION: { schema: boolean('true'), default: 'true', doc: 'Token introspection at /token/introspection (RFC 7662).' },
  FEATURE_REVOCATION: { schema: boolean('true'), default: 'true', doc: 'Token revocation at /token/revocation (RFC 7009).' },
  FEATURE_DEVICE_FLOW: { schema: boolean('true'), default: 'true', doc: 'Device authorization grant at /device/auth and /device (RFC 8628).' },
  FEATURE_BACKCHANNEL_LOGOUT: { schema: boolean('true'), default: 'true', doc: 'OpenID Connect Back-Channel Logout 1.0 to clients that register a backchannel_logout_uri.' },
  BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS: {
    schema: z.string().trim().regex(/^(\d{1,6}(,\d{1,6}){0,9})?$/, 'must be up to 10 comma-separated millisecond delays, or empty for no retries (e.g. 1000,3000)'),
    default: '1000,3000',
    doc: 'Pauses before each retry of a failed back-channel logout delivery (one retry per entry).',
  },
  BACKCHANNEL_LOGOUT_TIMEOUT_MS: { schema: integer(100, 30_000, '2500'), default: '2500', doc: 'How long one back-channel logout delivery attempt may take.' },
  BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS: {
    schema: z.string().optional(),
    default: undefined,
    doc: 'Allow backchannel_logout_uri on loopback/private/link-local addresses. Default: false in production, true otherwise.',
  },
  FEATURE_PAR: { schema: boolean('true'), default: 'true', doc: 'Pushed authorization requests at /par (RFC 9126).' },
  FEATURE_REQUEST_OBJECTS: { schema: boolean('true'), default: 'true', doc: 'Signed request objects, the request parameter (JAR, RFC 9101).' },
  FEATURE_DPOP: { schema: boolean('true'), default: 'true', doc: 'DPoP sender-constrained tokens (RFC 9449).' },
  FEATURE_REGISTRATION: {
    schema: boolean('false'),
    default: 'false',
    doc: 'Dynamic client registration at /register (RFC 7591/7592), with an initial access token from `npm run cli -- initial-access-token create`.',
  },
  AUTHORIZATION_POST: {
    schema: z.string().optional(),
    default: undefined,
    doc: 'Accept POST at /authorize and /logout (OpenID Connect Core). Needs SameSite=None session cookies, which browsers keep only when Secure, so the default is true for an https ISSUER and false for http.',
  },
  PASSWORD_MIN_LENGTH: { schema: integer(8, 128, '10'), default: '10', doc: 'Minimum length of a new password.' },
  SIGN_IN_MAX_FAILURES_PER_ACCOUNT: { schema: integer(1, 1000, '5'), default: '5', doc: 'Failed sign-ins of one account within SIGN_IN_FAILURE_WINDOW before a temporary lockout.' },
  SIGN_IN_MAX_FAILURES_PER_IP: { schema: integer(1, 100_000, '20'), default: '20', doc: 'Failed sign-ins from one IP address within SIGN_IN_FAILURE_WINDOW before a temporary lockout.' },
  SIGN_IN_FAILURE_WINDOW: { schema: duration('15m'), default: '15m', doc: 'How long failed sign-ins and client authentications are counted.' },
  SIGN_IN_LOCKOUT: { schema: duration('15m'), default: '15m', doc: 'How long an account, IP address or client stays locked after too many failures.' },
  SIGN_IN_DELAY_STEP_MS: { schema: integer(0, 5000, '250'), default: '250', doc: 'Each recent failure adds this many milliseconds before the next answer (increasing delay).' },
  CLIENT_AUTH_MAX_FAILURES: { schema: integer(1, 100_000, '10'), default: '10', doc: 'Failed client authentications of one client within SIGN_IN_FAILURE_WINDOW before a temporary lockout.' },
  AUDIT_RETENTION: { schema: duration('90d'), default: '90d', doc: 'How long audit events are kept.' },
  BCRYPT_COST: { schema: integer(4, 15, '12'), default: '12', doc: 'bcrypt cost factor for password hashes.' },
  LOG_LEVEL: {
    schema: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }),
    default: 'info',
    doc: 'fatal, error, warn, info, debug, trace or silent.',
  },
  AUTO_MIGRATE: { schema: boolean('true'), default: 'true', doc: 'Apply pending database migrations at start-up.' },
  SWEEP_INTERVAL: {
    schema: duration('10m', { zeroMeansOff: true }),
    default: '10m',
    doc: 'How often expired codes, tokens and sessions are deleted; 0 turns the sweeper off.',
  },
  SHUTDOWN_TIMEOUT: { schema: duration('10s'), default: '10s', doc: 'On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway (code 1).' },
  DEMO: {
    schema: z.string().optional(),
    default: undefined,
    doc: 'Create and print a demo client and user at start-up. Default: true in development, refused in production.',
  },
  SEED_FILE: { schema: z.string().trim().min(1, 'must not be empty (e.g. prisma/seed.json)'), default: 'prisma/seed.json', doc: 'JSON file read by `npx prisma db seed`.' },
} as const;

type VariableName = keyof typeof VARIABLES;
type Env = Record<string, string | undefined>;

const EXAMPLES: Partial<Record<VariableName, string>> = {
  ISSUER: 'https://id.example.com',
  DATABASE_URL: 'postgresql://gatehouse:secret@127.0.0.1:5432/gatehouse',
  SECRETS: 'the output of `openssl rand -base64 32`',
  TRUST_PROXY: '1',
  DEMO: 'false',
};

function parseTrustProxy(value: string): boolean | number | string | undefined {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  const parts = value.split(',').map((p) => p.trim());
  const looksLikeAddress = (p: string) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(p) || ['loopback', 'linklocal', 'uniquelocal'].includes(p);
  return parts.every((p) => p && looksLikeAddress(p)) ? parts.join(',') : undefined;
}

/** Validates the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env, options: { cwd?: string } = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const raw = {} as Record<VariableName, unknown>;
  for (const [name, variable] of Object.entries(VARIABLES) as [VariableName, (typeof VARIABLES)[VariableName]][]) {
    const given = env[name];
    const value = given === undefined || given === '' ? variable.default : given;
    const result = (variable.schema as z.ZodType).safeParse(value);
    if (result.success) raw[name] = result.data;
    else problems.push(`${name}: ${result.error.issues[0]?.message ?? 'is invalid'}${EXAMPLES[name] ? ` (e.g. ${EXAMPLES[name]})` : ''}`);
  }
  // The checks below combine variables; each runs only when its own inputs parsed, so one
  // run reports every problem.
  const nodeEnv = raw.NODE_ENV as Config['nodeEnv'];
  const production = nodeEnv === 'production' || (env.NODE_ENV ?? '').trim() === 'production';
  const port = raw.PORT as number;

  // ISSUER
  let issuer = (raw.ISSUER as string | undefined) || (production ? undefined : `http://localhost:${port ?? 3000}`);
  if (!issuer) {
    problems.push(`ISSUER: is required in production (e.g. ${EXAMPLES.ISSUER})`);
  } else {
    let url: URL | undefined;
    try {
      url = new URL(issuer);
    } catch {
      problems.push(`ISSUER: must be an absolute URL (e.g. ${EXAMPLES.ISSUER})`);
    }
    if (url) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`ISSUER: must be an http(s) URL (e.g. ${EXAMPLES.ISSUER})`);
      else if (production && url.protocol !== 'https:') problems.push(`ISSUER: must be an https URL in production (e.g. ${EXAMPLES.ISSUER})`);
      if (url.search || url.hash) problems.push(`ISSUER: must not have a query or fragment (e.g. ${EXAMPLES.ISSUER})`);
      issuer = url.href.replace(/\/$/, '');
    }
  }

  // DATABASE_URL
  const databaseUrl = raw.DATABASE_URL as string;
  let flavour: DatabaseFlavour | undefined;
  if (databaseUrl === undefined) flavour = undefined;
  else if (/^file:.+/.test(databaseUrl)) flavour = 'sqlite';
  else if (/^postgres(ql)?:\/\/.+/.test(databaseUrl)) flavour = 'postgresql';
  else problems.push(`DATABASE_URL: must start with file: (SQLite) or postgresql:// (e.g. file:./data/gatehouse.db or ${EXAMPLES.DATABASE_URL})`);

  // SECRETS
  let secrets: string[] = [];
  let generatedSecretFile: string | undefined;
  const secretsValue = (raw.SECRETS as string | undefined)?.trim();
  if (secretsValue) {
    secrets = secretsValue.split(',').map((s) => s.trim());
    secrets.forEach((secret, i) => {
      if (secret.length < 32) problems.push(`SECRETS: secret #${i + 1} is ${secret.length} characters; each needs at least 32 (e.g. ${EXAMPLES.SECRETS})`);
    });
  } else if (production) {
    problems.push(`SECRETS: is required in production (e.g. ${EXAMPLES.SECRETS})`);
  } else if (raw.SECRETS_FILE !== undefined) {
    generatedSecretFile = resolve(cwd, raw.SECRETS_FILE as string);
  }

  // TRUST_PROXY
  const trustProxy = raw.TRUST_PROXY === undefined ? false : parseTrustProxy(raw.TRUST_PROXY as string);
  if (trustProxy === undefined) problems.push(`TRUST_PROXY: must be true, false, a hop count or proxy addresses (e.g. ${EXAMPLES.TRUST_PROXY} or 10.0.0.0/8)`);

  // Gatehouse listens on plain HTTP, so an https issuer in production means a TLS-terminating
  // proxy in front: without trusting it, cookies would lack Secure (and SameSite=None ones
  // would be dropped by browsers) and discovery would name http endpoints.
  if (production && issuer?.startsWith('https:') && trustProxy === false) {
    problems.push('TRUST_PROXY: must be set when ISSUER is https in production, to trust the TLS-terminating proxy in front of Gatehouse (e.g. 1)');
  }

  // AUTHORIZATION_POST
  let authorizationPost = issuer?.startsWith('https:') ?? false;
  const postValue = raw.AUTHORIZATION_POST as string | undefined;
  if (postValue !== undefined && postValue !== '') {
    const parsed = boolean('true').safeParse(postValue);
    if (!parsed.success) problems.push('AUTHORIZATION_POST: must be true or false (e.g. true)');
    else authorizationPost = parsed.data;
  }

  // BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS
  let allowPrivateNetworks = !production;
  const privateValue = raw.BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS as string | undefined;
  if (privateValue !== undefined && privateValue !== '') {
    const parsed = boolean('false').safeParse(privateValue);
    if (!parsed.success) problems.push('BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS: must be true or false (e.g. false)');
    else allowPrivateNetworks = parsed.data;
  }

  // DEMO
  let demo = !production && nodeEnv !== 'test';
  const demoValue = raw.DEMO as string | undefined;
  if (demoValue !== undefined && demoValue !== '') {
    const parsed = boolean('false').safeParse(demoValue);
    if (!parsed.success) problems.push(`DEMO: must be true or false (e.g. ${EXAMPLES.DEMO})`);
    else demo = parsed.data;
  }
  if (demo && production) problems.push('DEMO: the demo client and user are for development only; unset DEMO or set DEMO=false in production');

  if (problems.length) throw new ConfigError(problems);
  // Only once everything is valid, so a refused start leaves no file behind.
  if (generatedSecretFile) secrets = [readOrCreateDevSecret(generatedSecretFile)];

  return deepFreeze({
    nodeEnv,
    host: raw.HOST as string,
    port,
    issuer: issuer as string,
    database: { url: databaseUrl, flavour: flavour as DatabaseFlavour, poolSize: raw.DATABASE_POOL_SIZE as number },
    secrets,
    generatedSecretFile,
    trustProxy: trustProxy as Config['trustProxy'],
    ttl: {
      accessToken: raw.ACCESS_TOKEN_TTL as number,
      idToken: raw.ID_TOKEN_TTL as number,
      authorizationCode: raw.AUTHORIZATION_CODE_TTL as number,
      refreshToken: raw.REFRESH_TOKEN_TTL as number,
      session: raw.SESSION_TTL as number,
      interaction: raw.INTERACTION_TTL as number,
      grant: raw.GRANT_TTL as number,
      refreshTokenAbsolute: raw.REFRESH_TOKEN_ABSOLUTE_TTL as number,
      deviceCode: raw.DEVICE_CODE_TTL as number,
    },
    backchannelLogout: {
      retryDelaysMs: (raw.BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS as string).split(',').filter(Boolean).map(Number),
      timeoutMs: raw.BACKCHANNEL_LOGOUT_TIMEOUT_MS as number,
      allowPrivateNetworks,
    },
    features: {
      clientCredentials: raw.FEATURE_CLIENT_CREDENTIALS as boolean,
      introspection: raw.FEATURE_INTROSPECTION as boolean,
      revocation: raw.FEATURE_REVOCATION as boolean,
      deviceFlow: raw.FEATURE_DEVICE_FLOW as boolean,
      backchannelLogout: raw.FEATURE_BACKCHANNEL_LOGOUT as boolean,
      pushedAuthorizationRequests: raw.FEATURE_PAR as boolean,
      requestObjects: raw.FEATURE_REQUEST_OBJECTS as boolean,
      dpop: raw.FEATURE_DPOP as boolean,
      registration: raw.FEATURE_REGISTRATION as boolean,
    },
    authorizationPost,
    bcryptCost: raw.BCRYPT_COST as number,
    passwordMinLength: raw.PASSWORD_MIN_LENGTH as number,
    bruteForce: {
      accountMaxFailures: raw.SIGN_IN_MAX_FAILURES_PER_ACCOUNT as number,
      ipMaxFailures: raw.SIGN_IN_MAX_FAILURES_PER_IP as number,
      windowSeconds: raw.SIGN_IN_FAILURE_WINDOW as number,
      lockoutSeconds: raw.SIGN_IN_LOCKOUT as number,
      delayStepMs: raw.SIGN_IN_DELAY_STEP_MS as number,
      clientMaxFailures: raw.CLIENT_AUTH_MAX_FAILURES as number,
    },
    auditRetentionSeconds: raw.AUDIT_RETENTION as number,
    logLevel: raw.LOG_LEVEL as Config['logLevel'],
    autoMigrate: raw.AUTO_MIGRATE as boolean,
    sweepIntervalSeconds: raw.SWEEP_INTERVAL as number,
    shutdownTimeoutSeconds: raw.SHUTDOWN_TIMEOUT as number,
    demo,
    seedFile: resolve(cwd, raw.SEED_FILE as string),
  });
}

/** Development only: one random secret, generated on first start and kept in a file. */
function readOrCreateDevSecret(file: string): string {
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret.length >= 32) return secret;
  }
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
