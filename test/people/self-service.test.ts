// The account service (src/people/self-service.ts) called directly, on SQLite and PostgreSQL,
// without HTTP: who is signed in (read from the engine's session cookie), what the account page
// lists, and each action: ending an app's access (its grants and every token issued under them),
// signing out the other sessions, changing the password (checked as a sign-in is, limits
// included), and turning the second factor on and off. The page itself: account-page.test.ts.
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInGrant, ACCOUNT_CLIENT_ID } from '../../src/clients/built-in-clients.js';
import { ACR_PASSWORD } from '../../src/oidc/provider.js';
import type { SignedIn } from '../../src/people/self-service.js';
import { createUserStore } from '../../src/people/store.js';
import { flavours } from '../helpers/databases.js';
import { PASSWORD, WEB_APP, webApp } from '../helpers/fixtures.js';
import { engineExchange, startServices, type Services } from '../helpers/services.js';
import { anotherCode, codeAt, currentStep, enrolTotp } from '../helpers/totp.js';

const ORIGIN = { ip: '192.0.2.30', userAgent: 'self-service-test' };
const LOCKOUT_AFTER = 3;
const NEW_PASSWORD = 'a brand new passphrase of mine';
/** A second app, to show what belongs to one app and not the other. */
const ALBUM = { id: 'photo-album', name: 'Photo Album' };

