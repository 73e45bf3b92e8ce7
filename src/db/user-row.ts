// A person's row (the User table) as a hand-written statement reads it: its columns and the one
// mapping from what the driver returns to Prisma's User. Two statements read it: people/store.ts
// (findById, findByEmail, the search) and artifacts/store.ts (findWithBindings, which reads the
// token's person in the same statement as the token). It lives here, below both, because
// artifacts/ sits under people/ and must not import it; people/store.ts stays the only writer.
import type { User } from '../generated/sqlite/client.js';
import { readTime } from './dialect.js';

export const USER_COLUMNS = ['id', 'email', 'emailVerified', 'passwordHash', 'name', 'givenName', 'familyName', 'preferredUsername', 'picture', 'locale', 'disabled', 'totpSecretEncrypted', 'totpEnabledAt', 'totpLastStep', 'createdAt', 'updatedAt'] as const satisfies readonly (keyof User)[];

type UnlistedUserColumn = Exclude<keyof User, (typeof USER_COLUMNS)[number]>;
/** Does not compile, and names the column, once User has a column USER_COLUMNS leaves out. */
const EVERY_USER_COLUMN_LISTED: [UnlistedUserColumn] extends [never] ? true : UnlistedUserColumn = true;
void EVERY_USER_COLUMN_LISTED;

export type RawUser = Record<(typeof USER_COLUMNS)[number], unknown>;

/**
 * The columns for a SELECT: `"id", "email", …`; with `alias` (a joined table), `u."id" AS "u_id", …`,
 * read back with joinedUser(row, 'u_').
 */
export const userColumns = (alias?: string) => USER_COLUMNS.map((c) => (alias ? `${alias}."${c}" AS "${alias}_${c}"` : `"${c}"`)).join(', ');

/** SQLite hands booleans and integers to raw queries as numbers or bigints. */
const readBoolean = (value: unknown) => value === true || value === 1 || value === 1n || value === '1';
const readInteger = (value: unknown) => (value === null || value === undefined ? null : Number(value));

/** A User row read by a raw statement, as Prisma's query builder reads it. */
export function toUser(raw: RawUser): User {
  return {
    ...(raw as unknown as User),
    emailVerified: readBoolean(raw.emailVerified),
    disabled: readBoolean(raw.disabled),
    totpEnabledAt: readTime(raw.totpEnabledAt),
    totpLastStep: readInteger(raw.totpLastStep),
    createdAt: readTime(raw.createdAt) as Date,
    updatedAt: readTime(raw.updatedAt) as Date,
  };
}

/** The keys `userColumns(alias)` reads the columns under, in USER_COLUMNS's order (made once per alias). */
const aliasedKeys = new Map<string, readonly string[]>();
const ID = USER_COLUMNS.indexOf('id');
const keysOf = (alias: string) => aliasedKeys.get(alias) ?? aliasedKeys.set(alias, USER_COLUMNS.map((c) => `${alias}_${c}`)).get(alias)!;

/** The person a LEFT JOIN read under `userColumns(alias)`: null when it matched no row. */
export function joinedUser(raw: object, alias: string): User | null {
  const row = raw as Record<string, unknown>;
  const keys = keysOf(alias);
  if (row[keys[ID]!] === null || row[keys[ID]!] === undefined) return null;
  const user = {} as Record<string, unknown>;
  for (let i = 0; i < USER_COLUMNS.length; i++) user[USER_COLUMNS[i]!] = row[keys[i]!];
  return toUser(user as RawUser);
}
