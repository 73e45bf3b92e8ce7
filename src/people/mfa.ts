// Multi-factor sign-in: TOTP (RFC 6238) with an authenticator app, and one-time recovery codes.
// The TOTP secret is kept encrypted with SECRETS (secrets.ts); it is pending (totpEnabledAt null)
// until the person proves they hold it with a code. Recovery codes carry 80 random bits each, so
// a plain SHA-256 is enough to keep them out of a leaked database. The interaction steps
// (interactions.ts) call this after a correct password; nothing here knows about the engine.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type * as Otp from 'otplib';
import type * as QRCode from 'qrcode';
import type { Db } from '../db/client.js';
import { createRecoveryCodeStore } from './recovery-code-store.js';
import { createUserStore, type User } from './store.js';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import { decrypt, encrypt } from '../core/secrets.js';

export const RECOVERY_CODE_COUNT = 10;

/** One 30-second step either side of now: phone clocks drift, and people type at the turn of a step. */
const TOTP_TOLERANCE_SECONDS = 30;

const TOTP_CODE = /^\d{6}$/;

export interface TotpEnrolment {
  /** Base32, for typing into an app that cannot scan. */
  secret: string;
  /** The otpauth:// URI as an SVG QR code in a data: URL (rendered here, never by a third party). */
  qrCode: string;
}

/** True when this row of the person (people/store.ts) has confirmed TOTP. */
export const totpEnabled = (user: Pick<User, 'totpEnabledAt' | 'totpSecretEncrypted'> | null | undefined): boolean => Boolean(user?.totpEnabledAt && user.totpSecretEncrypted);

export interface Mfa {
  /** True when the person has confirmed TOTP. */
  isEnabled(userId: string): Promise<boolean>;
  /** Makes a new pending secret; false when TOTP is already enabled (nothing changed). */
  beginEnrolment(userId: string): Promise<boolean>;
  /** What the enrolment page shows for the pending secret; null when there is none. */
  describeEnrolment(userId: string): Promise<TotpEnrolment | null>;
  /** Enables TOTP when `code` matches the pending secret; returns the new recovery codes (shown once). */
  confirmEnrolment(userId: string, code: string): Promise<string[] | null>;
  /** True when `code` is the current code of the person's enabled TOTP secret. */
  verifyCode(userId: string, code: string): Promise<boolean>;
  /** Uses up one recovery code; the number still unused, or null when the code is not valid. */
  useRecoveryCode(userId: string, code: string): Promise<{ remaining: number } | null>;
  /** Removes TOTP and the recovery codes (an admin's reset) and records `mfa.removed`. */
  resetMfa(userId: string, origin?: RequestOrigin & { details?: Record<string, unknown> }): Promise<boolean>;
}

export interface MfaOptions {
  secrets: readonly string[];
  audit: AuditLog;
  /** The name authenticator apps show next to the account. */
  issuerName?: string;
}

const hashRecoveryCode = (normalized: string) => createHash('sha256').update(normalized).digest();

/** Recovery codes are typed by hand: case, spaces and dashes do not matter. */
const normalizeRecoveryCode = (code: string) => code.toLowerCase().replace(/[^a-z0-9]/g, '');

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** 80 random bits as 16 base32 characters, shown as xxxx-xxxx-xxxx-xxxx. */
function newRecoveryCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join('-') ?? out;
}

// otplib and qrcode are loaded with the first enrolment or code checked, not at start-up.
// qrcode is CommonJS: its default export is the module, under Node's loader and in the bundle.
let otpModule: Promise<typeof Otp> | undefined;
const otp = () => (otpModule ??= import('otplib'));
let qrCodeModule: Promise<typeof QRCode> | undefined;
const qrCode = () => (qrCodeModule ??= import('qrcode').then(({ default: qrcode }) => qrcode as typeof QRCode));

