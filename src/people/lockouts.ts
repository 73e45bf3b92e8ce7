// Seeing and ending brute-force lockouts (sign-in-limits.ts decides them): what the admin API, the
// CLI and the console call. A lockout is a row of the RateLimiterFlexible table, never a flag on the
// person: a person is locked for passwords while the counter of their current email holds
// SIGN_IN_MAX_FAILURES_PER_ACCOUNT points or more (the next attempt is refused whatever the password),
// and for second factors while the counter of their account id does. Unlocking deletes both rows,
// which also forgets the failures counted so far.
//
// A password counter is keyed by the hash of the email typed, so it cannot be read back: the people
// listed as locked are found from the audit trail, where every counted failure of a known person is
// recorded with its accountId (sign_in.failure for passwords, passkey.failure for passwordless
// passkeys, which count on the same counter), within the longest a counter can live.
import { z } from 'zod';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { ipKey } from '../core/counters.js';
import { NotFoundError, parseInput } from '../core/errors.js';
import type { Db } from '../db/client.js';
import { accountCounterKey, counterPrefix, ipCounterKey, type AttemptKind } from './sign-in-limits.js';
import { createUserStore, type User } from './store.js';

export interface LockoutDeps {
  db: Db;
  audit: AuditLog;
  bruteForce: Config['bruteForce'];
  now?: () => Date;
}

type ReadDeps = Pick<LockoutDeps, 'db' | 'bruteForce' | 'now'>;

const CounterView = z.object({
  locked: z.boolean().describe('The next attempt is refused whatever the secret.'),
  until: z.iso.datetime().nullable().describe('When the lockout ends by itself (null when not locked).'),
  failures: z.number().int().describe('Failed attempts counted in the current window, at most the limit (0 when none).'),
});

export const LockoutView = z
  .object({
    user_id: z.string(),
    email: z.string(),
    password: CounterView.describe("Password attempts, counted by the person's current email."),
    second_factor: CounterView.describe('Second-factor attempts (TOTP and recovery codes), counted by account.'),
  })
  .meta({ id: 'Lockout' });
export type LockoutView = z.infer<typeof LockoutView>;

export const LockedAddress = z
  .object({ address: z.string().describe('As the limit counts it: an IPv4 address, or an IPv6 /64.'), until: z.iso.datetime().nullable() })
  .meta({ id: 'LockedAddress' });
export type LockedAddress = z.infer<typeof LockedAddress>;

export const LockoutList = z.object({ users: z.array(LockoutView), addresses: z.array(LockedAddress) }).meta({ id: 'LockoutList' });

export const UnlockResult = z.object({ unlocked: z.boolean().describe('Whether the person was locked (password or second factor) before.') }).meta({ id: 'UnlockResult' });

