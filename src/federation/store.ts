// Queries on IdentityProvider and LinkedIdentity: the one writer of both tables. A provider's
// client secret is stored only encrypted with SECRETS, bound to the provider's id, and opened
// only for the upstream token request (upstream.ts).
import type { DbHandle } from '../db/client.js';
import { dialectOf, readJson } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import { decrypt, encrypt } from '../core/secrets.js';
import { removeUnlessLastWay } from '../people/sign-in-ways.js';
import type { IdentityProvider, LinkedIdentity } from '../generated/sqlite/client.js';
import { resolveIdp, type IdentityProviderDeclaration, type IdpSettings, type ResolvedIdp } from './schema.js';

export type { IdentityProvider, LinkedIdentity };

const secretContext = (id: string) => `idp-client-secret:${id}` as const;

export const sealIdpSecret = (id: string, secret: string, secrets: readonly string[]) => encrypt(secret, secrets, secretContext(id));
export const openIdpSecret = (row: Pick<IdentityProvider, 'id' | 'clientSecretEncrypted'>, secrets: readonly string[]) => decrypt(row.clientSecretEncrypted, secrets, secretContext(row.id)).plaintext;

export const settingsOf = (row: IdentityProvider) => row.settings as unknown as IdpSettings;
export const resolvedOf = (row: IdentityProvider): ResolvedIdp => resolveIdp({ ...row, settings: settingsOf(row) });

/** The row for a declaration: what goes in `settings` is everything but id, name, kind, state and secret. */
export function idpRow(declaration: Omit<IdentityProviderDeclaration, 'client_secret'>, clientSecretEncrypted: string): IdpRowInput {
  const { id, display_name: displayName, kind, enabled, ...settings } = declaration;
  return { id, displayName, kind, enabled, settings: settings as IdpSettings, clientSecretEncrypted };
}

/** The declaration a row holds, without its secret. */
export function declarationOf(row: IdentityProvider): Omit<IdentityProviderDeclaration, 'client_secret'> {
  return { id: row.id, display_name: row.displayName, kind: row.kind as IdentityProviderDeclaration['kind'], enabled: row.enabled, ...settingsOf(row) };
}

export interface IdpRowInput {
  id: string;
  displayName: string;
  kind: string;
  enabled: boolean;
  settings: IdpSettings;
  clientSecretEncrypted: string;
}

export type EnabledProvider = Pick<IdentityProvider, 'id' | 'displayName'> & { settings: IdpSettings };

export function createFederationStore(db: DbHandle) {
  const { prisma } = db;
  const data = (row: IdpRowInput) => ({ ...row, settings: row.settings as object });
  // Written in SQL and kept prepared: every sign-in page shows the enabled providers (db/executor.ts).
  const sql = executorOf(db);
  const enabledRows = { name: 'idp_enabled', text: dialectOf(db.flavour).sql('SELECT "id", "displayName", "settings" FROM "IdentityProvider" WHERE "enabled" = ? ORDER BY "id" ASC') };
  return {
    listProviders: () => prisma.identityProvider.findMany({ orderBy: { id: 'asc' } }),
    /** The enabled providers, by id: what the sign-in page's buttons show of them. */
    listEnabled: async (): Promise<EnabledProvider[]> =>
      (await sql.rows<{ id: string; displayName: string; settings: unknown }>(enabledRows, [true])).map((row) => ({ id: row.id, displayName: row.displayName, settings: readJson<IdpSettings>(row.settings) })),
    findProvider: (id: string) => prisma.identityProvider.findUnique({ where: { id } }),
    insertProvider: (row: IdpRowInput) => prisma.identityProvider.create({ data: data(row) }),
    replaceProvider: (row: IdpRowInput) => prisma.identityProvider.update({ where: { id: row.id }, data: data(row) }),

    /** Deletes the provider and every identity linked through it; how many links went with it (null: no such provider). */
    deleteProvider: (id: string) =>
      prisma.$transaction(async (tx) => {
        const { count } = await tx.identityProvider.deleteMany({ where: { id } });
        if (count === 0) return null;
        return (await tx.linkedIdentity.deleteMany({ where: { providerId: id } })).count;
      }),

    findLink: (providerId: string, subject: string) => prisma.linkedIdentity.findUnique({ where: { providerId_subject: { providerId, subject } } }),
    listLinks: (userId: string) => prisma.linkedIdentity.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } }),

    /** Throws Prisma's P2002 when the identity is linked already, or the person already linked this provider. */
    link: (providerId: string, subject: string, userId: string, email: string | null, at = new Date()) =>
      prisma.linkedIdentity.create({ data: { providerId, subject, userId, email, createdAt: at, lastUsedAt: at } }),

    touchLink: (providerId: string, subject: string, at = new Date()) =>
      prisma.linkedIdentity.updateMany({ where: { providerId, subject }, data: { lastUsedAt: at } }),

    /** Removes the person's link to this provider unless it is their last way to sign in (people/sign-in-ways.ts). */
    async unlinkUnlessLast(userId: string, providerId: string): Promise<'unlinked' | 'not_linked' | 'last_way'> {
      const outcome = await removeUnlessLastWay(db, userId, async (tx) => (await tx.linkedIdentity.deleteMany({ where: { userId, providerId } })).count);
      return outcome === 'removed' ? 'unlinked' : outcome === 'not_found' ? 'not_linked' : outcome;
    },
  };
}

export type FederationStore = ReturnType<typeof createFederationStore>;
