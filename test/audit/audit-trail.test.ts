// The audit trail: a whole sign-in, token, refresh, revocation, logout and registration leaves
// the expected events, in order, with who, which client and from where, and never a
// credential; retention deletes old events only; operators read them with `audit list`.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAuditStore } from '../../src/audit/store.js';
import { createAuditLog, pruneAuditEvents, startAuditRetention } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import type { Executor } from '../../src/db/executor.js';
import { logout, RecordingBrowser, revokeToken, signInAndRefresh } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const WRONG_PASSWORD = 'not-the-password-but-still-secret';
const BROWSER_AGENT = 'AuditTestBrowser/1.0';
const CLIENT_AGENT = 'AuditTestClient/2.0';
const DAY = 86_400_000;

describe.each(await flavours())('audit trail on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;
  /** Every credential the flow saw; none may appear in an audit row. */
  const credentials = new Set<string>([ALICE.password, WRONG_PASSWORD, WEB_APP.secret]);

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env: { FEATURE_REGISTRATION: 'true' }, clients: [webApp()], people: [ALICE] });
    aliceId = server.idOf(ALICE);
  });
  afterAll(async () => server?.close());

  const audit = () => createAuditStore(server.gatehouse.db);

  it('records sign-in, consent, tokens, revocation, logout and registration in order, without credentials', async () => {
    const browser = new RecordingBrowser(server.url, BROWSER_AGENT);
    const { code, issued, refreshed } = await signInAndRefresh(browser, server.url, WEB_APP, ALICE, { wrongPassword: WRONG_PASSWORD, clientAgent: CLIENT_AGENT });
    credentials.add(code);
    for (const body of [issued, refreshed]) for (const token of [body.access_token, body.refresh_token, body.id_token]) if (token) credentials.add(token);
    expect(await revokeToken(server.url, WEB_APP, refreshed.refresh_token as string, { 'user-agent': CLIENT_AGENT })).toBe(200);
    expect((await logout(browser, server.url, WEB_APP, refreshed.id_token as string))?.href).toBe(WEB_APP.postLogoutRedirectUri);
    for (const value of browser.cookieValues) if (value.length >= 16) credentials.add(value);

    // Dynamic registration: create, update, delete.
    const initialAccessToken = await new server.gatehouse.provider.InitialAccessToken({ expiresIn: 60 }).save();
    credentials.add(initialAccessToken);
    const created = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${initialAccessToken}`, 'user-agent': CLIENT_AGENT },
      body: JSON.stringify({ client_name: 'Registered', grant_types: ['client_credentials'], response_types: [] }),
    });
    expect(created.status).toBe(201);
    const registered = (await created.json()) as Record<string, string> & { client_id: string; registration_client_uri: string; registration_access_token: string; client_secret: string };
    credentials.add(registered.client_secret).add(registered.registration_access_token);
    const updated = await fetch(registered.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registered.registration_access_token}`, 'user-agent': CLIENT_AGENT },
      body: JSON.stringify({ client_id: registered.client_id, client_name: 'Renamed', grant_types: ['client_credentials'], response_types: [] }),
    });
    expect(updated.status).toBe(200);
    const rotated = ((await updated.json()) as { registration_access_token: string }).registration_access_token;
    credentials.add(rotated);
    const deleted = await fetch(registered.registration_client_uri, { method: 'DELETE', headers: { authorization: `Bearer ${rotated}`, 'user-agent': CLIENT_AGENT } });
    expect(deleted.status).toBe(204);

    const expected = [
      'sign_in.failure',
      'sign_in.success',
      'consent.given',
      'token.issued',
      'token.issued',
      'token.revoked',
      'consent.revoked',
      'logout',
      'client.created',
      'client.updated',
      'client.deleted',
    ];
    const rows = (await audit().list({ limit: 1000 })).filter((row) => row.type !== 'key.created');
    // Oldest first; events of one request that share a millisecond are taken in their logical order.
    const rank = (type: string) => expected.indexOf(type);
    rows.sort((a, b) => a.at.getTime() - b.at.getTime() || rank(a.type) - rank(b.type));
    expect(rows.map((row) => row.type)).toEqual(expected);

    const [failure, success, consent, codeGrant, refreshGrant, revoked, grantRevoked, loggedOut, clientCreated, clientUpdated, clientDeleted] = rows;
    for (const row of [failure, success, consent, loggedOut]) {
      expect(row).toMatchObject({ accountId: aliceId, userAgent: BROWSER_AGENT });
      expect(row?.ip).toMatch(/127\.0\.0\.1/);
    }
    expect(failure?.details).toMatchObject({ reason: expect.any(String) as string });
    expect(consent?.clientId).toBe(WEB_APP.id);
    expect(loggedOut?.clientId).toBe(WEB_APP.id);
    for (const row of [codeGrant, refreshGrant, revoked, grantRevoked]) {
      expect(row).toMatchObject({ accountId: aliceId, clientId: WEB_APP.id, userAgent: CLIENT_AGENT });
      expect(row?.ip).toMatch(/127\.0\.0\.1/);
    }
    expect(codeGrant?.details).toMatchObject({ grant_type: 'authorization_code', issued: expect.arrayContaining(['access_token', 'refresh_token', 'id_token']) as string[] });
    expect(refreshGrant?.details).toMatchObject({ grant_type: 'refresh_token' });
    expect(revoked?.details).toMatchObject({ token_type: 'RefreshToken' });
    expect(grantRevoked?.details).toMatchObject({ route: 'revocation' });
    for (const row of [clientCreated, clientUpdated, clientDeleted]) {
      expect(row).toMatchObject({ clientId: registered.client_id, userAgent: CLIENT_AGENT, details: { source: 'registration' } });
      expect(row?.accountId).toBeNull();
    }

    const keys = await audit().list({ type: 'key.created' });
    expect(keys).toHaveLength(2);

    // Not a single credential anywhere in the trail.
    const everything = JSON.stringify(await audit().list({ limit: 1000 }));
    for (const credential of credentials) expect(everything).not.toContain(credential);
    expect(credentials.size).toBeGreaterThanOrEqual(12);
  });

  it('lists events from the command line, and refuses bad arguments with exit code 2', async () => {
    const env = { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET };
    const cli = (...args: string[]) => runCli(['audit', 'list', ...args], env);
    const [failures, table, refused] = await Promise.all([cli('--json', '--type', 'sign_in.failure'), cli('--since', '1h', '--client', WEB_APP.id, '--limit', '3'), cli('--since', 'nonsense')]);
    for (const listed of [failures, table]) expect(listed.code, listed.stderr).toBe(0);
    const lines = JSON.parse(failures.stdout) as Record<string, unknown>[];
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'sign_in.failure', accountId: aliceId, userAgent: BROWSER_AGENT });
    expect(Number.isNaN(Date.parse(lines[0]?.at as string))).toBe(false);

    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^TIME\s+TYPE\s+ACCOUNT\s+CLIENT/);
    expect(rows).toHaveLength(4);
    expect(rows[1]).toContain('logout');

    expect(refused).toMatchObject({ code: 2 });
    expect(refused.stderr).toContain("option '--since <time>' argument 'nonsense' is invalid. Expected an ISO 8601 time");
  });

  it('deletes events older than the retention period and keeps newer ones', async () => {
    const queries = audit();
    const now = new Date();
    await queries.record({ type: 'sign_in.failure', details: { marker: 'old' } }, new Date(now.getTime() - 91 * DAY));
    await queries.record({ type: 'sign_in.failure', details: { marker: 'recent' } }, new Date(now.getTime() - 89 * DAY));
    await queries.record({ type: 'sign_in.failure', details: { marker: 'older' } }, new Date(now.getTime() - 120 * DAY));
    const markers = async () => (await queries.list({ type: 'sign_in.failure', limit: 1000 })).map((row) => (row.details as { marker?: string } | null)?.marker).filter(Boolean);

    expect(await pruneAuditEvents(server.gatehouse.db, 90 * 86_400, now)).toBe(2);
    expect(await markers()).toEqual(['recent']);
    expect(await queries.list({ type: 'token.issued' })).toHaveLength(2);

    // The periodic job applies the same rule.
    const errors: unknown[] = [];
    const stop = startAuditRetention(server.gatehouse.db, 88 * 86_400, 1, (error) => errors.push(error));
    try {
      await vi.waitFor(async () => expect(await markers()).toEqual([]), { timeout: 5000, interval: 200 });
    } finally {
      stop();
    }
    expect(errors).toEqual([]);
    expect(await queries.list({ type: 'token.issued' })).toHaveLength(2);
  });
});

