// The MFA service (src/people/mfa.ts) called directly, on SQLite and PostgreSQL: a TOTP secret is
// pending and kept only encrypted until a code confirms it; a code is good once; recovery codes
// are stored as hashes and each is good once, even when sent twice at the same moment; a reset
// removes everything and says so in the audit trail. The pages that use it: mfa.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt } from '../../src/core/secrets.js';
import { RECOVERY_CODE_COUNT } from '../../src/people/mfa.js';
import { createUserStore } from '../../src/people/store.js';
import { flavours } from '../helpers/databases.js';
import { startServices, type Services } from '../helpers/services.js';
import { anotherCode, codeAt, currentStep, enrolTotp } from '../helpers/totp.js';

const ORIGIN = { ip: '192.0.2.20', userAgent: 'mfa-service-test' };

describe.each(await flavours())('the MFA service on %s', (flavour) => {
  let services: Services;
  beforeAll(async () => (services = await startServices(flavour)));
  afterAll(async () => services?.close());

  const mfa = () => services.mfa;
  const userRow = (id: string) => services.db.prisma.user.findUniqueOrThrow({ where: { id } });
  const disable = (id: string) => createUserStore(services.db).update(id, { disabled: true });
  /** A new person with TOTP on: the secret, the recovery codes, and the step whose code enrolment used. */
  async function enrolled() {
    const person = await services.addPerson();
    return { ...person, ...(await enrolTotp(mfa(), person.id)) };
  }

  describe('enrolment', () => {
    it('keeps a new secret pending, and only encrypted, until a code confirms it', async () => {
      const { id } = await services.addPerson();
      expect(await mfa().beginEnrolment(id)).toBe(true);
      const enrolment = await mfa().describeEnrolment(id);
      expect(enrolment?.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(enrolment?.qrCode).toMatch(/^data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+$/);
      expect(await mfa().isEnabled(id)).toBe(false);

      const row = await userRow(id);
      expect(row.totpEnabledAt).toBeNull();
      expect(row.totpSecretEncrypted).toMatch(/^v2\./);
      expect(row.totpSecretEncrypted).not.toContain(enrolment?.secret);
      expect(decrypt(row.totpSecretEncrypted as string, services.config.secrets, `totp:${id}`).plaintext).toBe(enrolment?.secret);
    });

    it('enables TOTP for the current code only, and hands out recovery codes stored as hashes', async () => {
      const { id } = await services.addPerson();
      await mfa().beginEnrolment(id);
      const secret = (await mfa().describeEnrolment(id))!.secret;
      const code = await codeAt(secret, currentStep());
      for (const wrong of [anotherCode(code), code.slice(1), 'abcdef', '']) expect(await mfa().confirmEnrolment(id, wrong), wrong).toBeNull();
      expect(await mfa().isEnabled(id)).toBe(false);

      const recoveryCodes = (await mfa().confirmEnrolment(id, code)) as string[];
      expect(recoveryCodes).toHaveLength(RECOVERY_CODE_COUNT);
      expect(new Set(recoveryCodes).size).toBe(RECOVERY_CODE_COUNT);
      for (const recoveryCode of recoveryCodes) expect(recoveryCode).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
      expect(await mfa().isEnabled(id)).toBe(true);
      // Shown once, then no longer described as an enrolment.
      expect(await mfa().describeEnrolment(id)).toBeNull();
      const stored = await services.db.prisma.recoveryCode.findMany({ where: { userId: id } });
      expect(stored).toHaveLength(RECOVERY_CODE_COUNT);
      for (const row of stored) {
        expect(row.codeHash).toMatch(/^[0-9a-f]{64}$/);
        for (const recoveryCode of recoveryCodes) expect(row.codeHash).not.toContain(recoveryCode.replace(/-/g, ''));
      }
    });

    it('refuses a code of a pending secret that a newer enrolment replaced', async () => {
      const { id } = await services.addPerson();
      await mfa().beginEnrolment(id);
      const first = (await mfa().describeEnrolment(id))!.secret;
      expect(await mfa().beginEnrolment(id)).toBe(true);
      const second = (await mfa().describeEnrolment(id))!.secret;
      expect(second).not.toBe(first);
      expect(await mfa().confirmEnrolment(id, await codeAt(first, currentStep()))).toBeNull();
      expect(await mfa().confirmEnrolment(id, await codeAt(second, currentStep()))).toHaveLength(RECOVERY_CODE_COUNT);
    });

    it('never replaces a confirmed secret, and confirms nothing twice', async () => {
      const person = await enrolled();
      const sealed = (await userRow(person.id)).totpSecretEncrypted;
      expect(await mfa().beginEnrolment(person.id)).toBe(false);
      expect((await userRow(person.id)).totpSecretEncrypted).toBe(sealed);
      expect(await mfa().confirmEnrolment(person.id, await codeAt(person.secret, person.step + 1))).toBeNull();
    });

    it('confirms nothing for a disabled person', async () => {
      const { id } = await services.addPerson();
      await mfa().beginEnrolment(id);
      const secret = (await mfa().describeEnrolment(id))!.secret;
      await disable(id);
      expect(await mfa().confirmEnrolment(id, await codeAt(secret, currentStep()))).toBeNull();
      expect(await mfa().isEnabled(id)).toBe(false);
    });
  });

  describe('codes', () => {
    it('accepts a code once: the same code again is refused, the next step’s is not', async () => {
      const person = await enrolled();
      const next = await codeAt(person.secret, person.step + 1);
      // The code that confirmed the enrolment has been used already.
      expect(await mfa().verifyCode(person.id, await codeAt(person.secret, person.step))).toBe(false);
      expect(await mfa().verifyCode(person.id, `${next.slice(0, 3)} ${next.slice(3)}`)).toBe(true);
      expect(await mfa().verifyCode(person.id, next)).toBe(false);
      expect((await userRow(person.id)).totpLastStep).toBe(person.step + 1);
    });

    it('lets exactly one of two simultaneous uses of a code through', async () => {
      const person = await enrolled();
      const next = await codeAt(person.secret, person.step + 1);
      const results = await Promise.all([mfa().verifyCode(person.id, next), mfa().verifyCode(person.id, next)]);
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('refuses a wrong code, a code of someone else’s secret, and any code of a person without TOTP or disabled', async () => {
      const person = await enrolled();
      const other = await enrolled();
      const next = await codeAt(person.secret, person.step + 1);
      expect(await mfa().verifyCode(person.id, anotherCode(next))).toBe(false);
      expect(await mfa().verifyCode(other.id, next)).toBe(false);
      const { id: withoutTotp } = await services.addPerson();
      expect(await mfa().verifyCode(withoutTotp, next)).toBe(false);
      await disable(person.id);
      expect(await mfa().verifyCode(person.id, next)).toBe(false);
    });
  });

  describe('recovery codes', () => {
    it('accepts each once, however it is typed, and counts what is left', async () => {
      const person = await enrolled();
      const [first, second] = person.recoveryCodes as [string, string];
      expect(await mfa().useRecoveryCode(person.id, ` ${first.toUpperCase().replace(/-/g, ' ')} `)).toEqual({ remaining: RECOVERY_CODE_COUNT - 1 });
      expect(await mfa().useRecoveryCode(person.id, first)).toBeNull();
      expect(await mfa().useRecoveryCode(person.id, second)).toEqual({ remaining: RECOVERY_CODE_COUNT - 2 });
      expect(await services.db.prisma.recoveryCode.count({ where: { userId: person.id, usedAt: { not: null } } })).toBe(2);
    });

    it('lets exactly one of two simultaneous uses of a recovery code through', async () => {
      const person = await enrolled();
      const [code] = person.recoveryCodes as [string];
      const results = await Promise.all([mfa().useRecoveryCode(person.id, code), mfa().useRecoveryCode(person.id, code)]);
      expect(results.filter((result) => result !== null)).toEqual([{ remaining: RECOVERY_CODE_COUNT - 1 }]);
    });

    it('refuses another person’s code, a code of the wrong length, and any code of a disabled person', async () => {
      const person = await enrolled();
      const other = await enrolled();
      const [code] = person.recoveryCodes as [string];
      expect(await mfa().useRecoveryCode(other.id, code)).toBeNull();
      expect(await mfa().useRecoveryCode(person.id, code.slice(0, -1))).toBeNull();
      expect(await mfa().useRecoveryCode(person.id, `${code}a`)).toBeNull();
      await disable(person.id);
      expect(await mfa().useRecoveryCode(person.id, code)).toBeNull();
      expect(await services.db.prisma.recoveryCode.count({ where: { usedAt: { not: null }, userId: { in: [person.id, other.id] } } })).toBe(0);
    });
  });

  it('resets TOTP and the recovery codes once, recording who asked, and finds nothing to reset the second time', async () => {
    const person = await enrolled();
    expect(await mfa().resetMfa(person.id, { ...ORIGIN, details: { via: 'admin' } })).toBe(true);
    expect(await mfa().isEnabled(person.id)).toBe(false);
    const row = await userRow(person.id);
    expect({ secret: row.totpSecretEncrypted, enabledAt: row.totpEnabledAt, lastStep: row.totpLastStep }).toEqual({ secret: null, enabledAt: null, lastStep: null });
    expect(await services.db.prisma.recoveryCode.count({ where: { userId: person.id } })).toBe(0);
    expect(await mfa().verifyCode(person.id, await codeAt(person.secret, person.step + 1))).toBe(false);

    expect(await mfa().resetMfa(person.id)).toBe(false);
    expect(await services.events(person.id, 'mfa.removed')).toEqual([expect.objectContaining({ ...ORIGIN, details: { via: 'admin' } })]);
  });
});
