// Managing registered clients: what the admin API (http/admin.ts) and the CLI both call.
// Metadata is validated with the seed file's own field schemas (seed/apply.ts) and, when the caller
// hands in the engine's check, by the engine too, so a stored client is one the engine loads.
// Secrets are generated here, returned once, and stored only hashed or encrypted
// (clients/secrets.ts), exactly as the seed stores them.
//
// Every function takes its dependencies as arguments and throws NotFoundError, ConflictError or
// ValidationError (core/errors.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createArtifactStore } from '../artifacts/store.js';
import type { Db } from '../db/client.js';
import { createClientStore, type ClientMetadata, type ClientRow } from './store.js';
import { CLIENT_ID, CLIENT_METADATA_FIELDS, checkClientAuthentication, DEFAULT_AUTH_METHOD, SECRET_AUTH_METHODS } from './schema.js';
import { isBuiltInClient } from './built-in-clients.js';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { needsClearSecret, sealClientMetadata } from './secrets.js';
import { ConflictError, NotFoundError, parseInput, ValidationError } from '../core/errors.js';
import { decrypt } from '../core/secrets.js';

export interface ClientManagementDeps {
  db: Db;
  /** SECRETS, newest first: client secrets are hashed or encrypted with them. */
  secrets: readonly string[];
  audit: AuditLog;
  /**
   * The engine's own metadata check (`provider.Client.validate`); it throws the engine's
   * InvalidClientMetadata. Absent (a CLI without an engine), only Gatehouse's schemas apply.
   */
  validateWithEngine?: (metadata: ClientMetadata) => Promise<void>;
  now?: () => Date;
}

// ---------------------------------------------------------------------------------------------
// Schemas (the admin API's OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------

/** A new client: its metadata, and optionally its client_id (otherwise a random one). Its secret is always generated. */
export const CreateClientInput = z
  .strictObject({ client_id: CLIENT_ID.optional(), ...CLIENT_METADATA_FIELDS }, { error: 'must be an object' })
  .superRefine((client, ctx) => checkClientAuthentication(client, ctx, { secretGenerated: true }), { when: () => true })
  .meta({ id: 'CreateClient', description: 'RFC 7591 client metadata. The client_secret is generated and returned once.' });

const nullable = <T extends Record<string, z.ZodOptional<z.ZodType>>>(shape: T) =>
  Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.nullable()])) as { [K in keyof T]: z.ZodNullable<T[K]> };

/** Changes to a client: the fields given replace the stored ones; `null` removes a field. */
export const UpdateClientInput = z
  .strictObject(nullable(CLIENT_METADATA_FIELDS), { error: 'must be an object' })
  .meta({ id: 'UpdateClient', description: 'Fields to change; null removes a field. client_id and client_secret cannot be changed here.' });

/** The whole metadata after an update, checked again as one client. */
const MergedClient = z
  .looseObject({ client_id: CLIENT_ID, ...CLIENT_METADATA_FIELDS })
  .superRefine((client, ctx) => checkClientAuthentication(client, ctx, { secretGenerated: true }), { when: () => true });

export const SECRET_STORAGE = ['hashed', 'encrypted', 'none'] as const;

