// The only module that reads process.env (and the CONFIG_FILE it names). loadConfig() validates
// every variable once, with zod, and returns a frozen, typed Config; every problem is reported
// at once, by name. A configuration file sets the same variables under structured keys
// (CONFIG_FILE_LAYOUT); the environment wins over it.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';

export type DatabaseFlavour = 'sqlite' | 'postgresql';

/** The languages the pages are written in; each has a catalogue in src/http/messages/. */
export const SUPPORTED_LANGUAGES = ['en', 'ko'] as const;
export type Language = (typeof SUPPORTED_LANGUAGES)[number];

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
  /** How long a client read from the database is reused; other instances' client edits reach this one within it. 0: never cached. */
  readonly clientCacheSeconds: number;
  /** On SIGTERM/SIGINT, in-flight requests and pending work get this long before a forced exit. */
  readonly shutdownTimeoutSeconds: number;
  /** Worker processes serving HTTP on this machine (src/cluster.ts); 1: no workers, this process serves. */
  readonly webConcurrency: number;
  /** `port` set: /metrics is served there, not on the public port (http/metrics.ts). */
  readonly metrics: { readonly port: number | undefined; readonly host: string };
  readonly demo: boolean;
  readonly seedFile: string;
  /** Signing key lifecycle (keys/signing-keys.ts, keys/refresher.ts), in seconds. */
  readonly keys: {
    /** How often each instance re-reads the signing keys; 0: only at start. */
    readonly refreshIntervalSeconds: number;
    /** How long a rotated-in key is only published before it signs. */
    readonly activationDelaySeconds: number;
    /** Rotate automatically when the newest key is this old; 0: never. */
    readonly rotationIntervalSeconds: number;
  };
  /** The pages' language when neither ui_locales nor Accept-Language names one we have. */
  readonly defaultLanguage: Language;
  /** How the sign-in, consent and account pages look. Paths are absolute. */
  readonly branding: {
    readonly productName: string;
    readonly logoUrl: string | undefined;
    /** A logo image served from this server at /assets/brand-logo (wins over logoUrl). */
    readonly logoFile: string | undefined;
    /** A CSS hex colour (#rgb or #rrggbb). */
    readonly primaryColor: string;
    readonly supportUrl: string | undefined;
    /** A stylesheet served after Gatehouse's own. */
    readonly cssFile: string | undefined;
    /** A folder whose EJS templates replace the built-in ones of the same name. */
    readonly templatesDir: string | undefined;
  };
  /** The configuration file read (absolute path), if any. */
  readonly configFile: string | undefined;
  /** Each variable's value as given (or its default) and where it came from; see describeEffectiveConfig. */
  readonly settings: Readonly<Record<VariableName, { readonly value: string | undefined; readonly source: SettingSource }>>;
}

/** Where a setting's value came from: the environment wins over the file, the file over the default. */
export type SettingSource = 'env' | 'file' | 'default';

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

