// Seeding: a validated seed file (schema.ts) written in one transaction, so a run either applies
// everything or nothing. Every table is written through its noun's store.
// Re-running the same file changes nothing: clients compare by metadata and by verifying their
// stored secret, users by field and by bcrypt.compare, so hashes do not churn (an imported
// password_hash is written only when the person is created).
//
// bcrypt lives here rather than behind people/accounts.ts because db/ must not import oidc/; client
// secrets need SECRETS and the engine's rules, so the caller hands in how to seal them
// (clients/secrets.ts `clientSecretSealing`).
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { Db } from '../db/client.js';
import type { ClientSecretSealing } from '../clients/secrets.js';
import { createClientStore, type ClientMetadata, type ClientStore } from '../clients/store.js';
import { createUserStore, profileColumnsOf, type User, type UserProfile, type UserStore } from '../people/store.js';
import { passwordMatches } from '../people/accounts.js';
import { createResourceStore, type ResourceStore } from '../resources/store.js';
import { createFederationStore, declarationOf, idpRow, openIdpSecret, sealIdpSecret, type FederationStore } from '../federation/store.js';
import { sameJson } from '../clients/store.js';
import type { AccountMail } from '../people/email-verification.js';
import { seedInvitations } from '../people/invitations.js';
import { seedGroups, seedUserGroups, type SeedMembershipChange } from './groups.js';

import type { SeedClient, SeedFile, SeedIdentityProvider, SeedResource, SeedUser } from './schema.js';

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
  /** By name. */
  groups: SeedChanges;
  /** By (lower-cased) email; a user whose groups changed is updated. */
  users: SeedChanges;
  /** The seeded people whose groups changed. */
  memberships: SeedMembershipChange[];
  /** By resource identifier. */
  resources: SeedChanges;
  /** By identity provider id. */
  identityProviders: SeedChanges;
  /** By (lower-cased) email: invited now, or left alone (an account or an invitation exists). */
  invitations: SeedChanges;
}


export interface SeedOptions {
  bcryptCost: number;
  clientSecrets: ClientSecretSealing;
  /** SECRETS, newest first: identity providers' client secrets are encrypted with them (required when the file declares any). */
  secrets?: readonly string[];
  /** How invitations are mailed (required when the file has any): queued in the seed's transaction, sent by a running server. */
  mail?: AccountMail | undefined;
}

/** Long enough for thousands of rows on a remote PostgreSQL; bcrypt work happens before it opens. */
const TRANSACTION_TIMEOUT_MS = 60_000;

export async function applySeed(db: Db, data: SeedFile, { bcryptCost, clientSecrets, secrets, mail }: SeedOptions): Promise<SeedReport> {
  if (data.invitations.length && !mail) throw new Error('seeding invitations needs the outbox to mail them');
  if (data.identity_providers.length && !secrets?.length) throw new Error('seeding identity providers needs SECRETS to encrypt their client secrets');
  // bcrypt is slow by design: decide every password outside the transaction, so it stays short
  // and a SQLite writer lock is not held across seconds of hashing.
  const passwords = await preparePasswords(db, data.users, bcryptCost);
  return db.prisma.$transaction(
    async (tx) => {
      // The stores serve a transaction's client as they serve the database's (the seed calls none that opens its own).
      const inTransaction = { prisma: tx as unknown as Db['prisma'], flavour: db.flavour };
      const clients = await seedClients(createClientStore(inTransaction), data.clients, clientSecrets);
      const groups = await seedGroups(inTransaction, data.groups);
      const users = await seedUsers(createUserStore(inTransaction), data.users, passwords, bcryptCost);
      const memberships = await seedUserGroups(inTransaction, data.users);
      for (const { email } of memberships) {
        if (!users.unchanged.includes(email)) continue;
        users.unchanged = users.unchanged.filter((other) => other !== email);
        users.updated.push(email);
      }
      return {
        clients,
        groups,
        users,
        memberships,
        resources: await seedResources(createResourceStore(inTransaction), data.resources),
        identityProviders: await seedIdentityProviders(createFederationStore(inTransaction), data.identity_providers, secrets ?? []),
        invitations: data.invitations.length && mail ? { ...(await seedInvitations(inTransaction, mail, data.invitations)), updated: [] } : { created: [], updated: [], unchanged: [] },
      };
    },
    { timeout: TRANSACTION_TIMEOUT_MS },
  );
}

function clientMetadata(client: SeedClient): ClientMetadata {
  // Keys the file did not give are absent from the parsed object, so this is the file's metadata
  // (with the clear secret: seedClients seals it before it is written).
  return { ...client };
}

