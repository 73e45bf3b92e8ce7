// On SQLite the engine's writes answer before their commit, and its answers wait for it
// (src/oidc/write-barrier.ts). Here the commit of a refresh's writes fails (a test trigger adds a
// row that a deferred foreign key refuses only at COMMIT, as a full disk would refuse it): the
// client gets server_error and no token, and since nothing of the refresh was kept, its refresh
// token still works once commits succeed again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingBrowser, refreshTokens, signInForTokens } from '../helpers/code-flow.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

describe('answers held until their writes are committed (SQLite)', () => {
  let server: TestGatehouse;

  beforeAll(async () => {
    server = await startTestGatehouse('sqlite', { clients: [webApp()], people: [ALICE] });
  });
  afterAll(() => server?.close());

  /** Until dropped, every commit that holds a new access token fails. */
  async function failCommitsOfAccessTokens(): Promise<() => Promise<void>> {
    const { prisma } = server.gatehouse.db;
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = ON');
    await prisma.$executeRawUnsafe('CREATE TABLE test_parent (id INTEGER PRIMARY KEY)');
    await prisma.$executeRawUnsafe('CREATE TABLE test_orphan (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED)');
    await prisma.$executeRawUnsafe(`CREATE TRIGGER test_fail_commit AFTER INSERT ON "OidcArtifact" WHEN NEW."model" = 'AccessToken' BEGIN INSERT INTO test_orphan VALUES (1); END`);
    return async () => {
      await prisma.$executeRawUnsafe('DROP TRIGGER test_fail_commit');
      await prisma.$executeRawUnsafe('DROP TABLE test_orphan');
      await prisma.$executeRawUnsafe('DROP TABLE test_parent');
      await prisma.$executeRawUnsafe('PRAGMA foreign_keys = OFF');
    };
  }

  it('refuses a refresh whose writes could not be committed with server_error, and loses nothing', async () => {
    const issued = await signInForTokens(new RecordingBrowser(server.url, 'write-barrier-test'), server.issuer, WEB_APP, ALICE);
    expect(issued.status).toBe(200);
    const refreshToken = issued.body.refresh_token as string;

    const restore = await failCommitsOfAccessTokens();
    let refused;
    try {
      refused = await refreshTokens(server.issuer, WEB_APP, refreshToken);
    } finally {
      await restore();
    }
    expect(refused.status).toBe(500);
    expect(refused.body).toMatchObject({ error: 'server_error' });
    expect(refused.body.access_token).toBeUndefined();
    expect(refused.body.refresh_token).toBeUndefined();

    // The refresh token was not consumed: it works, once.
    const refreshed = await refreshTokens(server.issuer, WEB_APP, refreshToken);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).toBeTruthy();
    expect((await refreshTokens(server.issuer, WEB_APP, refreshToken)).status).toBe(400);
  });
});