/** More workers than this on one machine is a configuration mistake, not a plan. */
const MAX_WORKERS = 64;

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
  HOST: { schema: z.string().trim().min(1, 'must not be empty (e.g. 0.0.0.0)').optional(), default: undefined, doc: 'Interface to listen on. Default: 127.0.0.1 (this machine only) outside production, 0.0.0.0 in production.' },
  PORT: { schema: integer(0, 65535, '3000'), default: '3000', doc: 'TCP port to listen on.' },
  METRICS_PORT: {
    schema: integer(1, 65535, '9464').optional(),
    default: undefined,
    doc: 'Serve /metrics on this port only (not on PORT). With WEB_CONCURRENCY > 1, the primary answers there with every worker\'s metrics added up. Unset: /metrics is on PORT, per process.',
  },
  METRICS_HOST: { schema: z.string().trim().min(1, 'must not be empty (e.g. 127.0.0.1)').optional(), default: undefined, doc: 'Interface for METRICS_PORT. Default: HOST.' },
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
  CLIENT_CACHE_TTL: {
    schema: duration('5s', { zeroMeansOff: true }),
    default: '5s',
    doc: 'How long each instance reuses a client it read from the database. Edits made by this instance apply at once; edits made elsewhere (another instance, the CLI) within this time. 0 reads the client on every request.',
  },
  SHUTDOWN_TIMEOUT: { schema: duration('10s'), default: '10s', doc: 'On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway (code 1).' },
  WEB_CONCURRENCY: {
    schema: z.string().trim().toLowerCase().transform((value, ctx) => {
      if (value === 'auto') return Math.min(availableParallelism(), MAX_WORKERS);
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1 || n > MAX_WORKERS) {
        ctx.addIssue({ code: 'custom', message: `must be auto (one per CPU) or a whole number from 1 to ${MAX_WORKERS} (e.g. 4)` });
        return z.NEVER;
      }
      return n;
    }),
    default: '1',
    doc: 'Worker processes serving HTTP on one port (node:cluster); auto: one per CPU. 1: a single process, no workers.',
  },
  DEMO: {
    schema: z.string().optional(),
    default: undefined,
    doc: 'Create and print a demo client and user at start-up. Default: true in development, refused in production.',
  },
  SEED_FILE: { schema: z.string().trim().min(1, 'must not be empty (e.g. prisma/seed.json)'), default: 'prisma/seed.json', doc: 'JSON file read by `npx prisma db seed`.' },
  KEY_REFRESH_INTERVAL: {
    schema: duration('30s', { zeroMeansOff: true }),
    default: '30s',
    doc: 'How often each instance re-reads the signing keys, so a rotation reaches it without a restart; 0: only at start (rotations, activations and scheduled rotation then wait for a restart).',
  },
  KEY_ACTIVATION_DELAY: {
    schema: duration('1h', { zeroMeansOff: true }),
    default: '1h',
    doc: 'How long a rotated-in key is only published in /jwks before it signs; at least KEY_REFRESH_INTERVAL plus how long relying parties cache /jwks.',
  },
  KEY_ROTATION_INTERVAL: {
    schema: duration('90d', { zeroMeansOff: true }),
    default: '0',
    doc: 'Rotate the signing keys automatically when the newest is this old (e.g. 90d); 0: only by `keys rotate`.',
  },
  CONFIG_FILE: {
    schema: z.string().trim().optional(),
    default: undefined,
    doc: 'A JSON or YAML file with structured settings (see README "Configuration file"); variables set in the environment win over it.',
  },
  DEFAULT_LANGUAGE: {
    schema: z.enum(SUPPORTED_LANGUAGES, { message: `must be one of ${SUPPORTED_LANGUAGES.join(', ')}` }),
    default: 'en',
    doc: 'Language of the pages when neither the ui_locales parameter nor Accept-Language names one we have: en or ko.',
  },
  BRAND_NAME: { schema: z.string().trim().min(1, 'must not be empty (e.g. Acme ID)').max(60, 'must be at most 60 characters (e.g. Acme ID)'), default: 'Gatehouse', doc: 'Product name shown on the pages.' },
  BRAND_LOGO_URL: { schema: z.string().trim().optional(), default: undefined, doc: 'Logo shown on the pages: an https URL or a path on this server.' },
  BRAND_LOGO_FILE: { schema: z.string().trim().optional(), default: undefined, doc: 'A logo image file (svg, png, webp, jpeg or gif) served by Gatehouse itself; wins over BRAND_LOGO_URL.' },
  BRAND_PRIMARY_COLOR: {
    schema: z.string().trim().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be a hex colour (e.g. #1d4ed8)'),
    default: '#1d4ed8',
    doc: 'Colour of buttons and links, as #rrggbb.',
  },
  BRAND_SUPPORT_URL: { schema: z.string().trim().optional(), default: undefined, doc: 'Where the pages send people for help: an http(s) or mailto: URL.' },
  BRAND_CSS_FILE: { schema: z.string().trim().optional(), default: undefined, doc: 'A stylesheet served after the built-in one.' },
  BRAND_TEMPLATES_DIR: { schema: z.string().trim().optional(), default: undefined, doc: 'A folder of EJS templates that replace the built-in ones of the same name.' },
} as const;

export type VariableName = keyof typeof VARIABLES;
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

type FileLayout = { readonly [key: string]: VariableName | FileLayout };

/**
 * Where each variable lives in a CONFIG_FILE (JSON, or YAML for .yaml/.yml). A value from the
 * file goes through the variable's own schema in VARIABLES, so the file accepts exactly what
 * the environment accepts (numbers and true/false may be written bare, lists as arrays), and
 * a variable set in the environment wins. Secrets, the database URL, NODE_ENV and variables
 * not listed here are environment-only.
 */
