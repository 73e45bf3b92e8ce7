// What the engine needs changed about clients (installed by oidc/hooks.ts): presented secrets are
// checked against the hash kept at rest (clients/secrets.ts), and the placeholder the engine holds
// for a hashed secret never leaves in a response.
import type { Client } from 'oidc-provider';
import type { EngineHook } from '../core/engine-types.js';
import type { Logger } from '../core/logger.js';
import type { DbHandle } from '../db/client.js';
import { hashClientSecret, isCurrentHash, isPlaceholder, openPlaceholder, sameSecret, verifyClientSecret } from './secrets.js';
import { createClientStore } from './store.js';

export interface ClientSecretVerificationDeps {
  secrets: readonly string[];
  db: DbHandle;
  logger: Logger;
}

type CompareClientSecret = (this: Pick<Client, 'clientId' | 'clientSecret'>, presented: string) => Promise<boolean>;

/**
 * The replacement for the engine's Client#compareClientSecret (client_secret_basic and
 * client_secret_post): a placeholder is opened and the presented secret verified against the
 * stored hash, which is re-made with the newest of SECRETS after a match with an older one.
 */
export function compareClientSecretAtRest({ secrets, db, logger }: ClientSecretVerificationDeps): CompareClientSecret {
  const clients = createClientStore(db);

  async function upgradeHash(clientId: string, oldHash: string, presented: string): Promise<void> {
    const row = await clients.find(clientId);
    if (row?.client_secret_hash !== oldHash) return; // changed meanwhile
    await clients.save({ ...row, client_secret_hash: hashClientSecret(presented, secrets) });
  }

  return async function compareClientSecret(presented) {
    const stored = this.clientSecret;
    if (typeof presented !== 'string' || typeof stored !== 'string' || presented.length === 0) return false;
    if (!isPlaceholder(stored)) return sameSecret(presented, stored); // encrypted at rest, or an unsealed row
    const hash = openPlaceholder(stored, this.clientId, secrets);
    if (hash === null || !verifyClientSecret(presented, hash, secrets)) return false;
    if (!isCurrentHash(hash, secrets)) {
      // The old hash keeps working until this succeeds, so a failure only costs a retry later.
      await upgradeHash(this.clientId, hash, presented).catch((error: unknown) => logger.warn({ err: error, clientId: this.clientId }, 'could not re-hash a client secret'));
    }
    return true;
  };
}

/**
 * RFC 7592 reads and updates answer with the client's metadata: never with the placeholder
 * (there is no clear secret to return once it is hashed).
 */
export const hideSecretPlaceholders: EngineHook = {
  after(ctx) {
    const body = ctx.body as Record<string, unknown> | undefined;
    if (body && typeof body === 'object' && isPlaceholder(body.client_secret)) {
      delete body.client_secret;
      delete body.client_secret_expires_at;
    }
  },
};
