// Reading the audit trail (audit/service.ts queryAuditEvents), the filters the console and the
// admin API page with: a person by the email they have now, and pages that neither repeat nor
// skip an event, even among events of the same instant; and the events' time-ordered ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAuditEvents } from '../../src/audit/service.js';
import { createAuditStore } from '../../src/audit/store.js';
import { ValidationError } from '../../src/core/errors.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { addUserTo } from '../helpers/gatehouse.js';

const VERSION_7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe.each(await flavours())('audit queries on %s', (flavour) => {
  let db: MigratedDb;
  let ana: string;
  let bo: string;
  beforeAll(async () => {
    db = await migratedDb(flavour);
    ana = await addUserTo(db, { email: 'ana@example.com', password: 'correct horse battery', name: 'Ana' });
    bo = await addUserTo(db, { email: 'bo@example.com', password: 'correct horse battery', name: 'Bo' });
    const store = createAuditStore(db);
    const same = new Date('2026-11-01T10:00:00Z');
    // Seven events of one instant (ties), then three later ones.
    await store.recordMany(Array.from({ length: 7 }, (_, i) => ({ event: { type: 'sign_in.success' as const, accountId: ana, clientId: `c${i}` }, at: same })));
    for (let i = 0; i < 3; i++) await store.record({ type: 'sign_in.failure', accountId: bo }, new Date(same.getTime() + (i + 1) * 60_000));
  });
  afterAll(async () => db?.drop());

  it('finds a person’s events by the email they have now, in any case; an unknown email finds none', async () => {
    const events = await queryAuditEvents({ db }, { email: '  ANA@example.com ' });
    expect(events).toHaveLength(7);
    expect(events.every((event) => event.account_id === ana)).toBe(true);
    expect(await queryAuditEvents({ db }, { email: 'nobody@example.com' })).toEqual([]);
    // An email and another person's id: nothing matches both.
    expect(await queryAuditEvents({ db }, { email: 'ana@example.com', account_id: bo })).toEqual([]);
    expect(await queryAuditEvents({ db }, { email: 'bo@example.com', account_id: bo })).toHaveLength(3);
  });

  it('pages newest first with offset, each event exactly once even among ties', async () => {
    const all = await queryAuditEvents({ db }, {});
    expect(all).toHaveLength(10);
    expect(all.slice(0, 3).map((event) => event.type)).toEqual(['sign_in.failure', 'sign_in.failure', 'sign_in.failure']);
    const pages = [];
    for (let offset = 0; offset < 10; offset += 3) pages.push(...(await queryAuditEvents({ db }, { limit: 3, offset })));
    expect(pages.map((event) => event.id)).toEqual(all.map((event) => event.id));
    expect(new Set(pages.map((event) => event.id)).size).toBe(10);
    expect(await queryAuditEvents({ db }, { offset: '10' })).toEqual([]);
  });

  it('gives every event a version-7 id made from its time, so the ids sort (on this database) in the order of the events', async () => {
    const byId = await db.prisma.auditEvent.findMany({ orderBy: { id: 'asc' }, select: { id: true, at: true } });
    expect(byId).toHaveLength(10);
    for (const { id, at } of byId) {
      expect(id).toMatch(VERSION_7);
      expect(parseInt(id.replace('-', '').slice(0, 12), 16)).toBe(at.getTime());
    }
    const times = byId.map(({ at }) => at.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('refuses a negative offset or an empty email', async () => {
    await expect(queryAuditEvents({ db }, { offset: -1 })).rejects.toThrow(ValidationError);
    await expect(queryAuditEvents({ db }, { email: ' ' })).rejects.toThrow(/email: must not be empty/);
  });
});
