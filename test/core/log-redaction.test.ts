// Logs never carry credentials: first the logger itself, fed credentials at every depth and
// in every shape we know of; then a whole running Gatehouse logging at `trace` through a
// sign-in, token, refresh and logout flow and through refused requests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeSignIn, submitPassword } from '../helpers/browser.js';
import { logout, RecordingBrowser, redeemCode, refreshTokens, startAuthorization } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { captureLogger } from '../helpers/logs.js';

describe('the logger', () => {
  const SECRETS = {
    password: 'pw-Tr0ub4dor&3-horse',
    clientSecret: 'cs-0123456789abcdef0123456789abcdef',
    code: 'code-Qm9vQmFyQmF6UXV4',
    accessToken: 'at-eyJhbGciOiJSUzI1NiJ9.access',
    refreshToken: 'rt-long-refresh-token-value',
    idToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpZC10b2tlbiJ9.c2lnbmF0dXJl',
    cookie: 'session-cookie-value-4f9a8b7c',
    basic: 'YmFzaWMtY3JlZGVudGlhbHM6c2VjcmV0',
    bearer: 'bearer-token-value-9876543210',
    verifier: 'pkce-verifier-value-abcdefghijklmnop',
    smtpPassword: 'smtp-pass-Zq8w2e9r',
    resetToken: 'reset-link-token-abcdefghijklmnopqrstuvwxyz',
  };

  it('redacts credentials under their usual names at any depth, in arrays, errors, child bindings and messages', () => {
    const { logger, text } = captureLogger('trace');
    const s = SECRETS;
    // Top level, and the shapes a request, the engine's params and a body take.
    logger.info({ password: s.password, client_secret: s.clientSecret, code: s.code, access_token: s.accessToken, refresh_token: s.refreshToken, id_token: s.idToken }, 'top level');
    logger.info({ req: { method: 'POST', headers: { authorization: `Basic ${s.basic}`, cookie: `_session=${s.cookie}`, 'user-agent': 'kept-agent' } } }, 'request');
    logger.info({ res: { headers: { 'set-cookie': [`_session=${s.cookie}; path=/`] } } }, 'response');
    logger.debug({ body: { password: s.password, email: 'kept@example.com' }, params: { code: s.code, code_verifier: s.verifier, grant_type: 'kept_grant' } }, 'form');
    logger.trace({ ctx: { oidc: { params: { refresh_token: s.refreshToken, id_token_hint: s.idToken }, client: { clientSecret: s.clientSecret } } } }, 'deep');
    logger.warn({ a: { b: { c: { d: { e: { f: { accessToken: s.accessToken, password: s.password } } } } } } }, 'very deep');
    logger.info({ tokens: [{ access_token: s.accessToken }, { refresh_token: s.refreshToken }], headers: [['Authorization', `Bearer ${s.bearer}`]] }, 'arrays');
    // Credentials inside strings: URLs with query parameters, header values, messages.
    logger.info({ url: `/logout?id_token_hint=${s.idToken}&state=kept-state`, location: `https://app.test/cb?code=${s.code}&iss=x` }, 'urls');
    logger.info(`callback /cb?code=${s.code} and Authorization: Bearer ${s.bearer}`);
    // A connection string's password, and a mailed link's token.
    logger.error({ reason: `connect smtps://id%40acme.test:${s.smtpPassword}@smtp.kept-host.test:465 refused` }, `GET /password/reset?token=${s.resetToken}`);
    logger.info('interpolated %s %o %j', `?access_token=${s.accessToken}`, { password: s.password }, { client_secret: s.clientSecret });
    logger.info({ note: 'merged-kept' }, 'merged, then interpolated %o', { refresh_token: s.refreshToken });
    // A merging object followed by an object where the message goes (pino formats it into the message), a null one, and a plain object pino summarises as a request.
    (logger.info as (...args: unknown[]) => void)({ note: 'kept' }, { client_secret: s.clientSecret }, { password: s.password });
    logger.info(null, 'null, then interpolated %j', { password: s.password });
    logger.info({ method: 'POST', url: '/token', headers: { authorization: `Basic ${s.basic}`, cookie: s.cookie }, socket: {} }, 'request-shaped');
    // More key names than the logger remembers answers for: those past its memory are still judged.
    logger.info(Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`field_${i}`, i])), 'many keys');
    logger.info({ late_password_field: s.password, 'X-Late-Cookie': s.cookie }, 'keys first seen after many');
    // Errors: their own properties and messages, as `err` and as the first argument.
    logger.error({ err: Object.assign(new Error(`refused /token?code=${s.code}`), { password: s.password }) }, 'failed');
    logger.error(Object.assign(new Error(`Bearer ${s.bearer}`), { headers: { authorization: `Basic ${s.basic}` } }));
    // Child loggers' bindings.
    logger.child({ client_secret: s.clientSecret, session: { cookie: s.cookie } }).child({ refreshToken: s.refreshToken }).info({ kept: 'child-kept' }, 'child');

    const output = text();
    for (const [name, value] of Object.entries(SECRETS)) expect(output, name).not.toContain(value);
    // What is not a credential stays readable.
    for (const kept of ['kept-agent', 'kept@example.com', 'kept_grant', 'kept-state', 'child-kept', 'refused /token?code=[redacted]', 'smtp.kept-host.test', 'merged-kept', '"field_1499":1499']) expect(output).toContain(kept);
    expect(output.split('\n').filter(Boolean)).toHaveLength(20);
  });
});

