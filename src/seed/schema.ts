// The seed file (prisma/seed.json, `gatehouse seed <file>`): clients, groups, users, resources,
// upstream identity providers and invitations,
// validated whole, every problem named by entry and field, before anything is written.
import { z } from 'zod';
import { ClientEntry } from '../clients/schema.js';
import { IdentityProviderEntry } from '../federation/schema.js';
import { GroupEntry } from '../groups/schema.js';
import { DEFAULT_PASSWORD_MIN_LENGTH } from '../people/password-policy.js';
import { InvitationEntry } from '../people/invitations.js';
import { userEntry } from '../people/schema.js';
import { normalizeEmail } from '../people/store.js';
import { ResourceEntry } from '../resources/schema.js';

const seedFileSchema = (passwordMinLength: number) =>
  z
    .strictObject(
      {
        clients: z.array(ClientEntry, { error: 'must be an array of clients' }).default([]),
        groups: z.array(GroupEntry, { error: 'must be an array of groups' }).default([]),
        users: z.array(userEntry(passwordMinLength), { error: 'must be an array of users' }).default([]),
        resources: z.array(ResourceEntry, { error: 'must be an array of resources' }).default([]),
        identity_providers: z.array(IdentityProviderEntry, { error: 'must be an array of identity providers' }).default([]),
        invitations: z.array(InvitationEntry, { error: 'must be an array of invitations' }).default([]),
      },
      { error: 'must be a JSON object with "clients", "groups", "users", "resources", "identity_providers" and/or "invitations"' },
    )
    .superRefine(checkDuplicates, { when: () => true });

/** The seed file's schema with the default password policy (parseSeedFile takes the configured one). */
export const SeedFileSchema = seedFileSchema(DEFAULT_PASSWORD_MIN_LENGTH);

/** Duplicates within the file, each named by its index and the entry it repeats. */
function checkDuplicates(file: { clients?: unknown; groups?: unknown; users?: unknown; resources?: unknown; identity_providers?: unknown; invitations?: unknown }, ctx: z.RefinementCtx): void {
  if (!file || typeof file !== 'object') return; // already reported
  const sections = [
    ['clients', 'client_id', (v: string) => v],
    ['groups', 'name', (v: string) => v],
    ['users', 'email', normalizeEmail],
    ['resources', 'identifier', (v: string) => v],
    ['identity_providers', 'id', (v: string) => v],
    ['invitations', 'email', normalizeEmail],
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
export type SeedGroup = SeedFile['groups'][number];
export type SeedUser = SeedFile['users'][number];
export type SeedResource = SeedFile['resources'][number];
export type SeedIdentityProvider = SeedFile['identity_providers'][number];
export type SeedInvitation = SeedFile['invitations'][number];

export type SeedParseResult = { ok: true; data: SeedFile } | { ok: false; problems: string[] };

export interface SeedParseOptions {
  /** PASSWORD_MIN_LENGTH (config.passwordMinLength); DEFAULT_PASSWORD_MIN_LENGTH when not given. */
  passwordMinLength?: number;
}

/** Validates a parsed JSON document; on failure, every problem as `clients[2].redirect_uris[0]: …`. */
export function parseSeedFile(json: unknown, { passwordMinLength = DEFAULT_PASSWORD_MIN_LENGTH }: SeedParseOptions = {}): SeedParseResult {
  const schema = passwordMinLength === DEFAULT_PASSWORD_MIN_LENGTH ? SeedFileSchema : seedFileSchema(passwordMinLength);
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, data: result.data };
  const problems = result.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const hint = issue.path.length === 0 ? ' (a seed file has only "clients", "groups", "users", "resources", "identity_providers" and "invitations")' : '';
      return issue.keys.map((key) => ({ path: [...issue.path, key], message: `unknown field${hint}` }));
    }
    return [{ path: issue.path, message: issue.message }];
  });
  // Grouped by entry (clients, groups, then users …, in file order), each entry's problems in field order.
  // A Map, not an object literal: a file's own "__proto__" or "constructor" key must rank like any other.
  const sectionOrder = new Map([['clients', 0], ['groups', 1], ['users', 2], ['resources', 3], ['identity_providers', 4], ['invitations', 5]]);
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
