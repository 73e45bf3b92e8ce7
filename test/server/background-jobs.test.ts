// What the background jobs delete every SWEEP_INTERVAL (src/server.ts, startBackgroundJobs), on
// both databases: exactly the rows past their time, none that are not. Each runs in SQL on the
// executor; that none starts Prisma's client engine is held by start-queries.test.ts.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { pruneAuditEvents } from '../../src/audit/log.js';
import { sweepExpiredCounters } from '../../src/core/counters.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { createLinkStore } from '../../src/people/link-store.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const NOW = new Date('2026-12-07T12:00:00Z');
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000);

describe.each(await flavours())('the background jobs on %s', (flavour) => {
  let db: MigratedDb;
  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterAll(async () => db?.drop());

  it('sweep the artifacts that expired, in batches, and keep the live ones and those that never expire', async () => {
    const expired = Array.from({ length: 5 }, (_, i) => ({ model: 'AccessToken', id: `gone-${i}`, payload: {}, expiresAt: minutes(-1 - i) }));
    const kept = [
      { model: 'AccessToken', id: 'live', payload: {}, expiresAt: minutes(1) },
      { model: 'Grant', id: 'forever', payload: {}, expiresAt: null },
      { model: 'Session', id: 'gone-0', payload: {}, expiresAt: minutes(5) },
    ];
    await db.prisma.oidcArtifact.createMany({ data: [...expired, ...kept] });
    expect(await createArtifactStore(db).deleteExpired(NOW, 2)).toBe(5);
    const left = await db.prisma.oidcArtifact.findMany({ select: { model: true, id: true }, orderBy: [{ model: 'asc' }, { id: 'asc' }] });
    expect(left).toEqual([
      { model: 'AccessToken', id: 'live' },
      { model: 'Grant', id: 'forever' },
      { model: 'Session', id: 'gone-0' },
    ]);
  });

  it('delete the audit events older than the retention', async () => {
    const event = (at: Date) => ({ id: randomUUID(), type: 'sign_in.succeeded', at, details: {} });
    await db.prisma.auditEvent.createMany({ data: [event(minutes(-61)), event(minutes(-60.5)), event(minutes(-59))] });
    expect(await pruneAuditEvents(db, 3600, NOW)).toBe(2);
    expect(await db.prisma.auditEvent.count()).toBe(1);
  });

  it('delete the brute-force counters that expired, and keep the running ones and those without an end', async () => {
    await db.prisma.rateLimiterFlexible.createMany({
      data: [
        { key: 'expired', points: 3, expire: minutes(-1) },
        { key: 'running', points: 1, expire: minutes(1) },
        { key: 'endless', points: 1, expire: null },
      ],
    });
    expect(await sweepExpiredCounters(db, NOW)).toBe(1);
    expect((await db.prisma.rateLimiterFlexible.findMany({ orderBy: { key: 'asc' } })).map((row) => row.key)).toEqual(['endless', 'running']);
  });

  it('delete the outbox messages sent or failed before the cutoff, never one still to send', async () => {
    const message = (id: string, state: string, finishedAt: Date | null) => ({ id, kind: 'mail', recipient: 'a@example.com', topic: 'reset', payloadEncrypted: '', state, maxAttempts: 5, finishedAt });
    await db.prisma.outboxMessage.createMany({
      data: [message('old-sent', 'sent', minutes(-10)), message('old-failed', 'failed', minutes(-10)), message('new-sent', 'sent', minutes(1)), message('pending', 'pending', null)],
    });
    expect(await createOutboxStore(db, ['a-secret-of-at-least-32-characters!!']).pruneFinished(NOW)).toBe(2);
    expect((await db.prisma.outboxMessage.findMany({ orderBy: { id: 'asc' } })).map((row) => row.id)).toEqual(['new-sent', 'pending']);
  });

  it('delete the mailed links that expired before the cutoff', async () => {
    const link = (id: string, expiresAt: Date) => ({ id, purpose: 'password_reset', tokenHash: `hash-${id}`, userId: 'someone', email: 'a@example.com', expiresAt });
    await db.prisma.accountLink.createMany({ data: [link('expired', minutes(-1)), link('valid', minutes(1))] });
    expect(await createLinkStore(db).pruneExpired(NOW)).toBe(1);
    expect((await db.prisma.accountLink.findMany()).map((row) => row.id)).toEqual(['valid']);
  });
});
