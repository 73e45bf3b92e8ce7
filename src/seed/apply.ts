// Seeding: a JSON file of clients and users, validated whole (every problem named by entry
// and field), then written in one transaction so a run either applies everything or nothing.
// Re-running the same file changes nothing: clients compare by metadata and by verifying their
// stored secret, users by field and by bcrypt.compare, so hashes do not churn.
//
// bcrypt lives here rather than behind people/accounts.ts because db/ must not import oidc/; client
// secrets need SECRETS and the engine's rules, so the caller hands in how to seal them
// (clients/secrets.ts `clientSecretSealing`).
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import { z } from 'zod';
import type { Prisma as PrismaNamespace } from '../generated/sqlite/client.js';
import type { Db } from '../db/client.js';
import type { ClientMetadata } from '../clients/store.js';
import { checkPassword, DEFAULT_PASSWORD_MIN_LENGTH } from '../people/password-policy.js';
import { normalizeEmail, profileColumnsOf, type User, type UserProfile } from '../people/store.js';

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code'] as const;
const RESPONSE_TYPES = ['code', 'id_token', 'code id_token', 'none'] as const;
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'] as const;
const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const;
/** RFC 7591 §2: a client without token_endpoint_auth_method authenticates with client_secret_basic. */
export const DEFAULT_AUTH_METHOD = 'client_secret_basic';
export const SECRET_AUTH_METHODS: readonly string[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'];
/** RFC 6749 §3.3 scope-token characters. */
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

const oneOf = (values: readonly string[]) => `must be one of ${values.join(', ')}`;
/** For a required field's type check: says so when the field is missing altogether. */
const required = (message: string) => (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : message);

function isHttpUrl(value: string, { fragment }: { fragment: boolean }): boolean {
  const url = URL.canParse(value) ? new URL(value) : null;
  return !!url && (url.protocol === 'https:' || url.protocol === 'http:') && !!url.hostname && (fragment || !value.includes('#'));
}

const httpUrl = (message = 'must be an absolute http(s) URL') =>
  z.string({ error: message }).refine((v) => isHttpUrl(v, { fragment: true }), message);

const redirectUrl = () => {
  const message = 'must be an absolute http(s) URL without a fragment';
  return z.string({ error: message }).refine((v) => isHttpUrl(v, { fragment: false }), message);
};

const text = (max = 255) => z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

/** A non-empty list of distinct values. */
const list = <T extends z.ZodType<string>>(item: T, what: string, { isRequired = false } = {}) =>
  z
    .array(item, { error: isRequired ? required(`must be an array of ${what}s`) : `must be an array of ${what}s` })
    .min(1, `must list at least one ${what}`)
    .refine((values) => new Set(values).size === values.length, 'must not repeat a value');

/**
 * A client's RFC 7591 metadata as Gatehouse accepts it (the seed file and the admin API share it).
 * Without `client_id` and `client_secret`: callers add those their own way.
 */
export const CLIENT_METADATA_FIELDS = {
  client_name: text().optional(),
  redirect_uris: list(redirectUrl(), 'absolute http(s) URL').optional(),
  post_logout_redirect_uris: z.array(redirectUrl(), { error: 'must be an array of absolute http(s) URLs' }).optional(),
  grant_types: list(z.enum(GRANT_TYPES, { error: oneOf(GRANT_TYPES) }), 'grant type').optional(),
  // Empty for clients that never use the authorization endpoint (client_credentials, device).
  response_types: z
    .array(z.enum(RESPONSE_TYPES, { error: oneOf(RESPONSE_TYPES) }), { error: 'must be an array of response types' })
    .refine((values) => new Set(values).size === values.length, 'must not repeat a value')
    .optional(),
  token_endpoint_auth_method: z.enum(AUTH_METHODS, { error: oneOf(AUTH_METHODS) }).optional(),
  scope: z.string({ error: 'must be a string' }).regex(SCOPE, 'must be scope names separated by single spaces (e.g. "openid profile email")').optional(),
  client_uri: httpUrl().optional(),
  logo_uri: httpUrl().optional(),
  policy_uri: httpUrl().optional(),
  tos_uri: httpUrl().optional(),
  application_type: z.enum(['web', 'native'], { error: 'must be web or native' }).optional(),
  jwks_uri: httpUrl().optional(),
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown()), { error: 'must be an array of JWKs' }).min(1, 'must list at least one key') }, { error: 'must be a JWK Set ({ "keys": [...] })' }).optional(),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS, { error: oneOf(SIGNING_ALGS) }).optional(),
  subject_type: z.enum(['public', 'pairwise'], { error: 'must be public or pairwise' }).optional(),
  sector_identifier_uri: httpUrl().optional(),
  backchannel_logout_uri: redirectUrl().optional(),
  backchannel_logout_session_required: z.boolean({ error: 'must be true or false' }).optional(),
  require_pushed_authorization_requests: z.boolean({ error: 'must be true or false' }).optional(),
  require_signed_request_object: z.boolean({ error: 'must be true or false' }).optional(),
  request_object_signing_alg: z.enum(SIGNING_ALGS, { error: oneOf(SIGNING_ALGS) }).optional(),
  dpop_bound_access_tokens: z.boolean({ error: 'must be true or false' }).optional(),
  /** Gatehouse's own: every sign-in to this client needs a second factor (TOTP). */
  gatehouse_require_mfa: z.boolean({ error: 'must be true or false' }).optional(),
};