async function seedClients(store: ClientStore, clients: readonly SeedClient[], secrets: ClientSecretSealing): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  const existing = await store.findMany(clients.map((client) => client.client_id));
  for (const client of clients) {
    const id = client.client_id;
    const metadata = clientMetadata(client);
    if (!existing.has(id)) {
      await store.insert(secrets.seal(metadata));
      changes.created.push(id);
    } else if (secrets.holds(existing.get(id), metadata)) {
      changes.unchanged.push(id);
    } else {
      await store.replace(secrets.seal(metadata));
      changes.updated.push(id);
    }
  }
  return changes;
}

/** Unchanged when the stored declaration and the secret it decrypts to are the file's (the secret is not re-encrypted). */
async function seedIdentityProviders(store: FederationStore, idps: readonly SeedIdentityProvider[], secrets: readonly string[]): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  for (const { client_secret: secret, ...declaration } of idps) {
    const existing = await store.findProvider(declaration.id);
    const row = () => idpRow(declaration, sealIdpSecret(declaration.id, secret, secrets));
    if (!existing) {
      await store.insertProvider(row());
      changes.created.push(declaration.id);
      continue;
    }
    let sameSecret = false;
    try {
      sameSecret = openIdpSecret(existing, secrets) === secret;
    } catch {
      // Sealed with a secret no longer in SECRETS: replace it.
    }
    if (sameSecret && sameJson(declarationOf(existing), declaration)) {
      changes.unchanged.push(declaration.id);
    } else {
      await store.replaceProvider(row());
      changes.updated.push(declaration.id);
    }
  }
  return changes;
}

async function seedResources(store: ResourceStore, resources: readonly SeedResource[]): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  for (const resource of resources) {
    const data = {
      name: resource.name ?? null,
      scope: resource.scopes.join(' '),
      accessTokenFormat: resource.access_token_format,
      accessTokenTtl: resource.access_token_ttl,
      introspectionClients: (resource.introspection_clients ?? []).join(' '),
    };
    const existing = await store.find(resource.identifier);
    if (!existing) {
      await store.save({ id: resource.identifier, ...data });
      changes.created.push(resource.identifier);
    } else if (Object.entries(data).every(([key, value]) => existing[key as keyof typeof data] === value)) {
      changes.unchanged.push(resource.identifier);
    } else {
      await store.save({ id: resource.identifier, ...data });
      changes.updated.push(resource.identifier);
    }
  }
  return changes;
}

/** What a run learned about one seed user's password before the transaction opened. */
interface PreparedPassword {
  /** The stored hash that was compared, if the user existed then. */
  checkedHash?: string | null;
  /** Whether that hash matched the seed password. */
  matches: boolean;
  /** A hash of the seed password, made when the stored one did not match (or there was none). */
  newHash?: string;
}

async function preparePasswords(db: Db, users: readonly SeedUser[], bcryptCost: number): Promise<Map<string, PreparedPassword>> {
  const rows = await createUserStore(db).findManyByEmail(users.map((u) => u.email));
  const stored = new Map(rows.map((row) => [row.email, row.passwordHash]));
  // bcrypt runs on libuv's thread pool, so Promise.all hashes several at a time.
  const entries = await Promise.all(
    users.flatMap(({ email, password }) =>
      password === undefined
        ? []
        : [
            (async (): Promise<[string, PreparedPassword]> => {
              const checkedHash = stored.get(email);
              const matches = checkedHash !== undefined && (await passwordMatches(password, checkedHash));
              return [email, { checkedHash, matches, newHash: matches ? undefined : await bcrypt.hash(password, bcryptCost) }];
            })(),
          ],
    ),
  );
  return new Map(entries);
}

/**
 * A new hash for an existing user, or null when the stored one already matches the seed password.
 * An imported hash (password_hash) is written only when the seed creates the person: once they
 * have signed in it has been replaced by ours (people/password-hashes.ts), which a second run must
 * not undo, and it cannot tell that replacement from a password changed since.
 */
async function passwordChange(user: SeedUser, row: User, prepared: PreparedPassword, bcryptCost: number): Promise<string | null> {
  if (user.password === undefined) return null;
  // Another writer may have changed the hash since it was compared: compare again then.
  const matches = row.passwordHash === prepared.checkedHash ? prepared.matches : await passwordMatches(user.password, row.passwordHash);
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

async function seedUsers(store: UserStore, users: readonly SeedUser[], passwords: Map<string, PreparedPassword>, bcryptCost: number): Promise<SeedChanges> {
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  const rows = await store.findManyByEmail(users.map((u) => u.email));
  const existing = new Map(rows.map((row) => [row.email, row]));
  for (const user of users) {
    const profile = userProfile(user);
    const prepared = passwords.get(user.email) ?? { matches: false };
    const row = existing.get(user.email);
    if (!row) {
      // An opaque id: the email can change, the subject never does.
      const passwordHash = user.password_hash ?? prepared.newHash ?? (await bcrypt.hash(user.password as string, bcryptCost));
      await store.create(randomUUID(), profile, passwordHash);
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
      await store.update(row.id, changed);
      changes.updated.push(user.email);
    }
  }
  return changes;
}
