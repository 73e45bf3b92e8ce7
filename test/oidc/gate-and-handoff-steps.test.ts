// Two ways into a sign-in, at the level of the interaction steps (src/oidc/interactions.ts), on
// SQLite and PostgreSQL, with REQUIRE_VERIFIED_EMAIL=true:
// - an upstream identity provider whose MFA counts as the second factor, and a passwordless
//   passkey, still pass the verified-email gate (the step records that the address is owed,
//   then finishes as MFA);
// - a sign-in handoff (people/sign-in-handoff.ts) is the first factor only for the client it was
//   issued for and the login_hint it names, works once, and then goes on as after a password.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Interaction } from '../../src/oidc/interaction-state.js';
import { ACR_MFA, ACR_PASSWORD } from '../../src/oidc/provider.js';
import { issueSignInHandoff } from '../../src/people/sign-in-handoff.js';
import { flavours } from '../helpers/databases.js';
import { SoftwareAuthenticator } from '../helpers/authenticator.js';
import { newPerson, WEB_APP, webApp } from '../helpers/fixtures.js';
import { addUserTo } from '../helpers/gatehouse.js';
import { openInteraction, runStep, SERVICES_ISSUER, startServices, type InteractionSetUp, type OpenInteraction, type Services } from '../helpers/services.js';

const ORIGIN = { ip: '192.0.2.20', userAgent: 'gate-and-handoff-test' };