/** The RFC 6238 time step the code belongs to, or null when it is not a current code. */
async function totpStep(secret: string, code: string, afterTimeStep?: number): Promise<number | null> {
  const token = code.replace(/\s/g, '');
  if (!TOTP_CODE.test(token)) return null;
  const result = await (await otp()).verify({ secret, token, epochTolerance: TOTP_TOLERANCE_SECONDS, ...(afterTimeStep === undefined ? {} : { afterTimeStep }) });
  return result.valid && 'timeStep' in result && typeof result.timeStep === 'number' ? result.timeStep : null;
}

export function createMfa(db: Db, { secrets, audit, issuerName = 'Gatehouse' }: MfaOptions): Mfa {
  const users = createUserStore(db);
  const recoveryCodes = createRecoveryCodeStore(db);
  // Each secret is bound to its person: a value copied into another person's row does not decrypt there.
  const context = (userId: string) => `totp:${userId}` as const;
  const open = (user: { id: string; totpSecretEncrypted: string }) => decrypt(user.totpSecretEncrypted, secrets, context(user.id));

  return {
    async isEnabled(userId) {
      return totpEnabled(await users.findById(userId));
    },

    beginEnrolment: async (userId) => users.startTotpEnrolment(userId, encrypt((await otp()).generateSecret(), secrets, context(userId))),

    async describeEnrolment(userId) {
      const user = await users.findById(userId);
      if (!user?.totpSecretEncrypted || user.totpEnabledAt) return null;
      const secret = open({ id: user.id, totpSecretEncrypted: user.totpSecretEncrypted }).plaintext;
      const uri = (await otp()).generateURI({ issuer: issuerName, label: user.email, secret });
      const svg = await (await qrCode()).toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { secret, qrCode: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    },

    async confirmEnrolment(userId, code) {
      const user = await users.findById(userId);
      if (!user?.totpSecretEncrypted || user.totpEnabledAt || user.disabled) return null;
      const step = await totpStep(open({ id: user.id, totpSecretEncrypted: user.totpSecretEncrypted }).plaintext, code);
      if (step === null || !(await users.claimTotpStep(userId, step))) return null;
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
      const hashes = codes.map((c) => hashRecoveryCode(normalizeRecoveryCode(c)).toString('hex'));
      // Guarded by the sealed value we checked: a concurrent new enrolment makes this a no-op.
      return (await users.enableTotp(userId, user.totpSecretEncrypted, hashes)) ? codes : null;
    },

    async verifyCode(userId, code) {
      const user = await users.findById(userId);
      if (!user?.totpSecretEncrypted || !user.totpEnabledAt || user.disabled) return false;
      const { plaintext, rotated } = open({ id: user.id, totpSecretEncrypted: user.totpSecretEncrypted });
      // A code is good once: its time step must be later than the last one accepted.
      const step = await totpStep(plaintext, code, user.totpLastStep ?? undefined);
      if (step === null || !(await users.claimTotpStep(userId, step))) return false;
      // Sealed with an older secret or in the old format: sealed again now that it was used.
      if (rotated) await users.resealTotpSecret(userId, user.totpSecretEncrypted, encrypt(plaintext, secrets, context(userId)));
      return true;
    },

    async useRecoveryCode(userId, code) {
      const normalized = normalizeRecoveryCode(code);
      if (normalized.length !== 16) return null;
      const user = await users.findById(userId);
      if (!user || user.disabled) return null;
      const given = hashRecoveryCode(normalized);
      // Compare against every unused code in constant time, without stopping at a match.
      let match: string | undefined;
      for (const row of await recoveryCodes.listUnused(userId)) {
        const stored = Buffer.from(row.codeHash, 'hex');
        if (stored.length === given.length && timingSafeEqual(stored, given)) match = row.id;
      }
      if (!match || !(await recoveryCodes.markUsed(match))) return null;
      return { remaining: await recoveryCodes.countUnused(userId) };
    },

    async resetMfa(userId, { details, ...origin } = {}) {
      const removed = await users.resetMfa(userId);
      if (removed) await audit.record({ type: 'mfa.removed', accountId: userId, ...origin, details: details ?? null });
      return removed;
    },
  };
}