describe.each(await flavours())('the account service on %s', (flavour) => {
  let services: Services;
  beforeAll(async () => {
    services = await startServices(flavour, { SIGN_IN_MAX_FAILURES_PER_ACCOUNT: String(LOCKOUT_AFTER), SIGN_IN_MAX_FAILURES_PER_IP: '1000' });
    for (const client of [webApp(), webApp({ client_id: ALBUM.id, client_name: ALBUM.name })]) await services.addClient(client);
  });
  afterAll(async () => services?.close());

  const account = () => services.account;
  const epochNow = () => Math.floor(Date.now() / 1000);

  /** A session in which `accountId` signed in and used `clients`, saved as the engine saves it: what the account routes get for it. */
  async function signIn(accountId: string, clients: string[] = []): Promise<SignedIn> {
    const session = new services.provider.Session();
    const signedInAt = epochNow();
    session.loginAccount({ accountId, amr: ['pwd'], acr: ACR_PASSWORD, loginTs: signedInAt });
    for (const clientId of clients) session.sidFor(clientId, `sid-${clientId}`);
    await session.save(3600);
    return { sessionId: session.jti, sessionUid: session.uid, accountId, signedInAt, acr: ACR_PASSWORD };
  }
  const sessionExists = async (signedIn: SignedIn) => (await services.provider.Session.find(signedIn.sessionId)) !== undefined;

  /** A grant `accountId` gave `clientId`, with an access and a refresh token issued under it. */
  async function connect(accountId: string, clientId: string, scope = 'openid email offline_access') {
    const { provider } = services;
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const client = (await provider.Client.find(clientId))!;
    const issued = { accountId, client, grantId, scope, gty: 'authorization_code' };
    return { grantId, accessToken: await new provider.AccessToken(issued).save(), refreshToken: await new provider.RefreshToken(issued).save() };
  }
  /** Whether the grant and both its tokens still exist. */
  async function stillConnected({ grantId, accessToken, refreshToken }: Awaited<ReturnType<typeof connect>>) {
    const { Grant, AccessToken, RefreshToken } = services.provider;
    const found = [await Grant.find(grantId), await AccessToken.find(accessToken), await RefreshToken.find(refreshToken)];
    return found.map((model) => model !== undefined);
  }

  describe('who is signed in', () => {
    const currentSession = (cookies: Record<string, string>) => {
      const { req, res } = engineExchange(services.provider, cookies);
      return account().currentSession(req, res);
    };
    const sessionCookie = (sessionId: string) => ({ [services.provider.cookieName('session')]: sessionId });

    it("is read from the engine's session cookie, and is nobody without one, for an unknown session, or once it ended", async () => {
      const { id } = await services.addPerson();
      const signedIn = await signIn(id);
      expect(await currentSession(sessionCookie(signedIn.sessionId))).toEqual(signedIn);
      expect(await currentSession({})).toBeNull();
      expect(await currentSession(sessionCookie('no-such-session'))).toBeNull();
      await (await services.provider.Session.find(signedIn.sessionId))?.destroy();
      expect(await currentSession(sessionCookie(signedIn.sessionId))).toBeNull();
    });

    it('is nobody for a session whose person was disabled since', async () => {
      const { id } = await services.addPerson();
      const signedIn = await signIn(id);
      await createUserStore(services.db).update(id, { disabled: true });
      expect(await currentSession(sessionCookie(signedIn.sessionId))).toBeNull();
    });
  });

  it('lists the profile, each app with all its grants allow since the first (the account page left out), and this session first', async () => {
    const person = await services.addPerson();
    await connect(person.id, WEB_APP.id, 'openid email');
    await connect(person.id, WEB_APP.id, 'openid profile');
    await connect(person.id, ALBUM.id, 'openid');
    await builtInGrant(services.provider, ACCOUNT_CLIENT_ID, person.id);
    const elsewhere = await signIn(person.id, [ALBUM.id, ACCOUNT_CLIENT_ID]);
    const here = await signIn(person.id, [WEB_APP.id]);

    const overview = await account().overview(here);
    expect(overview.profile).toMatchObject({ email: person.email, name: person.name, emailVerified: true });
    expect(overview.apps.map((app) => app.name)).toEqual([ALBUM.name, 'Web App']);
    const web = overview.apps[1]!;
    expect({ clientId: web.clientId, scopes: [...web.scopes].sort() }).toEqual({ clientId: WEB_APP.id, scopes: ['email', 'openid', 'profile'] });
    const grants = await services.db.prisma.oidcArtifact.findMany({ where: { model: 'Grant', accountId: person.id, clientId: WEB_APP.id } });
    expect(web.since).toEqual(new Date(Math.min(...grants.map((grant) => grant.createdAt.getTime()))));
    expect(overview.sessions.map((session) => ({ current: session.current, apps: session.apps, methods: session.methods }))).toEqual([
      { current: true, apps: ['Web App'], methods: ['pwd'] },
      { current: false, apps: [ALBUM.name], methods: ['pwd'] },
    ]);
    expect(elsewhere.sessionUid).not.toBe(here.sessionUid);
    expect(overview.mfa).toEqual({ enabled: false, recoveryCodesLeft: 0 });

    const { recoveryCodes } = await enrolTotp(services.mfa, person.id);
    await services.mfa.useRecoveryCode(person.id, recoveryCodes[0]!);
    expect((await account().overview(here)).mfa).toEqual({ enabled: true, recoveryCodesLeft: 9 });
  });

  it("ends an app's access: every grant to it and every token issued under them, and nothing of another app or person", async () => {
    const person = await services.addPerson();
    const someoneElse = await services.addPerson();
    const signedIn = await signIn(person.id);
    const webGrants = [await connect(person.id, WEB_APP.id), await connect(person.id, WEB_APP.id)];
    const album = await connect(person.id, ALBUM.id);
    const theirs = await connect(someoneElse.id, WEB_APP.id);

    expect(await account().revokeApp(signedIn, WEB_APP.id, ORIGIN)).toBe(true);
    for (const grant of webGrants) expect(await stillConnected(grant)).toEqual([false, false, false]);
    expect(await stillConnected(album)).toEqual([true, true, true]);
    expect(await stillConnected(theirs)).toEqual([true, true, true]);
    const revoked = await services.events(person.id, 'consent.revoked');
    expect(revoked).toHaveLength(2);
    for (const row of revoked) expect(row).toMatchObject({ clientId: WEB_APP.id, ...ORIGIN, details: expect.objectContaining({ via: 'account' }) });
    expect((await account().overview(signedIn)).apps.map((app) => app.clientId)).toEqual([ALBUM.id]);

    // Nothing left to end: false, and nothing more in the audit trail.
    expect(await account().revokeApp(signedIn, WEB_APP.id, ORIGIN)).toBe(false);
    expect(await services.events(person.id, 'consent.revoked')).toHaveLength(2);
  });

  it("never ends the account page's own grant", async () => {
    const { id } = await services.addPerson();
    const grant = await builtInGrant(services.provider, ACCOUNT_CLIENT_ID, id);
    expect(await account().revokeApp(await signIn(id), ACCOUNT_CLIENT_ID, ORIGIN)).toBe(false);
    expect(await services.provider.Grant.find(grant.jti)).toBeDefined();
  });

  it("signs out every other session of the account, and neither this one nor another person's", async () => {
    const person = await services.addPerson();
    const someoneElse = await services.addPerson();
    const others = [await signIn(person.id), await signIn(person.id)];
    const here = await signIn(person.id);
    const theirs = await signIn(someoneElse.id);

    expect(await account().signOutOtherSessions(here, ORIGIN)).toBe(2);
    for (const other of others) expect(await sessionExists(other)).toBe(false);
    expect(await sessionExists(here)).toBe(true);
    expect(await sessionExists(theirs)).toBe(true);
    expect(await services.events(person.id, 'session.revoked')).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ via: 'account', sessions: 1 }) }),
      expect.objectContaining({ details: expect.objectContaining({ via: 'account', sessions: 1 }) }),
    ]);
    expect(await account().signOutOtherSessions(here, ORIGIN)).toBe(0);
  });

  describe('changing the password', () => {
    const hashOf = async (id: string) => (await services.db.prisma.user.findUniqueOrThrow({ where: { id } })).passwordHash ?? '';
    const signInAttempts = async (id: string) => (await services.events(id, 'sign_in.failure')).length + (await services.events(id, 'sign_in.success')).length;

    it('refuses a new password the policy refuses before checking the current one, so it costs no sign-in attempt', async () => {
      const person = await services.addPerson();
      const signedIn = await signIn(person.id);
      for (const [next, problem] of [
        ['too short', 'too_short'],
        ['password123456', 'common'],
        [person.email, 'email'],
      ] as const) {
        expect(await account().changePassword(signedIn, 'not even checked', next, ORIGIN)).toEqual({ outcome: 'rejected', problem });
      }
      expect(await signInAttempts(person.id)).toBe(0);
    });

    it('refuses a wrong current password as a failed sign-in, and a new password that is the current one', async () => {
      const person = await services.addPerson();
      const signedIn = await signIn(person.id);
      const before = await hashOf(person.id);
      expect(await account().changePassword(signedIn, 'not my password', NEW_PASSWORD, ORIGIN)).toEqual({ outcome: 'wrong_password' });
      expect(await services.events(person.id, 'sign_in.failure')).toEqual([expect.objectContaining({ ...ORIGIN, details: { reason: 'wrong_password' } })]);
      expect(await account().changePassword(signedIn, PASSWORD, PASSWORD, ORIGIN)).toEqual({ outcome: 'rejected', problem: 'same' });
      expect(await hashOf(person.id)).toBe(before);
      expect(await services.events(person.id, 'password.changed')).toEqual([]);
    });

    it('changes it with the right current password, ends the other sessions, and then only the new one signs in', async () => {
      const person = await services.addPerson();
      const other = await signIn(person.id);
      const here = await signIn(person.id);
      expect(await account().changePassword(here, PASSWORD, NEW_PASSWORD, ORIGIN)).toEqual({ outcome: 'changed', otherSessionsEnded: 1 });
      expect(await sessionExists(other)).toBe(false);
      expect(await sessionExists(here)).toBe(true);
      const hash = await hashOf(person.id);
      expect(bcrypt.getRounds(hash)).toBe(services.config.passwords.bcryptCost);
      expect(await services.passwords.verifyPassword(person.email, NEW_PASSWORD, ORIGIN)).toBe(person.id);
      expect(await services.passwords.verifyPassword(person.email, PASSWORD, ORIGIN)).toBeNull();
      expect(await services.events(person.id, 'password.changed')).toEqual([expect.objectContaining({ ...ORIGIN, details: { via: 'account', sessions_ended: 1 } })]);
    });

    it('refuses even the right current password once wrong ones have locked the account', async () => {
      const person = await services.addPerson();
      const signedIn = await signIn(person.id);
      for (let i = 0; i < LOCKOUT_AFTER; i++) expect((await account().changePassword(signedIn, `wrong ${i}`, NEW_PASSWORD, ORIGIN)).outcome).toBe('wrong_password');
      const before = await hashOf(person.id);
      expect(await account().changePassword(signedIn, PASSWORD, NEW_PASSWORD, ORIGIN)).toEqual({ outcome: 'wrong_password' });
      expect(await hashOf(person.id)).toBe(before);
      expect(await services.events(person.id, 'sign_in.locked')).toHaveLength(1);
    });
  });

  describe('the second factor', () => {
    it('starts an enrolment only with the current password, turns it on for a right code only, and not twice', async () => {
      const person = await services.addPerson();
      const signedIn = await signIn(person.id);
      expect(await account().beginMfaEnrolment(signedIn, 'not my password', ORIGIN)).toBe('wrong_password');
      expect(await account().describeMfaEnrolment(signedIn)).toBeNull();

      expect(await account().beginMfaEnrolment(signedIn, PASSWORD, ORIGIN)).toBe('started');
      const { secret } = (await account().describeMfaEnrolment(signedIn))!;
      const code = await codeAt(secret, currentStep());
      expect(await account().confirmMfaEnrolment(signedIn, anotherCode(code), ORIGIN)).toBeNull();
      expect(await services.events(person.id, 'mfa.failure')).toEqual([expect.objectContaining({ ...ORIGIN, details: { method: 'enrolment', via: 'account' } })]);
      expect(await services.mfa.isEnabled(person.id)).toBe(false);

      expect(await account().confirmMfaEnrolment(signedIn, code, ORIGIN)).toHaveLength(10);
      expect(await services.mfa.isEnabled(person.id)).toBe(true);
      expect(await services.events(person.id, 'mfa.enrolled')).toEqual([expect.objectContaining({ ...ORIGIN, details: { method: 'totp', via: 'account' } })]);
      expect(await account().beginMfaEnrolment(signedIn, PASSWORD, ORIGIN)).toBe('already_enabled');
    });

    it('turns it off only when it is on and with the current password', async () => {
      const person = await services.addPerson();
      const signedIn = await signIn(person.id);
      expect(await account().removeMfa(signedIn, PASSWORD, ORIGIN)).toBe('not_enabled');
      await enrolTotp(services.mfa, person.id);
      expect(await account().removeMfa(signedIn, 'not my password', ORIGIN)).toBe('wrong_password');
      expect(await services.mfa.isEnabled(person.id)).toBe(true);

      expect(await account().removeMfa(signedIn, PASSWORD, ORIGIN)).toBe('removed');
      expect(await services.mfa.isEnabled(person.id)).toBe(false);
      expect(await services.events(person.id, 'mfa.removed')).toEqual([expect.objectContaining({ ...ORIGIN, details: { via: 'account' } })]);
    });
  });
});