export const CLIENT_ID = z.string({ error: required('must be a string') }).regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1–128 characters of A-Z a-z 0-9 . _ ~ -');

const ClientSchema = z
  .strictObject(
    {
      client_id: CLIENT_ID,
      client_secret: z.string({ error: 'must be a string' }).min(32, 'must be at least 32 characters').max(1024, 'must be at most 1024 characters').optional(),
      ...CLIENT_METADATA_FIELDS,
    },
    { error: 'must be an object' },
  )
  .superRefine((client, ctx) => checkClientAuthentication(client, ctx), { when: () => true });

/**
 * Which secret a client needs follows from how it authenticates. Runs even when other fields
 * failed. `secretGenerated`: Gatehouse makes the secret itself (the admin API), so only its
 * absence for a public client is checked.
 */
export function checkClientAuthentication(client: Record<string, unknown>, ctx: z.RefinementCtx, { secretGenerated = false } = {}): void {
  if (!client || typeof client !== 'object') return; // already reported
  // Redirect-based grants need somewhere to redirect to (RFC 7591 2).
  const grants = Array.isArray(client.grant_types) ? client.grant_types : ['authorization_code'];
  if ((grants.includes('authorization_code') || grants.includes('implicit')) && client.redirect_uris === undefined) {
    ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'is required for the authorization_code and implicit grants' });
  }
  const given = client.token_endpoint_auth_method;
  if (given !== undefined && !(AUTH_METHODS as readonly unknown[]).includes(given)) return; // already reported
  const method = (given ?? DEFAULT_AUTH_METHOD) as string;
  const how = given === undefined ? `${method} (the default)` : method;
  if (method === 'none' && client.client_secret !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'must be absent when token_endpoint_auth_method is none (a public client has no secret)' });
  }
  if (!secretGenerated && SECRET_AUTH_METHODS.includes(method) && client.client_secret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret'], message: `is required when token_endpoint_auth_method is ${how}; use "none" for a public client` });
  }
  if (method === 'private_key_jwt' && client.jwks_uri === undefined && client.jwks === undefined) {
    ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'is required (or jwks) when token_endpoint_auth_method is private_key_jwt' });
  }
}

/** An email address as stored: trimmed and lower-cased. */
export const EMAIL = z
  .string({ error: required('must be an email address') })
  .trim()
  .toLowerCase()
  .max(254, 'must be at most 254 characters')
  .pipe(z.email({ error: 'must be an email address' }));

/** A person's optional profile fields (OIDC claim names), shared by the seed file and the admin API. */
export const USER_PROFILE_FIELDS = {
  name: text().optional(),
  given_name: text().optional(),
  family_name: text().optional(),
  preferred_username: text().optional(),
  picture: httpUrl().optional(),
  locale: text(35).optional(),
};

/** A user entry; its password must meet the policy (password-policy.ts) for `passwordMinLength`. */
const userSchema = (passwordMinLength: number) =>
  z
    .strictObject(
      {
        email: EMAIL,
        password: z.string({ error: required('must be a string') }),
        ...USER_PROFILE_FIELDS,
        email_verified: z.boolean({ error: 'must be true or false' }).default(false),
      },
      { error: 'must be an object' },
    )
    .superRefine((user, ctx) => checkUserPassword(user, passwordMinLength, ctx), { when: () => true });

