// Every setting Gatehouse reads, in one table whose shape is the Config shape and the
// configuration file's shape: `ttl.accessToken` is `config.ttl.accessToken`, the file key
// `ttl.accessToken` and the variable ACCESS_TOKEN_TTL. Each row names its environment variable,
// its parser (zod), its default as a person would write it, and one line for humans;
// `.env.example` documents exactly these variables (a test checks). The Config type is inferred
// from the table. Durations are seconds in Config; names ending in Ms are milliseconds.
import { z } from 'zod';
import {
  boolean,
  booleanOrUnset,
  databaseUrl,
  duration,
  integer,
  millisecondList,
  domainList,
  optionalText,
  secretList,
  smtpUrl,
  supportUrl,
  text,
  trustProxy,
  workerCount,
  type DatabaseFlavour,
} from './parsers.js';

/**
 * One row of the table. T is the value's type in Config: the parser's output, unless the row says
 * `resolvedAs<T>()` because its value is worked out after parsing (resolve.ts).
 */
export class Setting<N extends string = string, S extends z.ZodType = z.ZodType, T = z.output<S>> {
  /** Only a type: the value's type in Config. */
  declare readonly value: T;

  constructor(
    readonly env: N,
    readonly schema: S,
    /** The default, as the text a person would write; undefined: none, or worked out from other settings. */
    readonly fallback: string | undefined,
    readonly doc: string,
    /** Why a configuration file may not set it (shown to who tries); undefined when it may. */
    readonly environmentOnlyBecause?: string,
  ) {}

  get inFile(): boolean {
    return this.environmentOnlyBecause === undefined;
  }

  /** The configuration file may not set it; `reason` is shown to who tries. */
  environmentOnly(reason = `set ${this.env} in the environment`): Setting<N, S, T> {
    return new Setting(this.env, this.schema, this.fallback, this.doc, reason);
  }

  /** Its value in Config is worked out after parsing, from other settings too, and has type U. */
  resolvedAs<U>(): Setting<N, S, U> {
    return this as unknown as Setting<N, S, U>;
  }
}

function setting<N extends string, S extends z.ZodType>(env: N, schema: S, fallback: string | undefined, doc: string): Setting<N, S> {
  return new Setting(env, schema, fallback, doc);
}