export const CONFIG_FILE_LAYOUT = {
  server: { host: 'HOST', port: 'PORT', metricsHost: 'METRICS_HOST', metricsPort: 'METRICS_PORT', issuer: 'ISSUER', trustProxy: 'TRUST_PROXY', authorizationPost: 'AUTHORIZATION_POST', shutdownTimeout: 'SHUTDOWN_TIMEOUT', workers: 'WEB_CONCURRENCY' },
  database: { poolSize: 'DATABASE_POOL_SIZE', autoMigrate: 'AUTO_MIGRATE', sweepInterval: 'SWEEP_INTERVAL' },
  lifetimes: {
    accessToken: 'ACCESS_TOKEN_TTL',
    idToken: 'ID_TOKEN_TTL',
    authorizationCode: 'AUTHORIZATION_CODE_TTL',
    refreshToken: 'REFRESH_TOKEN_TTL',
    refreshTokenAbsolute: 'REFRESH_TOKEN_ABSOLUTE_TTL',
    session: 'SESSION_TTL',
    interaction: 'INTERACTION_TTL',
    grant: 'GRANT_TTL',
    deviceCode: 'DEVICE_CODE_TTL',
  },
  features: {
    clientCredentials: 'FEATURE_CLIENT_CREDENTIALS',
    introspection: 'FEATURE_INTROSPECTION',
    revocation: 'FEATURE_REVOCATION',
    deviceFlow: 'FEATURE_DEVICE_FLOW',
    backchannelLogout: 'FEATURE_BACKCHANNEL_LOGOUT',
    pushedAuthorizationRequests: 'FEATURE_PAR',
    requestObjects: 'FEATURE_REQUEST_OBJECTS',
    dpop: 'FEATURE_DPOP',
    registration: 'FEATURE_REGISTRATION',
  },
  backchannelLogout: { retryDelaysMs: 'BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS', timeoutMs: 'BACKCHANNEL_LOGOUT_TIMEOUT_MS', allowPrivateNetworks: 'BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS' },
  passwords: { minLength: 'PASSWORD_MIN_LENGTH', bcryptCost: 'BCRYPT_COST' },
  bruteForce: {
    accountMaxFailures: 'SIGN_IN_MAX_FAILURES_PER_ACCOUNT',
    ipMaxFailures: 'SIGN_IN_MAX_FAILURES_PER_IP',
    failureWindow: 'SIGN_IN_FAILURE_WINDOW',
    lockout: 'SIGN_IN_LOCKOUT',
    delayStepMs: 'SIGN_IN_DELAY_STEP_MS',
    clientMaxFailures: 'CLIENT_AUTH_MAX_FAILURES',
  },
  keys: { refreshInterval: 'KEY_REFRESH_INTERVAL', activationDelay: 'KEY_ACTIVATION_DELAY', rotationInterval: 'KEY_ROTATION_INTERVAL' },
  defaultLanguage: 'DEFAULT_LANGUAGE',
  branding: { productName: 'BRAND_NAME', logoUrl: 'BRAND_LOGO_URL', logoFile: 'BRAND_LOGO_FILE', primaryColor: 'BRAND_PRIMARY_COLOR', supportUrl: 'BRAND_SUPPORT_URL', cssFile: 'BRAND_CSS_FILE', templatesDir: 'BRAND_TEMPLATES_DIR' },
  auditRetention: 'AUDIT_RETENTION',
  logLevel: 'LOG_LEVEL',
  demo: 'DEMO',
  seedFile: 'SEED_FILE',
} as const satisfies FileLayout;

/** Keys people will try that are deliberately environment-only, and what to do instead. */
const ENVIRONMENT_ONLY_HINTS: Record<string, string> = {
  secrets: 'secrets stay out of files: set SECRETS in the environment',
  'database.url': 'connection strings carry passwords: set DATABASE_URL in the environment',
  nodeEnv: 'set NODE_ENV in the environment',
};

/** The dotted file key of each variable the file may set. */
const FILE_KEY_OF: Partial<Record<VariableName, string>> = {};
(function index(layout: FileLayout, prefix: string) {
  for (const [key, inner] of Object.entries(layout)) {
    if (typeof inner === 'string') FILE_KEY_OF[inner] = `${prefix}${key}`;
    else index(inner, `${prefix}${key}.`);
  }
})(CONFIG_FILE_LAYOUT, '');

const fileLeaf = z
  .union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))], { message: 'must be a string, a number, true/false or a list of them' })
  .transform((value) => (Array.isArray(value) ? value.join(',') : String(value)));

function fileSchemaOf(layout: FileLayout): z.ZodType {
  return z.strictObject(Object.fromEntries(Object.entries(layout).map(([key, inner]) => [key, (typeof inner === 'string' ? fileLeaf : fileSchemaOf(inner)).optional()])));
}

