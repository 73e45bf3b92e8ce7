// Pairwise subject identifiers (OpenID Connect Core 8.1): clients registered with
// subject_type "pairwise" see a different, stable `sub` per sector. The salt is random,
// generated once per deployment, stored encrypted with SECRETS and shared by all instances,
// so subjects survive restarts, scale-out and secret rotation.
import { createHash, randomBytes } from 'node:crypto';
import type { Configuration } from 'oidc-provider';
import type { Db } from '../db/client.js';
import { createSettingStore } from '../db/settings.js';
import { decrypt, encrypt } from '../core/secrets.js';

export const SALT_KEY = 'pairwise-subject-salt';

export async function loadPairwiseSalt(db: Db, secrets: readonly string[]): Promise<string> {
  const settings = createSettingStore(db);
  const stored = await settings.getOrCreate(SALT_KEY, encrypt(randomBytes(32).toString('base64url'), secrets, 'pairwise-salt'));
  const { plaintext, rotated } = decrypt(stored, secrets, 'pairwise-salt');
  if (rotated) await settings.set(SALT_KEY, encrypt(plaintext, secrets, 'pairwise-salt'));
  return plaintext;
}

export function pairwiseIdentifier(salt: string): NonNullable<Configuration['pairwiseIdentifier']> {
  return async function pairwiseIdentifier(_ctx, accountId, client) {
    return createHash('sha256').update(String(client.sectorIdentifier ?? '')).update('\0').update(accountId).update('\0').update(salt).digest('base64url');
  };
}
