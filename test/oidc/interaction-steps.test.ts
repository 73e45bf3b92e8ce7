// The interaction steps (src/oidc/interactions.ts) called directly, as the sign-in routes call
// them, on SQLite and PostgreSQL, without HTTP: what each step decides, what it keeps in the
// engine's interaction (the second factor still owed, then the finished prompt), and what it
// records in the audit trail. The end-to-end pages are tested in sign-in-flow and mfa.test.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SECOND_FACTOR_FAILURES, type Interaction } from '../../src/oidc/interaction-state.js';
import { ACR_MFA, ACR_PASSWORD, MFA_REQUIRED_REASON } from '../../src/oidc/provider.js';
import { flavours } from '../helpers/databases.js';
import { WEB_APP, webApp } from '../helpers/fixtures.js';
import { engineExchange, openInteraction, runStep, startServices, type InteractionSetUp, type OpenInteraction, type Services } from '../helpers/services.js';
import { anotherCode, codeAt, currentStep, enrolTotp } from '../helpers/totp.js';

const ORIGIN = { ip: '192.0.2.10', userAgent: 'interaction-steps-test' };
/**
 * SIGN_IN_MAX_FAILURES_PER_ACCOUNT: wrong passwords, and (counted apart) wrong codes, before the
 * account is locked; above MAX_SECOND_FACTOR_FAILURES, so the interaction's own limit shows first.
 */
const LOCKOUT_AFTER = MAX_SECOND_FACTOR_FAILURES + 1;