/** Runs even when other fields failed, so one run reports every problem. */
export function checkUserPassword(user: { email?: unknown; password?: unknown }, minLength: number, ctx: z.RefinementCtx): void {
  if (!user || typeof user !== 'object' || typeof user.password !== 'string') return; // already reported
  const email = typeof user.email === 'string' ? user.email : undefined;
  const problem = checkPassword(user.password, { minLength, email });
  if (problem) ctx.addIssue({ code: 'custom', path: ['password'], message: problem });
}

/** An API that access tokens can be issued for (RFC 8707 resource indicator). */
const ResourceSchema = z.strictObject(
  {
    identifier: z
      .string({ error: required('must be an absolute URI') })
      .refine((v) => URL.canParse(v) && !v.includes('#'), 'must be an absolute URI without a fragment (e.g. https://api.example.com)'),
    name: text().optional(),
    scopes: list(z.string({ error: 'must be a string' }).regex(SCOPE_TOKEN, 'must be a scope name without spaces'), 'scope', { isRequired: true }),
    access_token_format: z.enum(['jwt', 'opaque'], { error: 'must be jwt or opaque' }).default('jwt'),
    access_token_ttl: z.number({ error: 'must be a number of seconds' }).int('must be a whole number of seconds').min(60, 'must be at least 60 seconds').max(86_400, 'must be at most 86400 seconds (a day)').default(3600),
    introspection_clients: list(z.string({ error: 'must be a string' }).min(1), 'client_id').optional(),
  },
  { error: 'must be an object' },
);

const seedFileSchema = (passwordMinLength: number) =>
  z
    .strictObject(
      {
        clients: z.array(ClientSchema, { error: 'must be an array of clients' }).default([]),
        users: z.array(userSchema(passwordMinLength), { error: 'must be an array of users' }).default([]),
        resources: z.array(ResourceSchema, { error: 'must be an array of resources' }).default([]),
      },
      { error: 'must be a JSON object with "clients", "users" and/or "resources"' },
    )
    .superRefine(checkDuplicates, { when: () => true });

/** The seed file's schema with the default password policy (parseSeedFile takes the configured one). */
export const SeedFileSchema = seedFileSchema(DEFAULT_PASSWORD_MIN_LENGTH);

/** Duplicates within the file, each named by its index and the entry it repeats. */
function checkDuplicates(file: { clients?: unknown; users?: unknown; resources?: unknown }, ctx: z.RefinementCtx): void {
  if (!file || typeof file !== 'object') return; // already reported
  const sections = [
    ['clients', 'client_id', (v: string) => v],
    ['users', 'email', normalizeEmail],
    ['resources', 'identifier', (v: string) => v],
  ] as const;
  for (const [section, field, key] of sections) {
    const entries = file[section];
    if (!Array.isArray(entries)) continue;
    const seen = new Map<string, number>();
    entries.forEach((entry: unknown, index) => {
      const value = entry && typeof entry === 'object' ? (entry as Record<string, unknown>)[field] : undefined;
      if (typeof value !== 'string') return;
      const first = seen.get(key(value));
      if (first === undefined) seen.set(key(value), index);
      else ctx.addIssue({ code: 'custom', path: [section, index, field], message: `duplicates ${section}[${first}].${field}` });
    });
  }
}

export type SeedFile = z.output<typeof SeedFileSchema>;
export type SeedClient = SeedFile['clients'][number];
export type SeedUser = SeedFile['users'][number];
export type SeedResource = SeedFile['resources'][number];

export type SeedParseResult = { ok: true; data: SeedFile } | { ok: false; problems: string[] };

export interface SeedParseOptions {
  /** PASSWORD_MIN_LENGTH (config.passwords.minLength); DEFAULT_PASSWORD_MIN_LENGTH when not given. */
  passwordMinLength?: number;
}

