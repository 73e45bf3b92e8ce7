// Seeing and ending brute-force lockouts (people/lockouts.ts): people locked by real failed
// sign-ins and wrong second factors (the verifier and limits the sign-in pages use), addresses
// locked by failures from them, unlocking each, and the audit trail of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/audit/log.js';
import { NotFoundError, ValidationError } from '../../src/core/errors.js';
import { countLockedAddresses, listLockedAccounts, listLockedAddresses, lockoutOf, unlockAddress, unlockUser, type LockoutDeps } from '../../src/people/lockouts.js';
import { createSecondFactorLimits } from '../../src/people/sign-in-limits.js';
import { createUserStore } from '../../src/people/store.js';
import { flavours } from '../helpers/databases.js';
import { WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startServices, type Services } from '../helpers/services.js';

const LIMITS = { SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3', SIGN_IN_MAX_FAILURES_PER_IP: '6', SIGN_IN_FAILURE_WINDOW: '10m', SIGN_IN_LOCKOUT: '10m' };
const ADMIN: Actor = { via: 'admin', clientId: 'ops-tool', ip: '203.0.113.5', userAgent: 'lockout-test' };
const NOT_LOCKED = { locked: false, until: null, failures: 0 };

describe.each(await flavours())('lockouts on %s', (flavour) => {
  let services: Services;
  let deps: LockoutDeps;
  beforeAll(async () => {
    services = await startServices(flavour, LIMITS);
    deps = { db: services.db, audit: services.audit, bruteForce: services.config.bruteForce };
  });
  afterAll(async () => services?.close());

  /** Wrong passwords for `email` from `ip`, as the sign-in page submits them. */
  async function failPasswords(email: string, times: number, ip: string) {
    for (let i = 0; i < times; i++) expect(await services.passwords.verifyPassword(email, WRONG_PASSWORD, { ip })).toBeNull();
  }

  it('shows a person locked by failed sign-ins, unlocks them, and they sign in at once', async () => {
    const person = await services.addPerson();
    expect(await lockoutOf(deps, person.id)).toEqual({ user_id: person.id, email: person.email, password: NOT_LOCKED, second_factor: NOT_LOCKED });

    await failPasswords(person.email, 2, '198.51.100.1');
    expect((await lockoutOf(deps, person.id)).password).toEqual({ locked: false, until: null, failures: 2 });
    const lockedAt = Date.now();
    await failPasswords(person.email.toUpperCase(), 1, '198.51.100.1');
    // Locked: even the right password is refused, and the count stops at the limit.
    expect(await services.passwords.verifyPassword(person.email, person.password, { ip: '198.51.100.1' })).toBeNull();
    const locked = await lockoutOf(deps, person.id);
    expect(locked.password).toMatchObject({ locked: true, failures: 3 });
    expect(Date.parse(locked.password.until as string)).toBeGreaterThanOrEqual(lockedAt + 10 * 60_000 - 1000);
    expect(locked.second_factor).toEqual(NOT_LOCKED);
    expect((await listLockedAccounts(deps)).map((view) => view.user_id)).toContain(person.id);

    expect(await unlockUser(deps, person.id, ADMIN)).toEqual({ unlocked: true });
    expect(await lockoutOf(deps, person.id)).toMatchObject({ password: NOT_LOCKED, second_factor: NOT_LOCKED });
    expect((await listLockedAccounts(deps)).map((view) => view.user_id)).not.toContain(person.id);
    expect(await services.passwords.verifyPassword(person.email, person.password, { ip: '198.51.100.1' })).toBe(person.id);

    const [event] = await services.events(person.id, 'user.unlocked');
    expect(event).toMatchObject({ ip: ADMIN.ip, userAgent: ADMIN.userAgent, details: { via: 'admin', by: 'ops-tool', was_locked: { password: true, second_factor: false } } });
  });

  it('shows and ends a lockout for wrong second factors, apart from passwords', async () => {
    const person = await services.addPerson();
    const limits = createSecondFactorLimits(services.db, services.config.bruteForce);
    for (let i = 0; i < 3; i++) await (await limits.begin(person.id, '198.51.100.2')).failed();
    expect((await limits.begin(person.id, '198.51.100.2')).locked).toEqual(['account']);
    expect(await lockoutOf(deps, person.id)).toMatchObject({ password: NOT_LOCKED, second_factor: { locked: true, failures: 3 } });
    expect((await listLockedAccounts(deps)).find((view) => view.user_id === person.id)?.second_factor.locked).toBe(true);

    expect(await unlockUser(deps, person.id, ADMIN)).toEqual({ unlocked: true });
    expect((await limits.begin(person.id, '198.51.100.2')).locked).toEqual([]);
    expect((await lockoutOf(deps, person.id)).second_factor.locked).toBe(false);
  });

  it('records an unlock of someone not locked, and answers so', async () => {
    const person = await services.addPerson();
    await failPasswords(person.email, 1, '198.51.100.3');
    expect(await unlockUser(deps, person.id, { via: 'cli' })).toEqual({ unlocked: false });
    // The failure counted so far is forgotten too.
    expect((await lockoutOf(deps, person.id)).password.failures).toBe(0);
    expect(await services.events(person.id, 'user.unlocked')).toEqual([expect.objectContaining({ details: { via: 'cli', was_locked: { password: false, second_factor: false } } })]);
  });

  it('refuses an unknown person', async () => {
    await expect(lockoutOf(deps, 'nobody')).rejects.toBeInstanceOf(NotFoundError);
    await expect(unlockUser(deps, 'nobody', ADMIN)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('keys the password lock by the email: after an address change the person is not locked under the new one', async () => {
    const person = await services.addPerson();
    await failPasswords(person.email, 3, '198.51.100.4');
    expect((await lockoutOf(deps, person.id)).password.locked).toBe(true);
    const renamed = `renamed-${person.email}`;
    await createUserStore(services.db).update(person.id, { email: renamed });
    expect((await lockoutOf(deps, person.id)).password.locked).toBe(false);
    expect(await services.passwords.verifyPassword(renamed, person.password, { ip: '198.51.100.4' })).toBe(person.id);
  });

  it('counts, lists and unlocks addresses (IPv6 by its /64)', async () => {
    const before = await countLockedAddresses(deps);
    for (let i = 0; i < 6; i++) await failPasswords(`unknown-${i}@example.com`, 1, '2001:db8:7:7::1');
    expect(await services.passwords.verifyPassword('other@example.com', 'whatever', { ip: '2001:db8:7:7::2' })).toBeNull();
    expect(await countLockedAddresses(deps)).toBe(before + 1);
    expect(await listLockedAddresses(deps)).toContainEqual({ address: '2001:db8:7:7::/64', until: expect.any(String) });

    await expect(unlockAddress(deps, { ip: 'not an address' }, ADMIN)).rejects.toMatchObject({ issues: [{ path: 'ip', message: 'must be an IPv4 or IPv6 address' }] });
    await expect(unlockAddress(deps, {}, ADMIN)).rejects.toBeInstanceOf(ValidationError);
    expect(await unlockAddress(deps, { ip: '2001:db8:7:7::abcd' }, ADMIN)).toEqual({ address: '2001:db8:7:7::/64', unlocked: true });
    expect(await countLockedAddresses(deps)).toBe(before);
    const person = await services.addPerson();
    expect(await services.passwords.verifyPassword(person.email, person.password, { ip: '2001:db8:7:7::1' })).toBe(person.id);
    const events = await services.events(null, 'address.unlocked');
    expect(events.at(-1)).toMatchObject({ ip: ADMIN.ip, details: { address: '2001:db8:7:7::/64', was_locked: true, via: 'admin', by: 'ops-tool' } });
  });
});