describe.each(await flavours())('the interaction steps on %s', (flavour) => {
  let services: Services;
  beforeAll(async () => {
    services = await startServices(flavour, { SIGN_IN_MAX_FAILURES_PER_ACCOUNT: String(LOCKOUT_AFTER), SIGN_IN_MAX_FAILURES_PER_IP: '1000' });
    await services.addClient(webApp());
  });
  afterAll(async () => services?.close());

  const open = (setUp: Partial<InteractionSetUp> = {}) => openInteraction(services.provider, { clientId: WEB_APP.id, ...setUp });

  /** One request to `interaction` as its route handles it: the interaction loaded from the request, then `step`. */
  const run = <T>(interaction: OpenInteraction, step: (req: IncomingMessage, res: ServerResponse, loaded: Interaction) => Promise<T>) => runStep(services, interaction, step);
  const submitLogin = (interaction: OpenInteraction, person: { email: string; password: string }) =>
    run(interaction, (req, res, loaded) => services.steps.submitLogin(req, res, loaded, person.email, person.password, ORIGIN));
  /** The second factor the interaction still owes, as the code and enrolment routes find it. */
  const pendingOf = async (interaction: OpenInteraction) => (await run(interaction, async (_req, _res, loaded) => services.steps.pendingSecondFactor(loaded))).outcome;
  const submitTotpCode = (interaction: OpenInteraction, code: string) =>
    run(interaction, async (req, res, loaded) => services.steps.submitTotpCode(req, res, loaded, services.steps.pendingSecondFactor(loaded)!, code, ORIGIN));
  const submitRecoveryCode = (interaction: OpenInteraction, code: string) =>
    run(interaction, async (req, res, loaded) => services.steps.submitRecoveryCode(req, res, loaded, services.steps.pendingSecondFactor(loaded)!, code, ORIGIN));
  /** What the finished prompt hands the engine: the login, consent or error it resumes with. */
  const resultOf = async (interaction: OpenInteraction) => (await interaction.stored())?.result;

  /** The engine resumes the authorization: the step answered with a redirect to the interaction's returnTo. */
  function expectResumed(res: ServerResponse, interaction: OpenInteraction) {
    expect(res.statusCode).toBe(303);
    expect(res.getHeader('location')).toBe(interaction.returnTo);
  }

  /** A new person with TOTP on: their email and password, the secret, the recovery codes and the step enrolment used. */
  async function personWithTotp() {
    const person = await services.addPerson();
    return { ...person, ...(await enrolTotp(services.mfa, person.id)) };
  }

  /** `person` (a new one with TOTP on unless given) signed in with the password in a new interaction, which now owes a code. */
  async function owingACode(person?: Awaited<ReturnType<typeof personWithTotp>>) {
    const enrolled = person ?? (await personWithTotp());
    const interaction = await open();
    expect((await submitLogin(interaction, enrolled)).outcome).toBe('second_factor');
    return { person: enrolled, interaction };
  }

  it('refuses to load an interaction for a browser that does not hold its cookie', async () => {
    await open();
    const { req, res } = engineExchange(services.provider);
    await expect(services.steps.load(req, res)).rejects.toBeInstanceOf(errors.SessionNotFound);
  });

  describe('submitLogin', () => {
    it('finishes the login prompt for the right password as a password sign-in, and records it', async () => {
      const person = await services.addPerson();
      const interaction = await open();
      const { outcome, res } = await submitLogin(interaction, person);
      expect(outcome).toBe('finished');
      expectResumed(res, interaction);
      expect(await resultOf(interaction)).toEqual({ login: { accountId: person.id, amr: ['pwd'], acr: ACR_PASSWORD } });
      expect(await services.events(person.id, 'sign_in.success')).toEqual([expect.objectContaining(ORIGIN)]);
    });

    it('answers a wrong password "wrong" without finishing anything, and counts it until even the right one is refused', async () => {
      const person = await services.addPerson();
      const interaction = await open();
      for (let i = 0; i < LOCKOUT_AFTER; i++) {
        const { outcome, res } = await submitLogin(interaction, { ...person, password: `wrong ${i}` });
        expect(outcome).toBe('wrong');
        expect(res.writableEnded).toBe(false);
      }
      expect(await resultOf(interaction)).toBeUndefined();
      // The account is locked now: the right password is answered exactly as a wrong one.
      expect((await submitLogin(interaction, person)).outcome).toBe('wrong');
      expect(await resultOf(interaction)).toBeUndefined();
      const reasons = (await services.events(person.id, 'sign_in.failure')).map((row) => (row.details as { reason: string }).reason);
      expect(reasons).toEqual([...Array<string>(LOCKOUT_AFTER).fill('wrong_password'), 'locked']);
      expect(await services.events(person.id, 'sign_in.locked')).toHaveLength(1);
      expect(await services.events(person.id, 'sign_in.success')).toEqual([]);
    });

    it('answers an unknown email "wrong" and records the failure without an account', async () => {
      const email = 'nobody-at-all@example.com';
      expect((await submitLogin(await open(), { email, password: 'whatever it is' })).outcome).toBe('wrong');
      const failures = await services.events(null, 'sign_in.failure');
      expect(failures.map((row) => row.details)).toContainEqual({ reason: 'unknown_email' });
    });

    it('owes a code, and finishes nothing, when the person has TOTP on', async () => {
      const person = await services.addPerson();
      await enrolTotp(services.mfa, person.id);
      const interaction = await open();
      expect((await submitLogin(interaction, person)).outcome).toBe('second_factor');
      expect(await pendingOf(interaction)).toEqual({ accountId: person.id, stage: 'code', failures: 0, via: 'pwd' });
      expect((await resultOf(interaction))?.login).toBeUndefined();
    });

    it('owes an enrolment, with a new pending secret, when the client requires MFA of a person without it', async () => {
      const person = await services.addPerson();
      const interaction = await open({ prompt: { name: 'login', reasons: ['no_session', MFA_REQUIRED_REASON] } });
      expect((await submitLogin(interaction, person)).outcome).toBe('second_factor');
      const pending = await pendingOf(interaction);
      expect(pending).toEqual({ accountId: person.id, stage: 'enroll', failures: 0, via: 'pwd' });
      expect((await services.steps.describeEnrolment(pending!))?.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(await services.mfa.isEnabled(person.id)).toBe(false);
    });
  });

  describe('the second factor', () => {
    it('finishes with amr pwd+otp and the MFA acr for a right code, and refuses the same code in the next sign-in', async () => {
      const { person, interaction } = await owingACode();
      const code = await codeAt(person.secret, person.step + 1);
      const { outcome, res } = await submitTotpCode(interaction, code);
      expect(outcome).toBe('finished');
      expectResumed(res, interaction);
      expect(await resultOf(interaction)).toEqual({ login: { accountId: person.id, amr: ['pwd', 'otp'], acr: ACR_MFA } });

      const again = await owingACode(person);
      expect((await submitTotpCode(again.interaction, code)).outcome).toBe('wrong');
      expect(await resultOf(again.interaction)).not.toHaveProperty('login');
    });

    it(`counts wrong codes in the interaction and forgets the password step at the ${MAX_SECOND_FACTOR_FAILURES}th`, async () => {
      const { person, interaction } = await owingACode();
      const wrong = anotherCode(await codeAt(person.secret, person.step + 1));
      for (let failures = 1; failures < MAX_SECOND_FACTOR_FAILURES; failures++) {
        expect((await submitTotpCode(interaction, wrong)).outcome).toBe('wrong');
        expect(await pendingOf(interaction)).toEqual({ accountId: person.id, stage: 'code', failures, via: 'pwd' });
      }
      expect((await submitTotpCode(interaction, wrong)).outcome).toBe('too_many_failures');
      // The password must be given again: nothing is owed, nothing is finished.
      expect(await pendingOf(interaction)).toBeUndefined();
      expect(await resultOf(interaction)).toEqual({});
      const failures = await services.events(person.id, 'mfa.failure');
      expect(failures.map((row) => row.details)).toEqual(Array.from({ length: MAX_SECOND_FACTOR_FAILURES }, (_, i) => ({ method: 'totp', failures: i + 1 })));
      expect(failures.every((row) => row.clientId === WEB_APP.id && row.ip === ORIGIN.ip)).toBe(true);
    });

    it('counts wrong codes against the account across password steps: the right password clears nothing, and once locked the right code is refused', async () => {
      const { person, interaction } = await owingACode();
      const wrong = anotherCode(await codeAt(person.secret, person.step + 1));
      for (let failures = 1; failures <= MAX_SECOND_FACTOR_FAILURES; failures++) await submitTotpCode(interaction, wrong);
      // The password again (right, so its own counter is cleared), then the failure that reaches the account's limit.
      const again = await owingACode(person);
      expect((await submitTotpCode(again.interaction, wrong)).outcome).toBe('wrong');
      expect(await services.events(person.id, 'mfa.locked')).toEqual([expect.objectContaining({ details: expect.objectContaining({ scope: 'account', method: 'totp' }) })]);
      expect((await submitTotpCode(again.interaction, await codeAt(person.secret, person.step + 1))).outcome).toBe('too_many_failures');
      expect(await resultOf(again.interaction)).not.toHaveProperty('login');
    });

    it('accepts a recovery code once instead of a code, recording how many are left, and refuses it the next time', async () => {
      const { person, interaction } = await owingACode();
      const [recoveryCode] = person.recoveryCodes as [string];
      expect((await submitRecoveryCode(interaction, recoveryCode)).outcome).toBe('finished');
      expect(await resultOf(interaction)).toEqual({ login: { accountId: person.id, amr: ['pwd', 'otp'], acr: ACR_MFA } });
      expect((await services.events(person.id, 'mfa.recovery_code_used')).map((row) => row.details)).toEqual([{ remaining: 9 }]);

      const again = await owingACode(person);
      expect((await submitRecoveryCode(again.interaction, recoveryCode)).outcome).toBe('wrong');
      expect(await pendingOf(again.interaction)).toEqual({ accountId: person.id, stage: 'code', failures: 1, via: 'pwd' });
      expect((await services.events(person.id, 'mfa.failure')).map((row) => row.details)).toEqual([{ method: 'recovery_code', failures: 1 }]);
    });

    it('enables TOTP for a right enrolment code only, shows the recovery codes once, then finishes as an MFA sign-in', async () => {
      const person = await services.addPerson();
      const interaction = await open({ prompt: { name: 'login', reasons: [MFA_REQUIRED_REASON] } });
      await submitLogin(interaction, person);
      const secret = (await services.steps.describeEnrolment((await pendingOf(interaction))!))!.secret;
      const confirm = (code: string) => run(interaction, (req, res, loaded) => services.steps.confirmEnrolment(req, res, loaded, services.steps.pendingSecondFactor(loaded)!, code, ORIGIN));

      const code = await codeAt(secret, currentStep());
      expect((await confirm(anotherCode(code))).outcome).toBe('wrong');
      expect(await services.mfa.isEnabled(person.id)).toBe(false);
      expect(await pendingOf(interaction)).toEqual({ accountId: person.id, stage: 'enroll', failures: 1, via: 'pwd' });

      const { outcome: recoveryCodes } = await confirm(code);
      expect(recoveryCodes).toHaveLength(10);
      expect(await services.mfa.isEnabled(person.id)).toBe(true);
      expect(await pendingOf(interaction)).toEqual({ accountId: person.id, stage: 'enrolled', failures: 0, via: 'pwd' });
      expect(await services.events(person.id, 'mfa.enrolled')).toEqual([expect.objectContaining({ clientId: WEB_APP.id, details: { method: 'totp' } })]);
      expect((await resultOf(interaction))?.login).toBeUndefined();

      const { res } = await run(interaction, (req, res) => services.steps.finishAfterEnrolment(req, res, { accountId: person.id, stage: 'enrolled', failures: 0, via: 'pwd' }, {}));
      expectResumed(res, interaction);
      expect(await resultOf(interaction)).toEqual({ login: { accountId: person.id, amr: ['pwd', 'otp'], acr: ACR_MFA } });
    });
  });

  describe('consent', () => {
    /** A grant `person` already gave the web app: openid and email, the email claim. */
    async function existingGrant(accountId: string) {
      const grant = new services.provider.Grant({ accountId, clientId: WEB_APP.id });
      grant.addOIDCScope('openid email');
      grant.addOIDCClaims(['email']);
      return grant.save();
    }
    const consentPrompt = { name: 'consent' as const, details: { missingOIDCScope: ['openid', 'profile'], missingOIDCClaims: ['nickname'], missingResourceScopes: { 'https://api.example': ['read'] } } };
    const confirmConsent = (interaction: OpenInteraction) => run(interaction, (req, res, loaded) => services.steps.confirmConsent(req, res, loaded, ORIGIN));

    it('tells what is asked for apart from what the existing grant holds, openid left out', async () => {
      const person = await services.addPerson();
      const interaction = await open({ prompt: consentPrompt, accountId: person.id, grantId: await existingGrant(person.id) });
      const described = await run(interaction, (_req, _res, loaded) => services.steps.describeConsent(loaded));
      expect(described.outcome).toEqual({
        requested: { scopes: ['profile'], claims: ['nickname'], resources: [{ indicator: 'https://api.example', scopes: ['read'] }] },
        granted: { scopes: ['email'], claims: ['email'], resources: [] },
      });
    });

    it('adds what was missing to the existing grant, records the consent, and finishes with that grant', async () => {
      const person = await services.addPerson();
      const grantId = await existingGrant(person.id);
      const interaction = await open({ prompt: consentPrompt, accountId: person.id, grantId });
      const { res } = await confirmConsent(interaction);
      expectResumed(res, interaction);
      expect((await resultOf(interaction))?.consent).toEqual({ grantId });
      const grant = await services.provider.Grant.find(grantId);
      expect(grant?.getOIDCScope().split(' ').sort()).toEqual(['email', 'openid', 'profile']);
      expect(grant?.getOIDCClaims().sort()).toEqual(['email', 'nickname']);
      expect(grant?.getResourceScope('https://api.example')).toBe('read');
      expect(await services.events(person.id, 'consent.given')).toEqual([
        expect.objectContaining({ clientId: WEB_APP.id, details: { scopes: ['openid', 'profile'], claims: ['nickname'], resources: ['https://api.example'] } }),
      ]);
    });

    it('makes a new grant for the account and the client on a first consent', async () => {
      const person = await services.addPerson();
      const interaction = await open({ prompt: { name: 'consent', details: { missingOIDCScope: ['openid', 'email'] } }, accountId: person.id });
      await confirmConsent(interaction);
      const { grantId } = (await resultOf(interaction))?.consent as { grantId: string };
      const grant = await services.provider.Grant.find(grantId);
      expect({ accountId: grant?.accountId, clientId: grant?.clientId, scope: grant?.getOIDCScope() }).toEqual({ accountId: person.id, clientId: WEB_APP.id, scope: 'openid email' });
    });

    it('refuses a consent prompt without a signed-in account, granting nothing', async () => {
      const interaction = await open({ prompt: consentPrompt });
      await expect(confirmConsent(interaction)).rejects.toThrow('consent prompt without a signed-in account');
      expect(await resultOf(interaction)).toBeUndefined();
    });
  });

  it('ends an interaction the person cancels with access_denied', async () => {
    const interaction = await open();
    const { res } = await run(interaction, (req, res) => services.steps.abortInteraction(req, res));
    expectResumed(res, interaction);
    expect(await resultOf(interaction)).toEqual({ error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  it('names a client by its registered name and links, and by its id when it has no name', async () => {
    await services.addClient(webApp({ client_id: 'nameless', client_name: undefined, client_uri: 'https://nameless.example/', logo_uri: 'https://nameless.example/logo.png' }));
    expect(await services.steps.describeClient(WEB_APP.id)).toMatchObject({ clientId: WEB_APP.id, name: 'Web App', uri: undefined });
    expect(await services.steps.describeClient('nameless')).toMatchObject({ clientId: 'nameless', name: 'nameless', uri: 'https://nameless.example/', logoUri: 'https://nameless.example/logo.png' });
  });
});