/** Validates a parsed JSON document; on failure, every problem as `clients[2].redirect_uris[0]: …`. */
export function parseSeedFile(json: unknown, { passwordMinLength = DEFAULT_PASSWORD_MIN_LENGTH }: SeedParseOptions = {}): SeedParseResult {
  const schema = passwordMinLength === DEFAULT_PASSWORD_MIN_LENGTH ? SeedFileSchema : seedFileSchema(passwordMinLength);
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, data: result.data };
  const problems = result.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const hint = issue.path.length === 0 ? ' (a seed file has only "clients", "users" and "resources")' : '';
      return issue.keys.map((key) => ({ path: [...issue.path, key], message: `unknown field${hint}` }));
    }
    return [{ path: issue.path, message: issue.message }];
  });
  // Grouped by entry (clients before users, in file order), each entry's problems in field order.
  // A Map, not an object literal: a file's own "__proto__" or "constructor" key must rank like any other.
  const sectionOrder = new Map([['clients', 0], ['users', 1], ['resources', 2]]);
  const rank = (path: readonly PropertyKey[]) => [sectionOrder.get(String(path[0])) ?? 0, typeof path[1] === 'number' ? path[1] : -1];
  const sorted = problems
    .map((problem, order) => ({ ...problem, order, rank: rank(problem.path) }))
    .sort((a, b) => a.rank[0]! - b.rank[0]! || a.rank[1]! - b.rank[1]! || a.order - b.order);
  return { ok: false, problems: sorted.map(({ path, message }) => `${formatPath(path)}: ${message}`) };
}

/** `clients[2].redirect_uris[0]`; a key that is not a plain name is quoted (`users[0]["e-mail "]`). */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(file)';
  return path
    .map((part, i) => {
      if (typeof part === 'number') return `[${part}]`;
      const key = String(part);
      if (/^[A-Za-z_$][\w$]*$/.test(key)) return `${i === 0 ? '' : '.'}${key}`;
      return i === 0 ? JSON.stringify(key) : `[${JSON.stringify(key)}]`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------
// Writing it
// ---------------------------------------------------------------------------------------------

export interface SeedChanges {
  created: string[];
  updated: string[];
  unchanged: string[];
}

export interface SeedReport {
  /** By client_id. */
  clients: SeedChanges;
  /** By (lower-cased) email. */
  users: SeedChanges;
  /** By resource identifier. */
  resources: SeedChanges;
}

/** How client secrets are kept at rest: never in clear (clients/secrets.ts). */
export interface ClientSecretSealing {
  /** The metadata to store, its client_secret replaced by a hash or an encryption of it. */
  seal(metadata: ClientMetadata): ClientMetadata;
  /** Whether stored metadata is what seal(metadata) would store now (same fields, same secret). */
  holds(stored: unknown, metadata: ClientMetadata): boolean;
}

export interface SeedOptions {
  bcryptCost: number;
  clientSecrets: ClientSecretSealing;
}

type Tx = PrismaNamespace.TransactionClient;

/** Long enough for thousands of rows on a remote PostgreSQL; bcrypt work happens before it opens. */
const TRANSACTION_TIMEOUT_MS = 60_000;

export async function applySeed(db: Db, data: SeedFile, { bcryptCost, clientSecrets }: SeedOptions): Promise<SeedReport> {
  // bcrypt is slow by design: decide every password outside the transaction, so it stays short
  // and a SQLite writer lock is not held across seconds of hashing.
  const passwords = await preparePasswords(db, data.users, bcryptCost);
  return db.prisma.$transaction(
    async (tx) => ({
      clients: await seedClients(tx, data.clients, clientSecrets),
      users: await seedUsers(tx, data.users, passwords, bcryptCost),
      resources: await seedResources(tx, data.resources),
    }),
    { timeout: TRANSACTION_TIMEOUT_MS },
  );
}

function clientMetadata(client: SeedClient): ClientMetadata {
  // Keys the file did not give are absent from the parsed object, so this is the file's metadata
  // (with the clear secret: seedClients seals it before it is written).
  return { ...client };
}

async function seedClients(tx: Tx, clients: readonly SeedClient[], secrets: ClientSecretSealing): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  const ids = clients.map((client) => client.client_id);
  const rows = await tx.client.findMany({ where: { id: { in: ids } }, select: { id: true, metadata: true } });
  const existing = new Map(rows.map((row) => [row.id, row.metadata]));
  for (const client of clients) {
    const id = client.client_id;
    const metadata = clientMetadata(client);
    if (!existing.has(id)) {
      await tx.client.create({ data: { id, metadata: secrets.seal(metadata) as object } });
      changes.created.push(id);
    } else if (secrets.holds(existing.get(id), metadata)) {
      changes.unchanged.push(id);
    } else {
      await tx.client.update({ where: { id }, data: { metadata: secrets.seal(metadata) as object } });
      changes.updated.push(id);
    }
  }
  return changes;
}

async function seedResources(tx: Tx, resources: readonly SeedResource[]): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  for (const resource of resources) {
    const data = {
      name: resource.name ?? null,
      scope: resource.scopes.join(' '),
      accessTokenFormat: resource.access_token_format,
      accessTokenTtl: resource.access_token_ttl,
      introspectionClients: (resource.introspection_clients ?? []).join(' '),
    };
    const existing = await tx.resource.findUnique({ where: { id: resource.identifier } });
    if (!existing) {
      await tx.resource.create({ data: { id: resource.identifier, ...data } });
      changes.created.push(resource.identifier);
    } else if (Object.entries(data).every(([key, value]) => existing[key as keyof typeof data] === value)) {
      changes.unchanged.push(resource.identifier);
    } else {
      await tx.resource.update({ where: { id: resource.identifier }, data });
      changes.updated.push(resource.identifier);
    }
  }
  return changes;
}

