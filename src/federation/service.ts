// Managing upstream identity providers: what the admin API (http/admin-routes.ts) and the CLI
// (`gatehouse idps`) both call, with the seed file's own declaration schema (schema.ts). The
// client secret is given by the administrator, stored encrypted (store.ts) and never shown again:
// views say only that one is set. Also a person's linked identities (`gatehouse users identities`,
// `users unlink-identity`, /admin/users/:userId/identities), listed and removed by an administrator.
//
// Every function takes its dependencies as arguments and throws NotFoundError, ConflictError or
// ValidationError (core/errors.ts).
import { z } from 'zod';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { ConflictError, NotFoundError, parseInput } from '../core/errors.js';
import type { Db } from '../db/client.js';
import { checkIdpKind, CLIENT_SECRET, federationCallbackUrl, IDP_FIELDS, IDP_ID, IDP_KINDS } from './schema.js';
import { createUserStore } from '../people/store.js';
import { createFederationStore, declarationOf, idpRow, sealIdpSecret, type IdentityProvider, type LinkedIdentity } from './store.js';

export interface IdpManagementDeps {
  db: Db;
  /** SECRETS, newest first: client secrets are encrypted with them. */
  secrets: readonly string[];
  audit: AuditLog;
  /** ISSUER: views show the redirect URI to register upstream. */
  issuer: string;
}

// ---------------------------------------------------------------------------------------------
// Schemas (the admin API's OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------

export const CreateIdpInput = z
  .strictObject({ id: IDP_ID, ...IDP_FIELDS, client_secret: CLIENT_SECRET }, { error: 'must be an object' })
  .superRefine(checkIdpKind, { when: () => true })
  .meta({ id: 'CreateIdentityProvider', description: 'An upstream identity provider. The client_secret is stored encrypted and never shown again.' });

const nullable = <T extends Record<string, z.ZodType>>(shape: T) =>
  Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, (schema as z.ZodType).optional().nullable()])) as { [K in keyof T]: z.ZodNullable<z.ZodOptional<T[K]>> };

/** Changes: the fields given replace the stored ones; null removes an optional one; a client_secret replaces the stored one. */
export const UpdateIdpInput = z
  .strictObject({ ...nullable(IDP_FIELDS), client_secret: CLIENT_SECRET.optional() }, { error: 'must be an object' })
  .meta({ id: 'UpdateIdentityProvider', description: 'Fields to change; null removes an optional field. The id cannot change.' });

/** The declaration after an update, checked again whole. */
const MergedIdp = z.strictObject({ id: IDP_ID, ...IDP_FIELDS }).superRefine(checkIdpKind, { when: () => true });

export const IdpView = z
  .looseObject({
    id: z.string(),
    display_name: z.string(),
    kind: z.enum(IDP_KINDS),
    enabled: z.boolean(),
    client_id: z.string(),
    client_secret_set: z.literal(true).describe('The secret is stored encrypted and never shown.'),
    redirect_uri: z.string().describe('The redirect URI to register at the upstream provider: ISSUER/federation/<id>/callback.'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'IdentityProvider' });
export type IdpView = z.infer<typeof IdpView>;

export const IdpList = z.object({ identity_providers: z.array(IdpView) }).meta({ id: 'IdentityProviderList' });

export const LinkedIdentityView = z
  .object({
    provider: z.string().describe('The identity provider\'s id.'),
    provider_name: z.string().describe('Its display name (its id when the provider is gone).'),
    subject: z.string().describe('The person\'s subject at the provider: what the link is found by.'),
    email: z.string().nullable().describe('The upstream email when linked, for display only (never looked up by).'),
    linked_at: z.iso.datetime(),
    last_used_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'LinkedIdentity' });
export type LinkedIdentityView = z.infer<typeof LinkedIdentityView>;

export const LinkedIdentityList = z.object({ identities: z.array(LinkedIdentityView) }).meta({ id: 'LinkedIdentityList' });

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';
const by = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });

function toView(row: IdentityProvider, issuer: string): IdpView {
  return {
    ...declarationOf(row),
    client_secret_set: true,
    redirect_uri: federationCallbackUrl(issuer, row.id),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  } as IdpView;
}

async function findRow(db: Db, id: string): Promise<IdentityProvider> {
  const row = await createFederationStore(db).findProvider(id);
  if (!row) throw new NotFoundError(`there is no identity provider ${id}`);
  return row;
}