export const UnlockAddressInput = z
  .strictObject({ ip: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' }) }, { error: 'must be an object' })
  .meta({ id: 'UnlockAddress', description: 'An IPv6 address stands for its /64, the block the limit counts.' });

export const UnlockAddressResult = z
  .object({ address: z.string().describe('The address as the limit counts it (IPv6 as its /64).'), unlocked: z.boolean() })
  .meta({ id: 'UnlockAddressResult' });

const KINDS: readonly AttemptKind[] = ['password', 'second_factor'];

interface CounterRow {
  key: string;
  points: number;
  expire: Date | null;
}

const clock = (deps: Pick<LockoutDeps, 'now'>) => (deps.now ?? (() => new Date()))();

/** The rows still counting (a row past its expiry starts a new window at the next attempt). */
async function liveCounters(db: Db, now: Date, where: { key: { in: string[] } } | { OR: { key: { startsWith: string } }[] }): Promise<CounterRow[]> {
  return db.prisma.rateLimiterFlexible.findMany({ where: { AND: [where, { OR: [{ expire: null }, { expire: { gt: now } }] }] } });
}

function counterView(row: CounterRow | undefined, maxFailures: number): LockoutView['password'] {
  if (!row) return { locked: false, until: null, failures: 0 };
  const locked = row.points >= maxFailures;
  // A lockout adds a point, and so does every attempt refused during it: the count stops at the limit.
  return { locked, until: locked ? (row.expire?.toISOString() ?? null) : null, failures: Math.min(row.points, maxFailures) };
}

const keysOf = (user: Pick<User, 'id' | 'email'>) => ({ password: accountCounterKey('password', user.email), second_factor: accountCounterKey('second_factor', user.id) });

function viewOf(user: Pick<User, 'id' | 'email'>, rows: readonly CounterRow[], maxFailures: number): LockoutView {
  const keys = keysOf(user);
  const row = (kind: AttemptKind) => rows.find((candidate) => candidate.key === keys[kind]);
  return { user_id: user.id, email: user.email, password: counterView(row('password'), maxFailures), second_factor: counterView(row('second_factor'), maxFailures) };
}

async function findUser(db: Db, userId: string): Promise<User> {
  const user = await createUserStore(db).findById(userId);
  if (!user) throw new NotFoundError(`there is no user ${userId}`);
  return user;
}

async function lockoutOfUser(deps: ReadDeps, user: User): Promise<LockoutView> {
  const rows = await liveCounters(deps.db, clock(deps), { key: { in: Object.values(keysOf(user)) } });
  return viewOf(user, rows, deps.bruteForce.accountMaxFailures);
}

/** Whether the person is locked out now, for passwords and for second factors, and how many failures are counted. */
export async function lockoutOf(deps: ReadDeps, userId: string): Promise<LockoutView> {
  return lockoutOfUser(deps, await findUser(deps.db, userId));
}

/**
 * Ends the person's lockouts and forgets their counted failures, for passwords (the counter of
 * their current email) and second factors. Their address's counter is left alone: it counts
 * everyone behind it (unlockAddress). Always audited, locked or not.
 */
export async function unlockUser(deps: LockoutDeps, userId: string, actor: Actor): Promise<{ unlocked: boolean }> {
  const user = await findUser(deps.db, userId);
  const before = await lockoutOfUser(deps, user);
  await deps.db.prisma.rateLimiterFlexible.deleteMany({ where: { key: { in: Object.values(keysOf(user)) } } });
  const unlocked = before.password.locked || before.second_factor.locked;
  await deps.audit.record({
    type: 'user.unlocked',
    accountId: userId,
    ip: actor.ip,
    userAgent: actor.userAgent,
    details: { ...actorDetails(actor), was_locked: { password: before.password.locked, second_factor: before.second_factor.locked } },
  });
  return { unlocked };
}

/** How long ago a counter that is live now may have counted its first failure: its window, or a lockout since. */
const longestLife = (settings: Config['bruteForce']) => Math.max(settings.failureWindow, settings.lockout) * 1000;

/** The people locked out now (passwords or second factors), by email. */
export async function listLockedAccounts(deps: ReadDeps): Promise<LockoutView[]> {
  const now = clock(deps);
  const max = deps.bruteForce.accountMaxFailures;
  const prefixes = KINDS.map((kind) => ({ key: { startsWith: `${counterPrefix(kind, 'account')}:` } }));
  const locked = (await liveCounters(deps.db, now, { OR: prefixes })).filter((row) => row.points >= max);
  if (!locked.length) return [];
  const lockedKeys = new Set(locked.map((row) => row.key));

  // Second-factor rows name the account; password rows only a hash, matched against the people
  // whose failures the audit trail recorded while such a row could have been counting.
  const since = new Date(now.getTime() - longestLife(deps.bruteForce) - 60_000);
  const failed = await deps.db.prisma.auditEvent.findMany({
    where: { type: { in: ['sign_in.failure', 'passkey.failure'] }, at: { gte: since }, accountId: { not: null } },
    select: { accountId: true },
    distinct: ['accountId'],
  });
  const secondFactorPrefix = `${counterPrefix('second_factor', 'account')}:`;
  const candidates = new Set<string>([
    ...failed.map((event) => event.accountId as string),
    ...locked.filter((row) => row.key.startsWith(secondFactorPrefix)).map((row) => row.key.slice(secondFactorPrefix.length)),
  ]);
  // In batches: during an attack on many accounts the candidates may outnumber a statement's parameters.
  const ids = [...candidates];
  const people: Pick<User, 'id' | 'email'>[] = [];
  for (let start = 0; start < ids.length; start += 1000) {
    people.push(...(await deps.db.prisma.user.findMany({ where: { id: { in: ids.slice(start, start + 1000) } }, select: { id: true, email: true } })));
  }
  return people
    .filter((person) => Object.values(keysOf(person)).some((key) => lockedKeys.has(key)))
    .map((person) => viewOf(person, locked, max))
    .sort((a, b) => a.email.localeCompare(b.email));
}

/** The addresses (IPv6 by /64) locked out now for passwords or second factors. */
export async function listLockedAddresses(deps: ReadDeps): Promise<LockedAddress[]> {
  const prefixes = KINDS.map((kind) => `${counterPrefix(kind, 'ip')}:`);
  const rows = await liveCounters(deps.db, clock(deps), { OR: prefixes.map((prefix) => ({ key: { startsWith: prefix } })) });
  const until = new Map<string, Date | null>();
  for (const row of rows) {
    if (row.points < deps.bruteForce.ipMaxFailures) continue;
    const address = row.key.slice((prefixes.find((prefix) => row.key.startsWith(prefix)) ?? '').length);
    const known = until.get(address);
    // Locked by both kinds: until the later.
    until.set(address, known === undefined || (row.expire && known && row.expire > known) ? row.expire : known);
  }
  return [...until].map(([address, end]) => ({ address, until: end?.toISOString() ?? null })).sort((a, b) => a.address.localeCompare(b.address));
}

/** How many addresses are locked out now. */
export async function countLockedAddresses(deps: ReadDeps): Promise<number> {
  return (await listLockedAddresses(deps)).length;
}

/**
 * Ends an address's lockout for passwords and second factors and forgets its counted failures
 * (an office behind one NAT address locked by one misconfigured script). Always audited.
 */
export async function unlockAddress(deps: LockoutDeps, input: unknown, actor: Actor): Promise<z.infer<typeof UnlockAddressResult>> {
  const { ip } = parseInput(UnlockAddressInput, input);
  const address = ipKey(ip);
  const keys = KINDS.map((kind) => ipCounterKey(kind, ip));
  const rows = await liveCounters(deps.db, clock(deps), { key: { in: keys } });
  const unlocked = rows.some((row) => row.points >= deps.bruteForce.ipMaxFailures);
  await deps.db.prisma.rateLimiterFlexible.deleteMany({ where: { key: { in: keys } } });
  await deps.audit.record({ type: 'address.unlocked', ip: actor.ip, userAgent: actor.userAgent, details: { ...actorDetails(actor), address, was_locked: unlocked } });
  return { address, unlocked };
}
