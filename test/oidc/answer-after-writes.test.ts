// The engine's answers wait for the writes they carry (src/oidc/answer-after-writes.ts,
// src/db/deferred-writes.ts). A second instance on the same database accepts what an answer
// carried the moment it arrives; and when those writes cannot be committed (a test trigger refuses
// one kind of row, as a full disk or a lost connection would), the answer is refused with
// server_error and carries nothing: no token, no code, no redirect, no cookie.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, submitPassword, allowAccess } from '../helpers/browser.js';
import { authorizationUrl, refreshTokens, signInForTokens, startAuthorization } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTwoInstances, type TestGatehouse } from '../helpers/gatehouse.js';

describe.each(await flavours())('answers after their writes on %s', (flavour) => {
  let first: TestGatehouse;
  let second: TestGatehouse;

  beforeAll(async () => {
    [first, second] = await startTwoInstances(flavour, { clients: [webApp()], people: [ALICE] });
  });
  afterAll(() => first?.close());

  /** Until the returned function is called, the database refuses new rows of `model` (OidcArtifact). */
  async function refuseRows(model: string): Promise<() => Promise<void>> {
    const { prisma } = first.gatehouse.db;
    if (flavour === 'sqlite') {
      await prisma.$executeRawUnsafe(`CREATE TRIGGER test_refuse_rows BEFORE INSERT ON "OidcArtifact" WHEN NEW."model" = '${model}' BEGIN SELECT RAISE(ABORT, 'test: rows refused'); END`);
      return async () => void (await prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_rows'));
    }
    await prisma.$executeRawUnsafe(`CREATE FUNCTION test_refuse_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: rows refused'; END $$`);
    await prisma.$executeRawUnsafe(`CREATE TRIGGER test_refuse_rows BEFORE INSERT ON "OidcArtifact" FOR EACH ROW WHEN (NEW."model" = '${model}') EXECUTE FUNCTION test_refuse_rows()`);
    return async () => {
      await prisma.$executeRawUnsafe('DROP TRIGGER test_refuse_rows ON "OidcArtifact"');
      await prisma.$executeRawUnsafe('DROP FUNCTION test_refuse_rows()');
    };
  }

  /** Until the returned function is called, each new row of `model` takes PostgreSQL `seconds` more to write. */
  async function slowRows(model: string, seconds: number): Promise<() => Promise<void>> {
    const { prisma } = first.gatehouse.db;
    await prisma.$executeRawUnsafe(`CREATE FUNCTION test_slow_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${seconds}); RETURN NEW; END $$`);
    await prisma.$executeRawUnsafe(`CREATE TRIGGER test_slow_rows BEFORE INSERT ON "OidcArtifact" FOR EACH ROW WHEN (NEW."model" = '${model}') EXECUTE FUNCTION test_slow_rows()`);
    return async () => {
      await prisma.$executeRawUnsafe('DROP TRIGGER test_slow_rows ON "OidcArtifact"');
      await prisma.$executeRawUnsafe('DROP FUNCTION test_slow_rows()');
    };
  }

  // On PostgreSQL the access token's row is made slow to write; SQLite cannot be slowed so, and
  // there this checks the same flow without the delay. A refresh's audit event commits in the
  // same group as its tokens and the audit's hook waits for it too, so this alone would not catch
  // an answer that did not wait: the authorization request below does.
  it('sends tokens only once they are committed: the other instance accepts them at once', async () => {
    const issued = await signInForTokens(new Browser(first.url), first.issuer, WEB_APP, ALICE);
    expect(issued.status).toBe(200);
    const restore = flavour === 'postgresql' ? await slowRows('AccessToken', 0.4) : async () => {};
    // Checked before the trigger is dropped: dropping it waits for any insert still running.
    try {
      const started = performance.now();
      const refreshed = await refreshTokens(first.issuer, WEB_APP, issued.body.refresh_token as string);
      expect(refreshed.status).toBe(200);
      if (flavour === 'postgresql') expect(performance.now() - started).toBeGreaterThanOrEqual(400);
      const userinfo = await fetch(`${second.url}/userinfo`, { headers: { authorization: `Bearer ${refreshed.body.access_token}` } });
      expect(userinfo.status).toBe(200);
      expect((await refreshTokens(second.issuer, WEB_APP, refreshed.body.refresh_token as string)).status).toBe(200);
    } finally {
      await restore();
    }
  });

  // An authorization request records no audit event, so nothing else holds its answer: the
  // redirect to the sign-in page must wait for its interaction's row (slowed on PostgreSQL).
  it("sends the browser on only once the interaction it goes to is committed: the other instance shows it", async () => {
    const browser = new Browser(first.url);
    const { url } = authorizationUrl(first.issuer, WEB_APP, { scope: 'openid email' });
    const restore = flavour === 'postgresql' ? await slowRows('Interaction', 0.4) : async () => {};
    try {
      const started = performance.now();
      const redirect = await browser.request(url.href);
      expect(redirect.status).toBe(303);
      if (flavour === 'postgresql') expect(performance.now() - started).toBeGreaterThanOrEqual(400);
      // The same browser (its cookies go with it), asking the other instance.
      const signInPage = await browser.request(new URL(redirect.headers.get('location') as string, second.url).href);
      expect(signInPage.status).toBe(200);
    } finally {
      await restore();
    }
  });

  it('refuses a refresh whose tokens could not be committed with server_error, and sends no token', async () => {
    const issued = await signInForTokens(new Browser(first.url), first.issuer, WEB_APP, ALICE);
    expect(issued.status).toBe(200);
    const restore = await refuseRows('AccessToken');
    let refused;
    try {
      refused = await refreshTokens(first.issuer, WEB_APP, issued.body.refresh_token as string);
    } finally {
      await restore();
    }
    expect(refused.status).toBe(500);
    expect(refused.body).toEqual({ error: 'server_error', error_description: 'the request could not be completed; try again' });
  });

  it('shows the error page, with no redirect and no cookie, when the code could not be committed', async () => {
    const browser = new Browser(first.url);
    const { page } = await startAuthorization(browser, first.issuer, WEB_APP);
    const restore = await refuseRows('AuthorizationCode');
    let ended;
    try {
      ended = await submitPassword(browser, page, ALICE);
      if (ended.status === 200 && ended.html.includes('/confirm')) ended = await allowAccess(browser, ended);
    } finally {
      await restore();
    }
    expect(ended.redirectedTo).toBeUndefined();
    expect(ended.status).toBe(500);
    expect(new URL(ended.url).pathname).toMatch(/^\/authorize\//);
    expect(ended.html).toContain('server_error');
    expect(ended.headers.get('location')).toBeNull();
    expect(ended.headers.get('set-cookie')).toBeNull();
  });
});
