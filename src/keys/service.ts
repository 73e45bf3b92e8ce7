// Signing keys for the admin API and the CLI: their states, and rotation on demand. The
// rotation itself (generations, activation delay, retirement) is keys.ts's.
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { listSigningKeys, rotateSigningKeys, rotationSchedule, SIGNING_ALGORITHMS, type KeyConfig } from './signing-keys.js';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { parseInput } from '../core/errors.js';

export interface KeyManagementDeps {
  db: Db;
  config: KeyConfig;
  audit: AuditLog;
  /** Makes this instance pick up new keys now (keys/refresher.ts); other instances follow at their next refresh. */
  refreshKeys?: () => Promise<unknown>;
}

export const RotateKeysInput = z
  .strictObject(
    {
      alg: z.enum(SIGNING_ALGORITHMS, { error: `must be one of ${SIGNING_ALGORITHMS.join(', ')}` }).optional().describe('Only this algorithm; default: all.'),
      immediate: z.boolean({ error: 'must be true or false' }).default(false).describe('Sign with the new key at once (suspected compromise) instead of after KEY_ACTIVATION_DELAY.'),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'RotateKeys' });

export const SigningKeyView = z
  .object({
    kid: z.string(),
    alg: z.string(),
    generation: z.number().int(),
    state: z.enum(['active', 'published', 'retired']),
    created_at: z.iso.datetime(),
    activates_at: z.iso.datetime().nullable(),
    retire_after: z.iso.datetime().nullable(),
    retired_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'SigningKey' });

export const SigningKeyList = z.object({ keys: z.array(SigningKeyView) }).meta({ id: 'SigningKeyList' });

export const KeyRotation = z
  .object({
    created: z.array(z.object({ kid: z.string(), alg: z.string(), generation: z.number().int(), activates_at: z.iso.datetime() })),
    retiring: z.array(z.object({ kid: z.string(), alg: z.string(), retire_after: z.iso.datetime() })),
    already_rotated: z.array(z.string()).describe('Algorithms another instance rotated at the same moment.'),
  })
  .meta({ id: 'KeyRotation' });

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);

export async function listKeys({ db }: Pick<KeyManagementDeps, 'db'>): Promise<z.infer<typeof SigningKeyList>> {
  const keys = await listSigningKeys(db);
  return {
    keys: keys.map((key) => ({
      kid: key.kid,
      alg: key.alg,
      generation: key.generation,
      state: key.state,
      created_at: key.createdAt.toISOString(),
      activates_at: iso(key.activatesAt),
      retire_after: iso(key.retireAfter),
      retired_at: iso(key.retiredAt),
    })),
  };
}

export async function rotateKeys(deps: KeyManagementDeps, input: unknown, actor: Actor): Promise<z.infer<typeof KeyRotation>> {
  const { alg, immediate } = parseInput(RotateKeysInput, input ?? {});
  const result = await rotateSigningKeys(deps.db, deps.config, { alg, immediate });
  for (const key of result.created) {
    await deps.audit.record({
      type: 'key.created',
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { kid: key.kid, alg: key.alg, activatesAt: key.activatesAt.toISOString(), reason: immediate ? 'rotation (immediate)' : 'rotation', ...actorDetails(actor) },
    });
  }
  await deps.refreshKeys?.();
  return {
    created: result.created.map((key) => ({ kid: key.kid, alg: key.alg, generation: key.generation, activates_at: key.activatesAt.toISOString() })),
    retiring: result.retiring.map((key) => ({ kid: key.kid, alg: key.alg, retire_after: key.retireAfter.toISOString() })),
    already_rotated: result.alreadyRotated,
  };
}

export const KeySchedule = z
  .object({
    interval_seconds: z.number().int().describe('KEY_ROTATION_INTERVAL; 0: no scheduled rotation.'),
    keys: z.array(z.object({ alg: z.string(), kid: z.string(), created_at: z.iso.datetime(), due_at: z.iso.datetime().nullable(), due: z.boolean() })),
  })
  .meta({ id: 'KeySchedule' });

/** The scheduled rotation: each algorithm's newest key, and when it is (or was) due to be replaced. */
export async function keySchedule({ db, config }: Pick<KeyManagementDeps, 'db' | 'config'>, now: Date = new Date()): Promise<z.infer<typeof KeySchedule>> {
  const interval = config.keys.rotationInterval;
  const entries = await rotationSchedule(db, interval, now);
  return { interval_seconds: interval, keys: entries.map((e) => ({ alg: e.alg, kid: e.kid, created_at: e.createdAt.toISOString(), due_at: iso(e.dueAt), due: e.due })) };
}
