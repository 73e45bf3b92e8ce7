// Queries on OidcArtifact: everything the engine stores through its adapter, keyed by
// (model, id). Expiry is compared against a `now` the caller passes, so tests can control time.
import type { Prisma } from './client.js';

export type Payload = Record<string, unknown>;

export interface ArtifactRow {
  payload: Payload;
  grantId: string | null;
  consumedAt: Date | null;
  expiresAt: Date | null;
}

export interface ArtifactLookups {
  grantId?: string | null;
  uid?: string | null;
  userCode?: string | null;
  accountId?: string | null;
  clientId?: string | null;
}

const SELECT = { payload: true, grantId: true, consumedAt: true, expiresAt: true } as const;

const live = (now: Date) => ({ OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] });

/**
 * PostgreSQL cannot store or compare U+0000 in text or jsonb, so a value containing it can
 * match nothing: look-ups with one find nothing on both databases alike.
 */
export const hasNul = (value: string) => value.includes('\0');

export function createArtifactQueries(prisma: Prisma) {
  return {
    async save(model: string, id: string, payload: Payload, lookups: ArtifactLookups, expiresAt: Date | null): Promise<void> {
      const data = { payload: payload as object, ...lookups, expiresAt };
      await prisma.oidcArtifact.upsert({
        where: { model_id: { model, id } },
        create: { model, id, ...data },
        update: data,
      });
    },

    async find(model: string, id: string, now: Date): Promise<ArtifactRow | null> {
      if (hasNul(id)) return null;
      return prisma.oidcArtifact.findFirst({ where: { model, id, ...live(now) }, select: SELECT }) as Promise<ArtifactRow | null>;
    },

    async findBy(model: string, field: 'uid' | 'userCode', value: string, now: Date): Promise<ArtifactRow | null> {
      if (hasNul(value)) return null;
      return prisma.oidcArtifact.findFirst({ where: { model, [field]: value, ...live(now) }, select: SELECT }) as Promise<ArtifactRow | null>;
    },

    /** Marks a live, unconsumed artifact consumed. False when it was already consumed, expired or gone. */
    async consume(model: string, id: string, now: Date): Promise<boolean> {
      if (hasNul(id)) return false;
      const { count } = await prisma.oidcArtifact.updateMany({
        where: { model, id, consumedAt: null, ...live(now) },
        data: { consumedAt: now },
      });
      return count === 1;
    },

    async grantIdOf(model: string, id: string): Promise<string | null> {
      const row = await prisma.oidcArtifact.findUnique({ where: { model_id: { model, id } }, select: { grantId: true } });
      return row?.grantId ?? null;
    },

    async destroy(model: string, id: string): Promise<void> {
      await prisma.oidcArtifact.deleteMany({ where: { model, id } });
    },

    /** Deletes the given model's artifacts of a grant, or every artifact of it when no model is given. */
    async destroyByGrantId(grantId: string, model?: string): Promise<number> {
      const { count } = await prisma.oidcArtifact.deleteMany({ where: model ? { model, grantId } : { grantId } });
      return count;
    },

    /** The newest live grant an account gave a client, to remember consent across sessions. */
    async latestGrantId(accountId: string, clientId: string, now: Date): Promise<string | null> {
      const row = await prisma.oidcArtifact.findFirst({
        where: { model: 'Grant', accountId, clientId, ...live(now) },
        orderBy: { createdAt: 'desc' },
        select: { id: true },
      });
      return row?.id ?? null;
    },

    async deleteExpired(now: Date): Promise<number> {
      const { count } = await prisma.oidcArtifact.deleteMany({ where: { expiresAt: { lte: now } } });
      return count;
    },
  };
}

export type ArtifactQueries = ReturnType<typeof createArtifactQueries>;