describe.each(await flavours())('the verified-email gate and the sign-in handoff as steps on %s', (flavour) => {
  let services: Services;
  beforeAll(async () => {
    services = await startServices(flavour, { REQUIRE_VERIFIED_EMAIL: 'true' });
    await services.addClient(webApp());
  });
  afterAll(async () => services?.close());

  const open = (setUp: Partial<InteractionSetUp> = {}) => openInteraction(services.provider, { clientId: WEB_APP.id, ...setUp });
  const run = <T>(interaction: OpenInteraction, step: (req: IncomingMessage, res: ServerResponse, loaded: Interaction) => Promise<T>) => runStep(services, interaction, step);
  const resultOf = async (interaction: OpenInteraction) => (await interaction.stored())?.result;
  const pendingOf = async (interaction: OpenInteraction) => (await run(interaction, async (_req, _res, loaded) => services.steps.pendingSecondFactor(loaded))).outcome;
  const addPerson = async (emailVerified: boolean) => {
    const person = newPerson();
    return { ...person, id: await addUserTo(services.db, { ...person, emailVerified }) };
  };

  describe('an upstream provider whose MFA counts', () => {
    it('asks an unverified person to verify the address first, then finishes as MFA (amr fed mfa)', async () => {
      const person = await addPerson(false);
      const interaction = await open();
      const federated = await run(interaction, (req, res, loaded) => services.steps.submitFederatedLogin(req, res, loaded, { accountId: person.id, upstreamMfa: true }));
      expect(federated.outcome).toBe('second_factor');
      const pending = await pendingOf(interaction);
      expect(pending).toMatchObject({ accountId: person.id, stage: 'verify_email', complete: ['fed', 'mfa'] });
      expect((await resultOf(interaction))?.login).toBeUndefined();

      const early = await run(interaction, (req, res, loaded) => services.steps.continueAfterVerification(req, res, loaded, pending!, ORIGIN));
      expect(early.outcome).toBe('unverified');
      await services.db.prisma.user.update({ where: { id: person.id }, data: { emailVerified: true } });
      const verified = await run(interaction, (req, res, loaded) => services.steps.continueAfterVerification(req, res, loaded, pending!, ORIGIN));
      expect(verified.outcome).toBe('finished');
      expect((await resultOf(interaction))?.login).toMatchObject({ accountId: person.id, amr: ['fed', 'mfa'], acr: ACR_MFA });
    });

    it('finishes at once for a verified person', async () => {
      const person = await addPerson(true);
      const interaction = await open();
      const federated = await run(interaction, (req, res, loaded) => services.steps.submitFederatedLogin(req, res, loaded, { accountId: person.id, upstreamMfa: true }));
      expect(federated.outcome).toBe('finished');
      expect((await resultOf(interaction))?.login).toMatchObject({ accountId: person.id, amr: ['fed', 'mfa'], acr: ACR_MFA });
    });
  });

  it('a passwordless passkey sign-in asks an unverified person to verify the address first', async () => {
    const person = await addPerson(false);
    const authenticator = new SoftwareAuthenticator(SERVICES_ISSUER);
    const registration = await services.passkeys.registrationOptions(person.id, 'account-session');
    expect((await services.passkeys.register(person.id, 'account-session', authenticator.create(registration), 'Laptop', ORIGIN)).ok).toBe(true);
    const interaction = await open();
    const options = (await run(interaction, async (_req, _res, loaded) => services.steps.passkeyOptions(loaded, undefined))).outcome;
    const answer = authenticator.get(options as Parameters<SoftwareAuthenticator['get']>[0]);
    const signedIn = await run(interaction, (req, res, loaded) => services.steps.submitPasskey(req, res, loaded, undefined, answer, ORIGIN));
    expect(signedIn.outcome).toBe('second_factor');
    expect(await pendingOf(interaction)).toMatchObject({ accountId: person.id, stage: 'verify_email', complete: ['hwk', 'user'] });
    expect((await resultOf(interaction))?.login).toBeUndefined();
  });

  describe('a sign-in handoff', () => {
    const issue = (person: { id: string; email: string }, clientId = WEB_APP.id, method: 'password' | 'passkey' = 'password') =>
      issueSignInHandoff(services.db, { accountId: person.id, email: person.email, clientId, method });
    const redeem = (interaction: OpenInteraction, secret: string) => run(interaction, (req, res, loaded) => services.steps.signInWithHandoff(req, res, loaded, secret, ORIGIN));

    it('signs in once, as a password would (amr pwd), for its client and login_hint; recorded as a sign-in', async () => {
      const person = await addPerson(true);
      const secret = await issue(person);
      const interaction = await open({ params: { login_hint: person.email.toUpperCase() } });
      expect((await redeem(interaction, secret)).outcome).toBe('finished');
      expect((await resultOf(interaction))?.login).toMatchObject({ accountId: person.id, amr: ['pwd'], acr: ACR_PASSWORD });
      expect((await services.events(person.id, 'sign_in.success')).map((e) => e.details)).toEqual([{ method: 'invitation', factor: 'password' }]);
      expect((await redeem(await open(), secret)).outcome).toBe('unused');
    });

    it('a passkey handoff is both factors (amr hwk user, MFA)', async () => {
      const person = await addPerson(true);
      const interaction = await open();
      expect((await redeem(interaction, await issue(person, WEB_APP.id, 'passkey'))).outcome).toBe('finished');
      expect((await resultOf(interaction))?.login).toMatchObject({ accountId: person.id, amr: ['hwk', 'user'], acr: ACR_MFA });
    });

    it('is used up, signing no one in, by another client, another login_hint, or a disabled person', async () => {
      const person = await addPerson(true);
      const forOtherApp = await issue(person, 'another-app');
      expect((await redeem(await open(), forOtherApp)).outcome).toBe('unused');
      const wrongHint = await issue(person);
      expect((await redeem(await open({ params: { login_hint: 'someone.else@example.com' } }), wrongHint)).outcome).toBe('unused');
      // Neither works afterwards for the right request: each was used up.
      expect((await redeem(await open(), forOtherApp)).outcome).toBe('unused');
      expect((await redeem(await open(), wrongHint)).outcome).toBe('unused');
      const beforeDisabling = await issue(person);
      await services.db.prisma.user.update({ where: { id: person.id }, data: { disabled: true } });
      expect((await redeem(await open(), beforeDisabling)).outcome).toBe('unused');
      expect(await services.events(person.id, 'sign_in.success')).toHaveLength(0);
    });

    it('still passes the gate for an address that is not verified', async () => {
      const person = await addPerson(false);
      const interaction = await open();
      expect((await redeem(interaction, await issue(person))).outcome).toBe('second_factor');
      expect(await pendingOf(interaction)).toMatchObject({ accountId: person.id, stage: 'verify_email', via: 'pwd' });
    });
  });
});