describe.each(await flavours())('audit log batches on %s', (flavour) => {
  let db: MigratedDb;
  const statements: number[] = [];
  let log: ReturnType<typeof createAuditLog>;
  beforeAll(async () => {
    db = await migratedDb(flavour);
    // The database's own executor, counting the INSERTs and the events each carries.
    const counting: Executor = {
      rows: (statement, args) => db.executor.rows(statement, args),
      changes: async (statement, args) => {
        const changed = await db.executor.changes(statement, args);
        statements.push(changed);
        return changed;
      },
    };
    log = createAuditLog({ prisma: db.prisma, flavour: db.flavour, executor: counting }, createLogger({ logLevel: 'silent' }));
  });
  afterAll(async () => db?.drop());

  it('writes the events of one turn of the event loop in one INSERT, each written by the time its record() resolves', async () => {
    statements.length = 0;
    const recorded = Array.from({ length: 5 }, (_, i) => log.record({ type: 'token.issued', clientId: `turn-${i}` }));
    for (const [i, record] of recorded.entries()) {
      await record;
      expect(await db.prisma.auditEvent.count({ where: { clientId: `turn-${i}` } })).toBe(1);
    }
    expect(statements).toEqual([5]);
  });

  it('writes an event recorded alone by itself, and one recorded in a later turn in a statement of its own', async () => {
    statements.length = 0;
    await log.record({ type: 'token.issued', clientId: 'alone-1' });
    await new Promise((resolve) => setImmediate(resolve));
    await log.record({ type: 'token.issued', clientId: 'alone-2' });
    expect(statements).toEqual([1, 1]);
    expect(await db.prisma.auditEvent.count({ where: { clientId: { startsWith: 'alone-' } } })).toBe(2);
  });
});