const WRONG_PASSWORD = 'wrong-password-that-is-still-secret';
const WRONG_SECRET = 'wrong-client-secret-0123456789-0123456789';

describe.each(await flavours())('a running Gatehouse logging at trace on %s', (flavour) => {
  let server: TestGatehouse;
  const capture = captureLogger('trace');

  beforeAll(async () => (server = await startTestGatehouse(flavour, { logger: capture.logger, clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  it('logs no password, client secret, code, token or session cookie through a whole flow and refused requests', async () => {
    const credentials = new Map<string, string>([
      ['password', ALICE.password],
      ['wrong password', WRONG_PASSWORD],
      ['client secret', WEB_APP.secret],
      ['wrong client secret', WRONG_SECRET],
    ]);
    const browser = new RecordingBrowser(server.url, 'LogTest/1.0');
    const { page, verifier } = await startAuthorization(browser, server.url, WEB_APP);
    const wrong = await submitPassword(browser, page, { email: ALICE.email, password: WRONG_PASSWORD });
    expect(wrong.status).toBe(401);
    const callback = await completeSignIn(browser, wrong, ALICE);
    const code = callback.searchParams.get('code') as string;
    credentials.set('authorization code', code);

    // Refused: the right code with the wrong client secret, then a code that does not exist.
    const badSecret = await redeemCode(server.url, { ...WEB_APP, secret: WRONG_SECRET }, code, verifier);
    expect(badSecret.status).toBe(401);
    const badCode = await redeemCode(server.url, WEB_APP, `${code}x`, verifier);
    expect(badCode.body.error).toBe('invalid_grant');

    const issued = await redeemCode(server.url, WEB_APP, code, verifier);
    expect(issued.status).toBe(200);
    const refreshed = await refreshTokens(server.url, WEB_APP, issued.body.refresh_token as string);
    expect(refreshed.status).toBe(200);
    // Refused: userinfo with a token that is not one, a rotated refresh token, the code again.
    const userinfo = await fetch(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${refreshed.body.access_token}x` } });
    expect(userinfo.status).toBe(401);
    const reuse = await refreshTokens(server.url, WEB_APP, issued.body.refresh_token as string);
    expect(reuse.body.error).toBe('invalid_grant');
    const replay = await redeemCode(server.url, WEB_APP, code, verifier);
    expect(replay.body.error).toBe('invalid_grant');
    for (const [name, body] of [['first', issued.body], ['refreshed', refreshed.body]] as const) {
      credentials.set(`${name} access token`, body.access_token);
      credentials.set(`${name} refresh token`, body.refresh_token as string);
      credentials.set(`${name} id token`, body.id_token as string);
    }

    expect((await logout(browser, server.url, WEB_APP, refreshed.body.id_token as string))?.href).toBe(WEB_APP.postLogoutRedirectUri);
    // Refused: a logout naming a post-logout URI that is not registered, with the id token in the URL.
    const badLogout = await browser.visit(`${server.url}/logout?id_token_hint=${refreshed.body.id_token as string}&post_logout_redirect_uri=${encodeURIComponent('https://evil.test/')}`);
    expect(badLogout.status).toBe(400);
    let cookie = 0;
    for (const value of browser.cookieValues) if (value.length >= 16) credentials.set(`cookie ${++cookie}`, value);
    expect(cookie).toBeGreaterThan(0);

    const output = capture.text();
    // The refusals were logged (so the check below is not vacuous), with their reasons.
    expect(output).toContain('request refused');
    expect(output).toContain('invalid_grant');
    for (const [name, value] of credentials) {
      expect(value, name).toBeTruthy();
      expect(output, name).not.toContain(value);
    }
  });
});