/** A client as the API shows it: its metadata without any form of its secret. */
export const ClientView = z
  .looseObject({
    client_id: z.string(),
    ...CLIENT_METADATA_FIELDS,
    client_secret_storage: z.enum(SECRET_STORAGE).describe('How the secret is kept: hashed (only checked), encrypted (the engine needs it clear, e.g. client_secret_jwt) or none (public or private_key_jwt).'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Client' });
export type ClientView = z.infer<typeof ClientView>;

export const ClientList = z.object({ clients: z.array(ClientView) }).meta({ id: 'ClientList' });

/** The one response that carries a clear secret (creation, rotation): it is never shown again. */
export const ClientWithSecret = z
  .object({ client: ClientView, client_secret: z.string().optional().describe('Shown once; absent for clients without a secret.') })
  .meta({ id: 'ClientWithSecret' });
export type ClientWithSecret = z.infer<typeof ClientWithSecret>;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const SECRET_FIELDS = ['client_secret', 'client_secret_hash', 'client_secret_encrypted', 'client_secret_expires_at'] as const;

/** 256 random bits, base64url: far beyond guessing, and within every auth method's limits. */
const generateSecret = () => randomBytes(32).toString('base64url');

const authMethodOf = (metadata: Record<string, unknown>) => (metadata.token_endpoint_auth_method as string | undefined) ?? DEFAULT_AUTH_METHOD;

/** Whether a client with this metadata has a secret at all. */
const wantsSecret = (metadata: Record<string, unknown>) => SECRET_AUTH_METHODS.includes(authMethodOf(metadata)) || needsClearSecret(metadata);

function storageOf(metadata: Record<string, unknown>): (typeof SECRET_STORAGE)[number] {
  if (typeof metadata.client_secret_encrypted === 'string') return 'encrypted';
  if (typeof metadata.client_secret_hash === 'string') return 'hashed';
  return 'none';
}

function withoutSecret(metadata: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...metadata };
  for (const field of SECRET_FIELDS) delete rest[field];
  return rest;
}

function toView(row: ClientRow): ClientView {
  const metadata = (row.metadata ?? {}) as Record<string, unknown>;
  return {
    ...withoutSecret(metadata),
    client_id: row.id,
    client_secret_storage: storageOf(metadata),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  } as ClientView;
}

/** Clients whose grants only ever reach the token endpoint have no response types. */
function withDefaults(metadata: Record<string, unknown>): Record<string, unknown> {
  const grants = (metadata.grant_types as string[] | undefined) ?? ['authorization_code'];
  const redirecting = grants.includes('authorization_code') || grants.includes('implicit');
  return !redirecting && metadata.response_types === undefined ? { ...metadata, response_types: [] } : metadata;
}

async function checkWithEngine(deps: ClientManagementDeps, metadata: Record<string, unknown>, secret: string | undefined): Promise<void> {
  if (!deps.validateWithEngine) return;
  // The engine insists on a client_secret for secret-based methods: the real one when known.
  const candidate = { ...metadata, ...(wantsSecret(metadata) ? { client_secret: secret ?? generateSecret() } : {}) } as ClientMetadata;
  try {
    await deps.validateWithEngine(candidate);
  } catch (error) {
    const { error_description: description, message } = error as { error_description?: string; message?: string };
    const text = description ?? message ?? 'invalid client metadata';
    // The engine names the field first ("redirect_uris must ..."): use it as the path when it is one.
    const field = /^([a-z_]+) /.exec(text)?.[1];
    throw new ValidationError(text, [{ path: field && field in CLIENT_METADATA_FIELDS ? field : '', message: text }]);
  }
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/** Every registered client (the account page's built-in client is not stored, so not listed), by client_id. */
export async function listClients({ db }: Pick<ClientManagementDeps, 'db'>): Promise<ClientView[]> {
  return (await createClientStore(db).list()).map(toView);
}

export async function getClient({ db }: Pick<ClientManagementDeps, 'db'>, clientId: string): Promise<ClientView> {
  const row = await createClientStore(db).get(clientId);
  if (!row) throw new NotFoundError(`there is no client ${clientId}`);
  return toView(row);
}

/** Registers a client; its generated secret (if it has one) is in the result, and nowhere else, ever. */
export async function createClient(deps: ClientManagementDeps, input: unknown, actor: Actor): Promise<ClientWithSecret> {
  const parsed = parseInput(CreateClientInput, input);
  const clientId = parsed.client_id ?? randomUUID();
  if (isBuiltInClient(clientId)) throw new ConflictError(`client_id ${clientId} is reserved for Gatehouse's own pages`);
  const metadata = withDefaults({ ...parsed, client_id: clientId });
  const secret = wantsSecret(metadata) ? generateSecret() : undefined;
  await checkWithEngine(deps, metadata, secret);
  const stored = sealClientMetadata({ ...metadata, ...(secret ? { client_secret: secret } : {}) } as ClientMetadata, deps.secrets);
  let row;
  try {
    row = await createClientStore(deps.db).insert(stored);
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a client with client_id ${clientId} already exists`);
    throw error;
  }
  await deps.audit.record({ type: 'client.created', clientId, ip: actor.ip, userAgent: actor.userAgent, details: { ...actorDetails(actor) } });
  return { client: toView(row), ...(secret ? { client_secret: secret } : {}) };
}

/**
 * Changes a client's metadata. The secret stays, unless the change moves it to another kind of
 * storage the old form cannot become (a hashed secret the engine now needs clear, a public client
 * that now needs one): then a new secret is generated and returned once.
 */
export async function updateClient(deps: ClientManagementDeps, clientId: string, input: unknown, actor: Actor): Promise<ClientWithSecret> {
  const changes = parseInput(UpdateClientInput, input);
  const clients = createClientStore(deps.db);
  const row = await clients.get(clientId);
  if (!row) throw new NotFoundError(`there is no client ${clientId}`);
  const stored = row.metadata as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...withoutSecret(stored) };
  for (const [field, value] of Object.entries(changes)) {
    if (value === null) delete merged[field];
    else if (value !== undefined) merged[field] = value;
  }
  const metadata = parseInput(MergedClient, { ...merged, client_id: clientId });

  // Keep the secret when its stored form still fits; otherwise generate one.
  let secret: string | undefined;
  let kept: Record<string, unknown> = {};
  if (wantsSecret(metadata)) {
    const clear = typeof stored.client_secret_encrypted === 'string' ? decrypt(stored.client_secret_encrypted, deps.secrets, `client-secret:${clientId}`).plaintext : undefined;
    if (needsClearSecret(metadata)) {
      if (clear === undefined) secret = generateSecret();
      else kept = { client_secret: clear };
    } else if (clear !== undefined) kept = { client_secret: clear }; // re-stored as a hash
    else if (typeof stored.client_secret_hash === 'string') kept = { client_secret_hash: stored.client_secret_hash };
    else secret = generateSecret();
  }
  await checkWithEngine(deps, metadata, secret ?? (kept.client_secret as string | undefined));
  const next = { ...metadata, ...kept, ...(secret ? { client_secret: secret } : {}) } as ClientMetadata;
  const sealed = typeof next.client_secret === 'string' ? sealClientMetadata(next, deps.secrets) : next;
  const updated = await clients.replace(sealed);
  await deps.audit.record({
    type: 'client.updated',
    clientId,
    ip: actor.ip,
    userAgent: actor.userAgent,
    details: { ...actorDetails(actor), fields: Object.keys(changes), ...(secret ? { secret_regenerated: true } : {}) },
  });
  return { client: toView(updated), ...(secret ? { client_secret: secret } : {}) };
}

/** Deletes a client and everything issued to it: its grants, codes, tokens and registration token. */
export async function deleteClient(deps: ClientManagementDeps, clientId: string, actor: Actor): Promise<void> {
  const artifacts = createArtifactStore(deps.db);
  if (!(await createClientStore(deps.db).remove(clientId))) throw new NotFoundError(`there is no client ${clientId}`);
  const ended = await artifacts.destroyByClient(clientId);
  await deps.audit.record({ type: 'client.deleted', clientId, ip: actor.ip, userAgent: actor.userAgent, details: { ...actorDetails(actor), artifacts_ended: ended } });
}

/**
 * A new secret for a client, returned once. The old one stops working at once; tokens already
 * issued stay valid until they expire (revoke them, or delete the client, to end them sooner).
 */
export async function rotateClientSecret(deps: ClientManagementDeps, clientId: string, actor: Actor): Promise<ClientWithSecret & { client_secret: string }> {
  const clients = createClientStore(deps.db);
  const row = await clients.get(clientId);
  if (!row) throw new NotFoundError(`there is no client ${clientId}`);
  const metadata = withoutSecret(row.metadata as Record<string, unknown>);
  if (!wantsSecret(metadata)) {
    throw new ConflictError(`client ${clientId} authenticates with ${authMethodOf(metadata)} and has no secret to rotate`);
  }
  const secret = generateSecret();
  const sealed = sealClientMetadata({ ...metadata, client_id: clientId, client_secret: secret } as ClientMetadata, deps.secrets);
  const updated = await clients.replace(sealed);
  await deps.audit.record({ type: 'client.secret_rotated', clientId, ip: actor.ip, userAgent: actor.userAgent, details: { ...actorDetails(actor) } });
  return { client: toView(updated), client_secret: secret };
}