/** The shape of a configuration file (values are then checked by each variable's schema). */
export const CONFIG_FILE_SCHEMA = fileSchemaOf(CONFIG_FILE_LAYOUT);

function layoutAt(path: readonly PropertyKey[]): FileLayout | undefined {
  let layout: FileLayout | VariableName = CONFIG_FILE_LAYOUT;
  for (const key of path) {
    if (typeof layout === 'string') return undefined;
    layout = layout[String(key)] as FileLayout | VariableName;
  }
  return typeof layout === 'string' ? undefined : layout;
}

/** Reads CONFIG_FILE into variable values; every problem names the file and the key path. */
function readConfigFile(file: string): { values: Partial<Record<VariableName, string>>; problems: string[] } {
  const values: Partial<Record<VariableName, string>> = {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`;
    return { values, problems: [`CONFIG_FILE: ${file} ${reason} (e.g. ./gatehouse.yaml)`] };
  }
  let parsed: unknown;
  const yamlFile = /\.ya?ml$/i.test(file);
  if (!yamlFile && !/\.json$/i.test(file)) return { values, problems: [`CONFIG_FILE: ${file} must end in .json, .yaml or .yml (e.g. ./gatehouse.yaml)`] };
  try {
    parsed = yamlFile ? (YAML.parse(text) ?? {}) : JSON.parse(text);
  } catch (error) {
    return { values, problems: [`${file}: is not valid ${yamlFile ? 'YAML' : 'JSON'}: ${(error as Error).message.split('\n')[0]}`] };
  }
  const result = CONFIG_FILE_SCHEMA.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const known = Object.keys(layoutAt(issue.path) ?? {}).join(', ');
        return issue.keys.map((key) => {
          const path = [...issue.path, key].join('.');
          return `${file}: ${path}: ${ENVIRONMENT_ONLY_HINTS[path] ?? `unknown setting (known here: ${known})`}`;
        });
      }
      const group = layoutAt(issue.path);
      const where = issue.path.length ? issue.path.join('.') : '(top level)';
      if (group && issue.code === 'invalid_type') return [`${file}: ${where}: must be an object with keys among ${Object.keys(group).join(', ')}`];
      return [`${file}: ${where}: ${issue.message}`];
    });
    return { values, problems };
  }
  (function collect(layout: FileLayout, node: Record<string, unknown>) {
    for (const [key, inner] of Object.entries(layout)) {
      const value = node[key];
      if (value === undefined) continue;
      if (typeof inner === 'string') values[inner] = value as string;
      else collect(inner, value as Record<string, unknown>);
    }
  })(CONFIG_FILE_LAYOUT, result.data as Record<string, unknown>);
  return { values, problems: [] };
}

/** Validates the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env, options: { cwd?: string } = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const raw = {} as Record<VariableName, unknown>;
  const configFile = env.CONFIG_FILE?.trim() ? resolve(cwd, env.CONFIG_FILE.trim()) : undefined;
  const file = configFile ? readConfigFile(configFile) : { values: {} as Partial<Record<VariableName, string>>, problems: [] };
  problems.push(...file.problems);
  const settings = {} as Record<VariableName, { value: string | undefined; source: SettingSource }>;
  for (const [name, variable] of Object.entries(VARIABLES) as [VariableName, (typeof VARIABLES)[VariableName]][]) {
    const given = env[name];
    const source: SettingSource = given !== undefined && given !== '' ? 'env' : file.values[name] !== undefined ? 'file' : 'default';
    const value = source === 'env' ? given : source === 'file' ? file.values[name] : variable.default;
    settings[name] = { value, source };
    const result = (variable.schema as z.ZodType).safeParse(value);
    if (result.success) raw[name] = result.data;
    else if (source === 'file') problems.push(`${configFile}: ${FILE_KEY_OF[name]}: ${result.error.issues[0]?.message ?? 'is invalid'} (or set ${name})`);
    else problems.push(`${name}: ${result.error.issues[0]?.message ?? 'is invalid'}${EXAMPLES[name] ? ` (e.g. ${EXAMPLES[name]})` : ''}`);
  }
  /** Relative paths in the file are relative to the file; in the environment, to the working directory. */
  const pathOf = (name: VariableName, value: string) => resolve(settings[name].source === 'file' && configFile ? dirname(configFile) : cwd, value);
  // The checks below combine variables; each runs only when its own inputs parsed, so one
  // run reports every problem.
  const nodeEnv = raw.NODE_ENV as Config['nodeEnv'];
  const production = nodeEnv === 'production' || (env.NODE_ENV ?? '').trim() === 'production';
  const port = raw.PORT as number;
  const host = (raw.HOST as string | undefined) ?? (production ? '0.0.0.0' : '127.0.0.1');
  if (raw.METRICS_PORT !== undefined && raw.METRICS_PORT === port) problems.push(`METRICS_PORT: must differ from PORT (${port}), or be left unset to serve /metrics on PORT`);
  if (raw.METRICS_HOST !== undefined && raw.METRICS_PORT === undefined) problems.push('METRICS_HOST: applies only with METRICS_PORT (e.g. METRICS_PORT=9464); set both or neither');

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

  // KEY_ACTIVATION_DELAY: every instance must have published a new key before any signs with it.
  const keyRefresh = raw.KEY_REFRESH_INTERVAL as number | undefined;
  const keyActivation = raw.KEY_ACTIVATION_DELAY as number | undefined;
  if (production && keyRefresh !== undefined && keyActivation !== undefined && keyRefresh > 0 && keyActivation < keyRefresh) {
    problems.push(`KEY_ACTIVATION_DELAY: must be at least KEY_REFRESH_INTERVAL (${keyRefresh}s) in production, so every instance publishes a new key before any signs with it (e.g. 1h)`);
  }
  const keyRotation = raw.KEY_ROTATION_INTERVAL as number | undefined;
  if (keyRotation !== undefined && keyActivation !== undefined && keyRotation > 0 && keyRotation <= keyActivation) {
    problems.push(`KEY_ROTATION_INTERVAL: must be longer than KEY_ACTIVATION_DELAY (${keyActivation}s), or each key would be replaced before it ever signs (e.g. 90d)`);
  }

  // BRAND_*: URLs the pages link to and files they load.
  const logoUrl = (raw.BRAND_LOGO_URL as string | undefined) || undefined;
  if (logoUrl && !(/^\/(?!\/)/.test(logoUrl) || (URL.canParse(logoUrl) && (new URL(logoUrl).protocol === 'https:' || (!production && new URL(logoUrl).protocol === 'http:'))))) {
    problems.push('BRAND_LOGO_URL: must be an https URL or a path on this server (e.g. https://cdn.example.com/logo.svg or /assets/logo.svg)');
  }
  const supportUrl = (raw.BRAND_SUPPORT_URL as string | undefined) || undefined;
  if (supportUrl && !(URL.canParse(supportUrl) && ['https:', 'http:', 'mailto:'].includes(new URL(supportUrl).protocol))) {
    problems.push('BRAND_SUPPORT_URL: must be an http(s) or mailto: URL (e.g. https://help.example.com or mailto:help@example.com)');
  }
  const logoValue = (raw.BRAND_LOGO_FILE as string | undefined) || undefined;
  const logoFile = logoValue ? pathOf('BRAND_LOGO_FILE', logoValue) : undefined;
  if (logoFile && !(/\.(svg|png|webp|jpe?g|gif)$/i.test(logoFile) && existsSync(logoFile) && statSync(logoFile).isFile())) {
    problems.push(`BRAND_LOGO_FILE: ${logoFile} is not an svg, png, webp, jpeg or gif file (e.g. ./branding/logo.svg)`);
  }
  const cssValue = (raw.BRAND_CSS_FILE as string | undefined) || undefined;
  const cssFile = cssValue ? pathOf('BRAND_CSS_FILE', cssValue) : undefined;
  if (cssFile && !(existsSync(cssFile) && statSync(cssFile).isFile())) problems.push(`BRAND_CSS_FILE: ${cssFile} is not a file (e.g. ./branding/site.css)`);
  const templatesValue = (raw.BRAND_TEMPLATES_DIR as string | undefined) || undefined;
  const templatesDir = templatesValue ? pathOf('BRAND_TEMPLATES_DIR', templatesValue) : undefined;
  if (templatesDir && !(existsSync(templatesDir) && statSync(templatesDir).isDirectory())) problems.push(`BRAND_TEMPLATES_DIR: ${templatesDir} is not a folder (e.g. ./branding/views)`);

  if (problems.length) throw new ConfigError(problems);
  // Only once everything is valid, so a refused start leaves no file behind.
  if (generatedSecretFile) secrets = [readOrCreateDevSecret(generatedSecretFile)];

  return deepFreeze({
    nodeEnv,
    host,
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
    clientCacheSeconds: raw.CLIENT_CACHE_TTL as number,
    shutdownTimeoutSeconds: raw.SHUTDOWN_TIMEOUT as number,
    webConcurrency: raw.WEB_CONCURRENCY as number,
    metrics: { port: raw.METRICS_PORT as number | undefined, host: (raw.METRICS_HOST as string | undefined) ?? host },
    demo,
    seedFile: pathOf('SEED_FILE', raw.SEED_FILE as string),
    keys: {
      refreshIntervalSeconds: raw.KEY_REFRESH_INTERVAL as number,
      activationDelaySeconds: raw.KEY_ACTIVATION_DELAY as number,
      rotationIntervalSeconds: raw.KEY_ROTATION_INTERVAL as number,
    },
    defaultLanguage: raw.DEFAULT_LANGUAGE as Language,
    branding: {
      productName: raw.BRAND_NAME as string,
      logoUrl,
      logoFile,
      primaryColor: raw.BRAND_PRIMARY_COLOR as string,
      supportUrl,
      cssFile,
      templatesDir,
    },
    configFile,
    settings,
  });
}

/** One line of `gatehouse config check`. */
export interface EffectiveSetting {
  /** The environment variable. */
  readonly name: VariableName;
  /** Its key in a configuration file; undefined when it is environment-only. */
  readonly fileKey: string | undefined;
  /** The value in effect, as text; secrets masked. */
  readonly value: string;
  readonly source: SettingSource;
  readonly masked: boolean;
}

const MASK = '********';

/** postgresql://user:pass@host/db → postgresql://user:********@host/db (and a password= parameter). */
function maskDatabaseUrl(url: string): { value: string; masked: boolean } {
  if (url.startsWith('file:')) return { value: url, masked: false };
  // Not a URL the parser accepts (an unencoded @ in the password, say): mask all it might hide.
  if (!URL.canParse(url)) return { value: `${url.split(':')[0]}://${MASK}`, masked: true };
  const parsed = new URL(url);
  let masked = false;
  if (parsed.password) {
    parsed.password = MASK;
    masked = true;
  }
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass|secret|key/i.test(key)) {
      parsed.searchParams.set(key, MASK);
      masked = true;
    }
  }
  return { value: parsed.href, masked };
}

