// The engine's cookies across a SECRETS rotation: a browser signed in while one secret came first
// is still signed in once a newer secret is put before it, and its cookies come back signed with
// the newer one (core/secrets.ts cookieSigner, the engine's `cookies.keys`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieSigner } from '../../src/core/secrets.js';
import { Browser } from '../helpers/browser.js';
import { authorizationUrl, signInForCode } from '../helpers/code-flow.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const NEWER_SECRET = 'newer-test-secret-0123456789-abcdefghijklmnopqrstuv';

describe('engine cookies when SECRETS is rotated', () => {
  let before: TestGatehouse;
  let after: TestGatehouse;

  beforeAll(async () => {
    before = await startTestGatehouse('sqlite', { clients: [webApp()], people: [ALICE] });
    // The same database, the newer secret first and the old one still listed.
    after = await startTestGatehouse('sqlite', { shareWith: before, env: { SECRETS: `${NEWER_SECRET},${TEST_SECRET}` } });
  });
  afterAll(async () => {
    await before?.close();
  });

  it('keeps a browser signed in with a cookie signed before, and signs it again with the newer secret', async () => {
    const signedIn = new Browser(before.url);
    await signInForCode(signedIn, before.url, WEB_APP, ALICE);
    const session = signedIn.cookie('_session') as string;
    expect(signedIn.cookie('_session.sig')).toBe(cookieSigner([TEST_SECRET]).sign(`_session=${session}`));

    // The same cookies, presented to the instance with the newer secret first.
    const browser = new Browser(after.url);
    browser.setCookie('_session', session);
    browser.setCookie('_session.sig', signedIn.cookie('_session.sig') as string);
    const { url } = authorizationUrl(after.url, WEB_APP, { prompt: 'none' });
    const page = await browser.visit(url.href);
    expect(page.redirectedTo?.searchParams.get('error')).toBeNull();
    expect(page.redirectedTo?.searchParams.get('code')).toBeTruthy();
    expect(browser.cookie('_session.sig')).toBe(cookieSigner([NEWER_SECRET]).sign(`_session=${browser.cookie('_session')}`));
  });

  it('does not accept a cookie whose signature no listed secret made', async () => {
    const signedIn = new Browser(before.url);
    await signInForCode(signedIn, before.url, WEB_APP, ALICE);
    const browser = new Browser(after.url);
    const session = signedIn.cookie('_session') as string;
    browser.setCookie('_session', session);
    browser.setCookie('_session.sig', cookieSigner(['an-unlisted-secret-0123456789-abcdefghijklmnopq']).sign(`_session=${session}`));
    const { url } = authorizationUrl(after.url, WEB_APP, { prompt: 'none' });
    expect((await browser.visit(url.href)).redirectedTo?.searchParams.get('error')).toBe('login_required');
  });
});