/** The languages the pages are written in; each has a catalogue in src/http/messages/. */
export const SUPPORTED_LANGUAGES = ['en', 'ko'] as const;
export type Language = (typeof SUPPORTED_LANGUAGES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const SETTINGS = {
  nodeEnv: setting(
    'NODE_ENV',
    z.enum(['development', 'production', 'test'], { message: 'must be development, production or test' }),
    'development',
    'development (demo data, generated secret allowed) or production (strict).',
  ).environmentOnly(),
  server: {
    host: setting('HOST', text('0.0.0.0').optional(), undefined, 'Interface to listen on. Default: 127.0.0.1 (this machine only) outside production, 0.0.0.0 in production.').resolvedAs<string>(),
    port: setting('PORT', integer(0, 65535, '3000'), '3000', 'TCP port to listen on.'),
    /** Express's `trust proxy` value: which X-Forwarded-* senders to believe (http/app.ts tells the engine only what Express decided). */
    trustProxy: setting(
      'TRUST_PROXY',
      trustProxy,
      'false',
      'false, true, a hop count, or comma-separated proxy addresses/subnets (Express "trust proxy"). Set behind a TLS-terminating proxy.',
    ),
    /** Accept authorization (and logout) requests as POST forms; the engine then needs SameSite=None session cookies. */
    authorizationPost: setting(
      'AUTHORIZATION_POST',
      booleanOrUnset('true'),
      undefined,
      'Accept POST at /authorize and /logout (OpenID Connect Core). Needs SameSite=None session cookies, which browsers keep only when Secure, so the default is true for an https ISSUER and false for http.',
    ).resolvedAs<boolean>(),
    shutdownTimeout: setting('SHUTDOWN_TIMEOUT', duration('10s'), '10s', 'On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway (code 1).'),
    /** Processes serving HTTP on this machine (src/cluster.ts); 1: no workers, this process serves. */
    workers: setting('WEB_CONCURRENCY', workerCount, '1', 'Worker processes serving HTTP on one port (node:cluster); auto: one per CPU. 1: a single process, no workers.'),
    /** Linux: the nice value of every thread of a serving process but its event loop's (src/thread-priority.ts). */
    helperThreadNice: setting(
      'HELPER_THREAD_NICE',
      integer(0, 19, '10'),
      '10',
      "Linux: the nice value (0-19) of a serving process's helper threads (bcrypt, RSA signing, garbage collection, SQLite checkpoints), so that on a machine whose cores are all busy they give way to the event loop every request waits for. 0: leave them at the event loop's.",
    ),
  },
  /** `port` set: /metrics is served there, not on the public port (http/metrics.ts). */
  metrics: {
    port: setting(
      'METRICS_PORT',
      integer(1, 65535, '9464').optional(),
      undefined,
      "Serve /metrics on this port only (not on PORT). With WEB_CONCURRENCY > 1, the primary answers there with every worker's metrics added up. Unset: /metrics is on PORT, per process.",
    ),
    host: setting('METRICS_HOST', text('127.0.0.1').optional(), undefined, 'Interface for METRICS_PORT. Default: HOST.').resolvedAs<string>(),
  },
  issuer: setting(
    'ISSUER',
    optionalText,
    undefined,
    'Public base URL, exactly as clients see it (https in production). Default outside production: http://localhost:$PORT.',
  ).resolvedAs<string>(),
  database: {
    url: setting(
      'DATABASE_URL',
      databaseUrl,
      'file:./data/gatehouse.db',
      'file:./path.db for embedded SQLite, or postgresql://user:pass@host:5432/db for PostgreSQL.',
    ).environmentOnly('connection strings carry passwords: set DATABASE_URL in the environment'),
    poolSize: setting('DATABASE_POOL_SIZE', integer(1, 200, '10'), '10', 'PostgreSQL connections per instance in the pool; each instance opens five more for the hot statements (one for reads, four for grouped writes, all pipelined).'),
    /** Off: the hot statements (db/executor.ts, db/pg-executor.ts) are prepared on each use, unnamed on PostgreSQL and all through the pool. */
    preparedStatements: setting(
      'DATABASE_PREPARED_STATEMENTS',
      boolean('true'),
      'true',
      'Keep the hot statements prepared (named statements on PostgreSQL, the reads pipelined on a connection of their own, the writes of one event-loop turn grouped in one transaction). Set false behind a pooler in transaction mode without prepared-statement support (PgBouncer before 1.21, or max_prepared_statements = 0): every statement then goes through the pool, unnamed.',
    ),
    autoMigrate: setting('AUTO_MIGRATE', boolean('true'), 'true', 'Apply pending database migrations at start-up.'),
    /** 0 turns the sweeper off. */
    sweepInterval: setting('SWEEP_INTERVAL', duration('10m', { zeroMeansOff: true }), '10m', 'How often expired codes, tokens and sessions are deleted; 0 turns the sweeper off.'),
  },
  /** Newest first. The first signs and encrypts; the others still verify and decrypt. */
  secrets: setting(
    'SECRETS',
    secretList,
    undefined,
    'Comma-separated secrets of 32+ characters, newest first. Sign cookies and encrypt signing keys at rest. Rotate by prepending a new one. Required in production.',
  ).environmentOnly('secrets stay out of files: set SECRETS in the environment'),
  /** Absolute. */
  secretsFile: setting('SECRETS_FILE', text('./data/dev-secret'), './data/dev-secret', 'Development only: where a generated secret is kept when SECRETS is unset.').environmentOnly(),
  ttl: {
    accessToken: setting('ACCESS_TOKEN_TTL', duration('1h'), '1h', 'Access token lifetime.'),
    idToken: setting('ID_TOKEN_TTL', duration('1h'), '1h', 'ID token lifetime.'),
    authorizationCode: setting('AUTHORIZATION_CODE_TTL', duration('60s'), '60s', 'Authorization code lifetime.'),
    refreshToken: setting('REFRESH_TOKEN_TTL', duration('14d'), '14d', 'Refresh token lifetime.'),
    refreshTokenAbsolute: setting(
      'REFRESH_TOKEN_ABSOLUTE_TTL',
      duration('90d'),
      '90d',
      'Refresh tokens never outlive this, counted from the sign-in that started the grant, however often they rotate.',
    ),
    session: setting('SESSION_TTL', duration('14d'), '14d', 'Sign-in session lifetime.'),
    interaction: setting('INTERACTION_TTL', duration('1h'), '1h', 'How long a sign-in or consent page stays valid.'),
    grant: setting('GRANT_TTL', duration('365d'), '365d', 'How long a consent (grant) is remembered.'),
    deviceCode: setting('DEVICE_CODE_TTL', duration('10m'), '10m', 'How long a device code (RFC 8628) stays valid.'),
  },
  /** Protocol capabilities that can be turned off (or, for registration, on) per deployment. */
  features: {
    clientCredentials: setting('FEATURE_CLIENT_CREDENTIALS', boolean('true'), 'true', 'client_credentials grant for machine-to-machine clients (RFC 6749 4.4).'),
    introspection: setting('FEATURE_INTROSPECTION', boolean('true'), 'true', 'Token introspection at /token/introspection (RFC 7662).'),
    revocation: setting('FEATURE_REVOCATION', boolean('true'), 'true', 'Token revocation at /token/revocation (RFC 7009).'),
    deviceFlow: setting('FEATURE_DEVICE_FLOW', boolean('true'), 'true', 'Device authorization grant at /device/auth and /device (RFC 8628).'),
    backchannelLogout: setting('FEATURE_BACKCHANNEL_LOGOUT', boolean('true'), 'true', 'OpenID Connect Back-Channel Logout 1.0 to clients that register a backchannel_logout_uri.'),
    pushedAuthorizationRequests: setting('FEATURE_PAR', boolean('true'), 'true', 'Pushed authorization requests at /par (RFC 9126).'),
    requestObjects: setting('FEATURE_REQUEST_OBJECTS', boolean('true'), 'true', 'Signed request objects, the request parameter (JAR, RFC 9101).'),
    dpop: setting('FEATURE_DPOP', boolean('true'), 'true', 'DPoP sender-constrained tokens (RFC 9449).'),
    registration: setting(
      'FEATURE_REGISTRATION',
      boolean('false'),
      'false',
      'Dynamic client registration at /register (RFC 7591/7592), with an initial access token from `npm run cli -- initial-access-token create`.',
    ),
  },
  backchannelLogout: {
    retryDelaysMs: setting('BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS', millisecondList, '1000,3000', 'Pauses before each retry of a failed back-channel logout delivery (one retry per entry).'),
    timeoutMs: setting('BACKCHANNEL_LOGOUT_TIMEOUT_MS', integer(100, 30_000, '2500'), '2500', 'How long one back-channel logout delivery attempt may take.'),
    allowPrivateNetworks: setting(
      'BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS',
      booleanOrUnset('false'),
      undefined,
      'Allow backchannel_logout_uri on loopback/private/link-local addresses. Default: false in production, true otherwise.',
    ).resolvedAs<boolean>(),
  },
  passwords: {
    /** New passwords (seed, admin, account page) need at least this many characters. */
    minLength: setting('PASSWORD_MIN_LENGTH', integer(8, 128, '10'), '10', 'Minimum length of a new password.'),
    bcryptCost: setting('BCRYPT_COST', integer(4, 15, '12'), '12', 'bcrypt cost factor for password hashes.'),
  },
  /** WebAuthn (people/passkeys.ts): the relying-party ID passkeys are bound to. */
  passkeys: {
    rpId: setting(
      'PASSKEY_RP_ID',
      optionalText,
      undefined,
      "Relying-party ID passkeys are bound to: the ISSUER's host by default; may be a parent domain of it (e.g. example.com for id.example.com) so passkeys also work on sibling hosts. Changing it later makes existing passkeys unusable.",
    ).resolvedAs<string>(),
  },
  /** Brute-force limits; counters live in the database, so every instance enforces them. */
  bruteForce: {
    accountMaxFailures: setting('SIGN_IN_MAX_FAILURES_PER_ACCOUNT', integer(1, 1000, '5'), '5', 'Failed sign-ins of one account within SIGN_IN_FAILURE_WINDOW before a temporary lockout; wrong second-factor codes count the same way, apart.'),
    ipMaxFailures: setting('SIGN_IN_MAX_FAILURES_PER_IP', integer(1, 100_000, '20'), '20', 'Failed sign-ins from one IP address within SIGN_IN_FAILURE_WINDOW before a temporary lockout.'),
    failureWindow: setting('SIGN_IN_FAILURE_WINDOW', duration('15m'), '15m', 'How long failed sign-ins and client authentications are counted.'),
    lockout: setting('SIGN_IN_LOCKOUT', duration('15m'), '15m', 'How long an account, IP address or client stays locked after too many failures.'),
    delayStepMs: setting('SIGN_IN_DELAY_STEP_MS', integer(0, 5000, '250'), '250', 'Each recent failure adds this many milliseconds before the next answer (increasing delay).'),
    clientMaxFailures: setting('CLIENT_AUTH_MAX_FAILURES', integer(1, 100_000, '10'), '10', 'Failed client authentications of one client from one address within SIGN_IN_FAILURE_WINDOW before that address is locked out for that client.'),
  },
  /** Sending mail (src/mail/): the SMTP server, the sender, and the outbox every mail and back-channel logout goes through. */
  mail: {
    /** Unset: mails are written to `dir` as .eml files (refused in production when a feature needs mail). */
    smtpUrl: setting(
      'SMTP_URL',
      smtpUrl,
      undefined,
      'smtp://user:pass@host:587 (STARTTLS, required) or smtps://user:pass@host:465 (TLS); certificates are verified. Unset outside production: mails are written to MAIL_DIR.',
    ).environmentOnly('connection strings carry passwords: set SMTP_URL in the environment'),
    from: setting('MAIL_FROM', optionalText, undefined, 'Sender of every mail, e.g. "Acme ID <id@acme.example>". Default: BRAND_NAME <no-reply@the ISSUER host>.').resolvedAs<string>(),
    timeout: setting('SMTP_TIMEOUT', duration('10s'), '10s', 'How long connecting to the SMTP server, its greeting and each exchange may take.'),
    allowPlaintext: setting(
      'SMTP_ALLOW_PLAINTEXT',
      boolean('false'),
      'false',
      'Let smtp:// send without STARTTLS when the server offers none (a mail catcher such as Mailpit, a relay on this machine). Never with credentials over a network you do not trust.',
    ),
    dir: setting('MAIL_DIR', text('./data/mail'), './data/mail', 'Without SMTP_URL (development only): where each mail is written as an .eml file.'),
    pollInterval: setting('OUTBOX_POLL_INTERVAL', duration('5s'), '5s', 'How often each instance looks for mails and back-channel logouts to send (also at once after its own requests add one).'),
    lease: setting('OUTBOX_LEASE', duration('2m'), '2m', 'How long an instance may take to send a message it claimed before another may claim it (an instance killed mid-send loses nothing).'),
    maxAttempts: setting('MAIL_MAX_ATTEMPTS', integer(1, 50, '8'), '8', 'Attempts at delivering one mail before it is marked failed.'),
    retryDelayMs: setting('MAIL_RETRY_DELAY_MS', integer(10, 3_600_000, '30000'), '30000', 'Pause before the first retry of a mail, in milliseconds; it doubles with each attempt, up to an hour.'),
  },
  /** Self-service recovery by mail (people/password-reset.ts). */
  recovery: {
    passwordReset: setting(
      'PASSWORD_RESET',
      booleanOrUnset('true'),
      undefined,
      '"Forgot your password?" on the sign-in page. Default: true outside production; in production, true when SMTP_URL is set.',
    ).resolvedAs<boolean>(),
    resetTtl: setting('PASSWORD_RESET_TTL', duration('30m'), '30m', 'How long a password reset link stays valid.'),
    requireVerifiedEmail: setting('REQUIRE_VERIFIED_EMAIL', boolean('false'), 'false', 'Refuse sign-in to an app until the person has verified their email address by its mailed link (with a rate-limited "send the link again" button).'),
    verificationTtl: setting('EMAIL_VERIFICATION_TTL', duration('24h'), '24h', 'How long a link that verifies an email address stays valid.'),
    invitationTtl: setting('INVITATION_TTL', duration('7d'), '7d', 'How long an invitation\'s link stays valid (sending it again starts a new one).'),
    maxPerAddress: setting('MAIL_LINKS_PER_ADDRESS', integer(1, 1000, '3'), '3', 'Reset links one address may be sent within MAIL_LINK_WINDOW; beyond, requests are answered the same and send nothing.'),
    maxPerIp: setting('MAIL_LINKS_PER_IP', integer(1, 100_000, '20'), '20', 'Reset requests one IP address may make within MAIL_LINK_WINDOW.'),
    window: setting('MAIL_LINK_WINDOW', duration('1h'), '1h', 'The window MAIL_LINKS_PER_ADDRESS and MAIL_LINKS_PER_IP count in.'),
  },
  /** Self-service sign-up (people/sign-up.ts). */
  signUp: {
    mode: setting('SIGNUP', z.enum(['closed', 'invite', 'open'], { message: 'must be closed, invite or open' }), 'closed', 'closed: no sign-up; invite: only through an invitation; open: the sign-in page offers "Create an account" (the new account verifies its address by mail before its first sign-in to an app).'),
    domains: setting('SIGNUP_DOMAINS', domainList, undefined, 'Comma-separated email domains sign-up accepts (e.g. example.com,example.org); unset: any domain.'),
    maxPerIp: setting('SIGNUPS_PER_IP', integer(1, 100_000, '5'), '5', 'Sign-up attempts one IP address may make within MAIL_LINK_WINDOW.'),
  },
  /** The admin console at /console (http/console/). */
  console: {
    adminGroup: setting(
      'ADMIN_GROUP',
      z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/, 'must be a group name (e.g. admins)'),
      'admins',
      'The group whose members may use the admin console at /console (checked on every request).',
    ),
    requireMfa: setting('CONSOLE_REQUIRE_MFA', boolean('true'), 'true', 'Signing in to the console needs two-step verification (an admin without one is led to set it up); a console session without it is refused.'),
    sessionTtl: setting('CONSOLE_SESSION_TTL', duration('15m'), '15m', 'A console session ends after this long unused; signing in again asks for the password and second factor.'),
    sessionAbsoluteTtl: setting('CONSOLE_SESSION_ABSOLUTE_TTL', duration('4h'), '4h', 'A console session ends this long after its sign-in, however busy.'),
  },
  auditRetention: setting('AUDIT_RETENTION', duration('90d'), '90d', 'How long audit events are kept.'),
  logLevel: setting('LOG_LEVEL', z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }), 'info', 'fatal, error, warn, info, debug, trace or silent.'),
  /** Other instances' client, resource and upstream-provider edits reach this one within it; 0: never cached. */
  clientCache: setting(
    'CLIENT_CACHE_TTL',
    duration('5s', { zeroMeansOff: true }),
    '5s',
    "How long each instance reuses a client, a resource (API), or the sign-in page's list of upstream providers, read from the database. Edits made by this instance apply at once; edits made elsewhere (another instance, the CLI) within this time. 0 reads them on every request.",
  ),
  demo: setting('DEMO', booleanOrUnset('false'), undefined, 'Create and print a demo client and user at start-up. Default: true in development, refused in production.').resolvedAs<boolean>(),
  /** Absolute. */
  seedFile: setting('SEED_FILE', text('prisma/seed.json'), 'prisma/seed.json', 'JSON file read by `npx prisma db seed`.'),
  /** Signing key lifecycle (keys/signing-keys.ts, keys/refresher.ts). */
  keys: {
    refreshInterval: setting(
      'KEY_REFRESH_INTERVAL',
      duration('30s', { zeroMeansOff: true }),
      '30s',
      'How often each instance re-reads the signing keys, so a rotation reaches it without a restart; 0: only at start (rotations, activations and scheduled rotation then wait for a restart).',
    ),
    activationDelay: setting(
      'KEY_ACTIVATION_DELAY',
      duration('1h', { zeroMeansOff: true }),
      '1h',
      'How long a rotated-in key is only published in /jwks before it signs; at least KEY_REFRESH_INTERVAL plus how long relying parties cache /jwks.',
    ),
    rotationInterval: setting(
      'KEY_ROTATION_INTERVAL',
      duration('90d', { zeroMeansOff: true }),
      '0',
      'Rotate the signing keys automatically when the newest is this old (e.g. 90d); 0: only by `keys rotate`.',
    ),
  },
  /** The configuration file read (absolute), if any. */
  configFile: setting(
    'CONFIG_FILE',
    optionalText,
    undefined,
    'A JSON or YAML file with structured settings (see README "Configuration file"); variables set in the environment win over it.',
  ).environmentOnly(),
  /** The pages' language when neither ui_locales nor Accept-Language names one we have. */
  defaultLanguage: setting(
    'DEFAULT_LANGUAGE',
    z.enum(SUPPORTED_LANGUAGES, { message: `must be one of ${SUPPORTED_LANGUAGES.join(', ')}` }),
    'en',
    'Language of the pages when neither the ui_locales parameter nor Accept-Language names one we have: en or ko.',
  ),
  /** How the sign-in, consent and account pages look. Paths are absolute. */
  branding: {
    productName: setting('BRAND_NAME', text('Acme ID').max(60, 'must be at most 60 characters (e.g. Acme ID)'), 'Gatehouse', 'Product name shown on the pages.'),
    logoUrl: setting('BRAND_LOGO_URL', optionalText, undefined, 'Logo shown on the pages: an https URL or a path on this server.'),
    /** Served from this server at /assets/brand-logo; wins over logoUrl. */
    logoFile: setting('BRAND_LOGO_FILE', optionalText, undefined, 'A logo image file (svg, png, webp, jpeg or gif) served by Gatehouse itself; wins over BRAND_LOGO_URL.'),
    primaryColor: setting('BRAND_PRIMARY_COLOR', z.string().trim().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be a hex colour (e.g. #1d4ed8)'), '#1d4ed8', 'Colour of buttons and links, as #rrggbb.'),
    supportUrl: setting('BRAND_SUPPORT_URL', supportUrl, undefined, 'Where the pages send people for help: an http(s) or mailto: URL.'),
    /** A stylesheet served after Gatehouse's own. */
    cssFile: setting('BRAND_CSS_FILE', optionalText, undefined, 'A stylesheet served after the built-in one.'),
    /** Its EJS templates replace the built-in ones of the same name. */
    templatesDir: setting('BRAND_TEMPLATES_DIR', optionalText, undefined, 'A folder of EJS templates that replace the built-in ones of the same name.'),
  },
} satisfies SettingsTable;

export interface SettingsTable {
  readonly [key: string]: Setting | SettingsTable;
}

/** A row with its key: the Config path, which is also its configuration file key. */
export interface SettingRow {
  readonly key: string;
  readonly setting: Setting;
}

function rowsOf(table: SettingsTable, prefix = ''): SettingRow[] {
  return Object.entries(table).flatMap(([key, entry]) => (entry instanceof Setting ? [{ key: `${prefix}${key}`, setting: entry }] : rowsOf(entry, `${prefix}${key}.`)));
}

/** Every row, in table order (the order `config check` prints them in). */
export const SETTING_ROWS: readonly SettingRow[] = rowsOf(SETTINGS);

type Frozen<V> = V extends readonly (infer E)[] ? readonly E[] : V;
/** Each row's value in Config, group by group. */
type ValuesOf<T> = T extends Setting<string, z.ZodType, infer V> ? Frozen<V> : { readonly [K in keyof T]: ValuesOf<T[K]> };
/** Each row's parsed value, before the resolution step; `Missing` stands for a value that did not parse. */
export type ParsedValues<T = typeof SETTINGS, Missing = never> =
  T extends Setting<string, infer S, unknown> ? z.output<S> | Missing : { [K in keyof T]: ParsedValues<T[K], Missing> };
type VariablesOf<T> = T extends Setting<infer N, z.ZodType, unknown> ? N : { [K in keyof T]: VariablesOf<T[K]> }[keyof T];

/** An environment variable Gatehouse reads. */
export type VariableName = VariablesOf<typeof SETTINGS>;

/** Where a setting's value came from: the environment wins over the file, the file over the default. */
export type SettingSource = 'env' | 'file' | 'default';

export type { DatabaseFlavour };

/** The settings, typed by the table, plus the few values worked out from them. Deeply frozen. */
export type Config = ValuesOf<typeof SETTINGS> & {
  readonly database: { readonly flavour: DatabaseFlavour };
  /** Where a development secret was generated and kept (secretsFile), when that happened. */
  readonly generatedSecretFile: string | undefined;
  /** Each variable's value as given (or its default) and where it came from; see describeEffectiveConfig. */
  readonly sources: Readonly<Record<VariableName, { readonly value: string | undefined; readonly source: SettingSource }>>;
  /** What the configuration file still says the old way (the old key still works). */
  readonly warnings: readonly string[];
};