/** Settings whose default depends on other settings: their value in effect, read from the Config. */
function derivedValue(name: VariableName, config: Config): string | undefined {
  switch (name) {
    case 'HOST':
      return config.host;
    case 'ISSUER':
      return config.issuer;
    case 'AUTHORIZATION_POST':
      return String(config.authorizationPost);
    case 'DEMO':
      return String(config.demo);
    case 'BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS':
      return String(config.backchannelLogout.allowPrivateNetworks);
    case 'SECRETS':
      return config.secrets.length ? `(generated, in ${config.generatedSecretFile ?? 'SECRETS_FILE'})` : undefined;
    case 'CONFIG_FILE':
      return config.configFile;
    default:
      return undefined;
  }
}

/**
 * The configuration in effect, one entry per variable, with where each value came from
 * (environment, file or default). SECRETS never appears (only how many there are) and a
 * database password is masked. `gatehouse config check` prints formatEffectiveConfig() of it.
 */
export function describeEffectiveConfig(config: Config): EffectiveSetting[] {
  return (Object.keys(VARIABLES) as VariableName[]).map((name) => {
    const setting = config.settings[name] ?? { value: undefined, source: 'default' as const };
    let value = setting.value === undefined || setting.value === '' ? derivedValue(name, config) ?? '(unset)' : setting.value;
    let masked = false;
    if (name === 'SECRETS' && setting.source !== 'default') {
      value = `${MASK} (${config.secrets.length} secret${config.secrets.length === 1 ? '' : 's'})`;
      masked = true;
    } else if (name === 'DATABASE_URL') {
      ({ value, masked } = maskDatabaseUrl(value));
    }
    return { name, fileKey: FILE_KEY_OF[name], value, source: setting.source, masked };
  });
}

/** describeEffectiveConfig as aligned text: name, value, source (and file key). */
export function formatEffectiveConfig(settings: readonly EffectiveSetting[]): string {
  const width = Math.max(...settings.map((s) => s.name.length));
  return settings.map((s) => `${s.name.padEnd(width)}  ${s.value}  [${s.source}${s.fileKey ? `; file key ${s.fileKey}` : ''}]`).join('\n');
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
