// The password step reads the person once: whether a TOTP code is owed comes from the row the
// password check read (people/accounts.ts signInWithPassword), not from a second lookup.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/log.js';
import { createInteractionSteps } from '../../src/oidc/interactions.js';
import { PENDING_KEY, type Interaction } from '../../src/oidc/interaction-state.js';
import type { PasswordVerifier } from '../../src/people/accounts.js';
import type { Mfa } from '../../src/people/mfa.js';
import type { Passkeys } from '../../src/people/passkeys.js';
import type { SignInLimits } from '../../src/people/sign-in-limits.js';
import type { User } from '../../src/people/store.js';

const interaction = { uid: 'uid-1', cid: 'cid-1', prompt: { name: 'login', reasons: [], details: {} }, params: { client_id: 'app' } } as unknown as Interaction;
const req = new IncomingMessage(new Socket());
const res = new ServerResponse(req);

function stepsFor(person: Partial<User> | null) {
  // What the step wrote into the interaction: a finished login, or the second factor still owed.
  const finished: unknown[] = [];
  const kept: unknown[] = [];
  const provider = {
    async interactionResult(_req: unknown, _res: unknown, result: Record<string, unknown>) {
      (result.login ? finished : kept).push(result);
      return 'https://issuer.example/authorize/uid-1';
    },
  } as unknown as Provider;
  const passwords: PasswordVerifier = {
    signInWithPassword: async () => (person ? ({ id: 'acc-1', totpEnabledAt: null, totpSecretEncrypted: null, ...person } as User) : null),
    verifyPassword: async () => {
      throw new Error('the password step asks for the row, not the id');
    },
  };
  const mfa = {
    isEnabled: async () => {
      throw new Error('the person was read a second time');
    },
  } as unknown as Mfa;
  const passkeys = { count: async () => 0 } as unknown as Passkeys;
  const steps = createInteractionSteps(provider, passwords, {} as AuditLog, mfa, {} as SignInLimits, passkeys);
  return { steps, finished, kept };
}

describe('the password step', () => {
  it('finishes the login of a person without TOTP from the row the password check read', async () => {
    const { steps, finished } = stepsFor({});
    expect(await steps.submitLogin(req, res, interaction, 'a@example.com', 'pw', { ip: null })).toBe('finished');
    expect(finished).toEqual([{ login: { accountId: 'acc-1', amr: ['pwd'], acr: expect.any(String) } }]);
  });

  it('asks for the code of a person whose row shows TOTP confirmed, without reading them again', async () => {
    const { steps, finished, kept } = stepsFor({ totpEnabledAt: new Date(), totpSecretEncrypted: 'sealed' });
    expect(await steps.submitLogin(req, res, interaction, 'a@example.com', 'pw', { ip: null })).toBe('second_factor');
    expect(finished).toEqual([]);
    expect(kept).toEqual([{ [PENDING_KEY]: expect.objectContaining({ accountId: 'acc-1', stage: 'code' }) }]);
  });

  it('says wrong when the password check refuses', async () => {
    const { steps, finished } = stepsFor(null);
    expect(await steps.submitLogin(req, res, interaction, 'a@example.com', 'pw', { ip: null })).toBe('wrong');
    expect(finished).toEqual([]);
  });
});