function toLinkView(link: LinkedIdentity, names: Map<string, string>): LinkedIdentityView {
  return {
    provider: link.providerId,
    provider_name: names.get(link.providerId) ?? link.providerId,
    subject: link.subject,
    email: link.email,
    linked_at: link.createdAt.toISOString(),
    last_used_at: link.lastUsedAt?.toISOString() ?? null,
  };
}

async function expectUser(db: Db, userId: string): Promise<void> {
  if (!(await createUserStore(db).findById(userId))) throw new NotFoundError(`there is no user ${userId}`);
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

export async function listIdps({ db, issuer }: Pick<IdpManagementDeps, 'db' | 'issuer'>): Promise<IdpView[]> {
  return (await createFederationStore(db).listProviders()).map((row) => toView(row, issuer));
}

export async function getIdp({ db, issuer }: Pick<IdpManagementDeps, 'db' | 'issuer'>, id: string): Promise<IdpView> {
  return toView(await findRow(db, id), issuer);
}

export async function createIdp(deps: IdpManagementDeps, input: unknown, actor: Actor): Promise<IdpView> {
  const { client_secret: secret, ...declaration } = parseInput(CreateIdpInput, input);
  let row: IdentityProvider;
  try {
    row = await createFederationStore(deps.db).insertProvider(idpRow(declaration, sealIdpSecret(declaration.id, secret, deps.secrets)));
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`an identity provider with id ${declaration.id} already exists`);
    throw error;
  }
  await deps.audit.record({ type: 'idp.created', ...by(actor), details: { ...actorDetails(actor), idp: row.id } });
  return toView(row, deps.issuer);
}

export async function updateIdp(deps: IdpManagementDeps, id: string, input: unknown, actor: Actor): Promise<IdpView> {
  const { client_secret: secret, ...changes } = parseInput(UpdateIdpInput, input);
  const row = await findRow(deps.db, id);
  const merged: Record<string, unknown> = { ...declarationOf(row) };
  for (const [field, value] of Object.entries(changes)) {
    if (value === null) delete merged[field];
    else if (value !== undefined) merged[field] = value;
  }
  const declaration = parseInput(MergedIdp, { ...merged, id });
  const sealed = secret === undefined ? row.clientSecretEncrypted : sealIdpSecret(id, secret, deps.secrets);
  const updated = await createFederationStore(deps.db).replaceProvider(idpRow(declaration, sealed));
  const fields = [...Object.keys(changes), ...(secret === undefined ? [] : ['client_secret'])];
  await deps.audit.record({ type: 'idp.updated', ...by(actor), details: { ...actorDetails(actor), idp: id, fields } });
  return toView(updated, deps.issuer);
}

/** Deletes the provider and every identity linked through it (those people keep their other ways to sign in). */
export async function deleteIdp(deps: IdpManagementDeps, id: string, actor: Actor): Promise<void> {
  const links = await createFederationStore(deps.db).deleteProvider(id);
  if (links === null) throw new NotFoundError(`there is no identity provider ${id}`);
  await deps.audit.record({ type: 'idp.deleted', ...by(actor), details: { ...actorDetails(actor), idp: id, links_removed: links } });
}

/** The upstream identities linked to a person, oldest first. */
export async function listLinkedIdentities({ db }: Pick<IdpManagementDeps, 'db'>, userId: string): Promise<LinkedIdentityView[]> {
  await expectUser(db, userId);
  const store = createFederationStore(db);
  const [links, providers] = await Promise.all([store.listLinks(userId), store.listProviders()]);
  const names = new Map(providers.map((row) => [row.id, row.displayName]));
  return links.map((link) => toLinkView(link, names));
}

/**
 * Removes a person's link to a provider. Refused (ConflictError) when it is their last way to
 * sign in (no password, no other link): checked and deleted in one transaction (store.ts).
 */
export async function unlinkIdentity(deps: Pick<IdpManagementDeps, 'db' | 'audit'>, userId: string, providerId: string, actor: Actor): Promise<void> {
  await expectUser(deps.db, userId);
  const outcome = await createFederationStore(deps.db).unlinkUnlessLast(userId, providerId);
  if (outcome === 'not_linked') throw new NotFoundError(`user ${userId} has no identity linked through ${providerId}`);
  if (outcome === 'last_way') throw new ConflictError(`${providerId} is the last way user ${userId} can sign in (no password, no other linked identity); set a password first`);
  await deps.audit.record({ type: 'federation.unlinked', accountId: userId, ...by(actor), details: { provider: providerId, ...actorDetails(actor) } });
}