/** What a run learned about one seed user's password before the transaction opened. */
interface PreparedPassword {
  /** The stored hash that was compared, if the user existed then. */
  checkedHash?: string;
  /** Whether that hash matched the seed password. */
  matches: boolean;
  /** A hash of the seed password, made when the stored one did not match (or there was none). */
  newHash?: string;
}

async function preparePasswords(db: Db, users: readonly SeedUser[], bcryptCost: number): Promise<Map<string, PreparedPassword>> {
  const rows = await db.prisma.user.findMany({ where: { email: { in: users.map((u) => u.email) } }, select: { email: true, passwordHash: true } });
  const stored = new Map(rows.map((row) => [row.email, row.passwordHash]));
  // bcrypt runs on libuv's thread pool, so Promise.all hashes several at a time.
  const entries = await Promise.all(
    users.map(async (user): Promise<[string, PreparedPassword]> => {
      const checkedHash = stored.get(user.email);
      const matches = checkedHash !== undefined && (await bcrypt.compare(user.password, checkedHash));
      return [user.email, { checkedHash, matches, newHash: matches ? undefined : await bcrypt.hash(user.password, bcryptCost) }];
    }),
  );
  return new Map(entries);
}

/** A new hash for an existing user, or null when the stored one already matches the seed password. */
async function passwordChange(user: SeedUser, row: User, prepared: PreparedPassword, bcryptCost: number): Promise<string | null> {
  // Another writer may have changed the hash since it was compared: compare again then.
  const matches = row.passwordHash === prepared.checkedHash ? prepared.matches : await bcrypt.compare(user.password, row.passwordHash);
  return matches ? null : (prepared.newHash ?? bcrypt.hash(user.password, bcryptCost));
}

function userProfile(user: SeedUser): UserProfile {
  // The file describes each user whole: an optional field it leaves out is cleared.
  return {
    email: user.email,
    emailVerified: user.email_verified,
    ...profileColumnsOf(user),
  };
}

async function seedUsers(tx: Tx, users: readonly SeedUser[], passwords: Map<string, PreparedPassword>, bcryptCost: number): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  const rows = await tx.user.findMany({ where: { email: { in: users.map((u) => u.email) } } });
  const existing = new Map(rows.map((row) => [row.email, row]));
  for (const user of users) {
    const profile = userProfile(user);
    const prepared = passwords.get(user.email) ?? { matches: false };
    const row = existing.get(user.email);
    if (!row) {
      // An opaque id: the email can change, the subject never does.
      const passwordHash = prepared.newHash ?? (await bcrypt.hash(user.password, bcryptCost));
      await tx.user.create({ data: { id: randomUUID(), ...profile, passwordHash } });
      changes.created.push(user.email);
      continue;
    }
    const passwordHash = await passwordChange(user, row, prepared, bcryptCost);
    const changed: Partial<UserProfile> & { passwordHash?: string } = {};
    for (const field of Object.keys(profile) as (keyof UserProfile)[]) {
      if (profile[field] !== row[field]) Object.assign(changed, { [field]: profile[field] });
    }
    if (passwordHash) changed.passwordHash = passwordHash;
    if (Object.keys(changed).length === 0) {
      changes.unchanged.push(user.email);
    } else {
      await tx.user.update({ where: { id: row.id }, data: changed });
      changes.updated.push(user.email);
    }
  }
  return changes;
}
