// The language switcher: every page reached by GET offers it, the choice is kept in a cookie
// and applies to our pages and the engine's, an app's ui_locales still wins, and the way back
// is a path on this server only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, submitForm } from '../helpers/browser.js';
import { authorizationUrl } from '../helpers/code-flow.js';
import { WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

describe('the language switcher', () => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse('sqlite', { clients: [webApp()] })));
  afterAll(async () => server?.close());

  const langOf = (html: string) => /<html lang="(\w+)"/.exec(html)?.[1];

  it('offers every language on a page, remembers the choice in a cookie and comes back to the page', async () => {
    const browser = new Browser(server.issuer, { 'accept-language': 'en' });
    const page = await browser.visit('/password/forgot');
    expect(langOf(page.html)).toBe('en');
    const href = /href="(\/language\/ko\?return=[^"]+)"/.exec(page.html)?.[1] as string;
    expect(href).toBe(`/language/ko?return=${encodeURIComponent('/password/forgot')}`);
    const switched = await browser.request(href);
    expect(switched.status).toBe(303);
    expect(switched.headers.get('location')).toBe('/password/forgot');
    expect(switched.headers.get('set-cookie')).toMatch(/gatehouse\.lang=ko;.*HttpOnly/i);
    expect(langOf((await browser.visit('/password/forgot')).html)).toBe('ko');
    // The engine's own pages follow it too.
    expect(langOf((await browser.visit('/authorize?client_id=nobody')).html)).toBe('ko');
  });

  it('links back to the whole address of the page, whether the engine, a page or a router mounted on a path renders it', async () => {
    const browser = new Browser(server.issuer);
    const linkBack = (html: string) => /href="\/language\/en\?return=([^"]+)"/.exec(html)?.[1];
    for (const address of ['/authorize?client_id=nobody', '/password/forgot?email=a%40example.com', '/console/signed-out']) {
      const page = await browser.visit(address);
      expect(linkBack(page.html), address).toBe(encodeURIComponent(address));
    }
  });

  it('offers no switch on a page that answers a POST', async () => {
    const browser = new Browser(server.issuer);
    const form = await browser.visit('/password/forgot');
    const answer = await submitForm(browser, form, '/password/forgot', { email: 'not an address' });
    expect(answer.html).toContain('<html');
    expect(answer.html).not.toContain('/language/');
  });

  it('lets an app’s ui_locales win over the choice', async () => {
    const browser = new Browser(server.issuer);
    await browser.request('/language/ko?return=/account');
    const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP, { ui_locales: 'en' }).url.href);
    expect(langOf(login.html)).toBe('en');
    const chosen = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
    expect(langOf(chosen.html)).toBe('ko');
  });

  it('refuses an unknown language and never returns to another site; offers no switch on a page with a token in its address', async () => {
    const browser = new Browser(server.issuer);
    expect((await browser.request('/language/xx?return=/account')).status).toBe(400);
    for (const away of ['//evil.test/x', 'https://evil.test/', '/\\evil.test', 'javascript:alert(1)']) {
      const response = await browser.request(`/language/en?return=${encodeURIComponent(away)}`);
      expect(response.status, away).toBe(303);
      expect(response.headers.get('location'), away).toBe('/account');
    }
    const tokenPage = await browser.visit(`/password/reset?token=${'C'.repeat(43)}`);
    expect(tokenPage.html).not.toContain('/language/');
  });
});
