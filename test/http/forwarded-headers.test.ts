// X-Forwarded-* from a caller: the engine (a Koa app) would believe them from anyone, so it is
// told only what Express decided under TRUST_PROXY, and builds every URL from ISSUER. The attacks
// here are the ones an attack review performed: a poisoned discovery document behind a cache, and
// a client address chosen by the caller in the audit trail and a session's last-seen.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditStore } from '../../src/audit/store.js';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { SESSION_SEEN_KEY } from '../../src/artifacts/session-seen.js';
import { PUBLIC_DOCUMENT_CACHE } from '../../src/http/security-headers.js';
import { Browser, completeSignIn } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789-0123456789-abcdefgh' };
const APP = 'http://app.test';
const ALICE = { email: 'alice@example.com', password: 'correct horse battery staple' };
const EVIL = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'host=evil.example;proto=https' };

describe.each(await flavours())('forwarded headers on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => {
    // The proxy is on the loopback interface: every test request comes from a trusted address.
    server = await startTestGatehouse(flavour, { env: { TRUST_PROXY: 'loopback' } });
    await server.addClient({ client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' });
    await server.addClient({ client_id: 'web-app', client_secret: MACHINE.secret, redirect_uris: [`${APP}/callback`], grant_types: ['authorization_code'], response_types: ['code'] });
    await server.addUser(ALICE);
  });
  afterAll(async () => server?.close());

  it('builds discovery from ISSUER whatever X-Forwarded-Host says, and lets caches keep it only briefly', async () => {
    const response = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: EVIL });
    expect(response.status).toBe(200);
    const discovery = (await response.json()) as Record<string, string>;
    for (const key of ['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint']) {
      expect(discovery[key], key).toMatch(new RegExp(`^${server.issuer}(/|$)`));
    }
    expect(JSON.stringify(discovery)).not.toContain('evil.example');
    expect(response.headers.get('cache-control')).toBe(PUBLIC_DOCUMENT_CACHE);
  });

  it('serves /jwks with the same short public Cache-Control, and pages with no-store', async () => {
    const jwks = await fetch(`${server.url}/jwks`, { headers: EVIL });
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('cache-control')).toBe(PUBLIC_DOCUMENT_CACHE);
    const page = await fetch(`${server.url}/nothing-here`);
    expect(page.headers.get('cache-control')).toBe('no-store');
  });

  it("records the address Express computes for token.issued, not the caller's leftmost X-Forwarded-For entry", async () => {
    // Loopback is trusted, so Express walks back to the first untrusted hop: 203.0.113.7.
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${MACHINE.id}:${MACHINE.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': '6.6.6.6, 203.0.113.7',
      },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBe(200);
    const [event] = await createAuditStore(server.gatehouse.db).list({ type: 'token.issued', clientId: MACHINE.id });
    expect(event?.ip).toBe('203.0.113.7');
  });

  it("records a session's last-seen address as Express computes it", async () => {
    const browser = new Browser(server.url, { 'x-forwarded-for': '6.6.6.6, 198.51.100.4' });
    const params = new URLSearchParams({ client_id: 'web-app', response_type: 'code', scope: 'openid', redirect_uri: `${APP}/callback` });
    const page = await browser.visit(`/authorize?${params}`);
    await completeSignIn(browser, page, ALICE);
    const accountId = (await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { email: ALICE.email } })).id;
    const [session] = await createArtifactStore(server.gatehouse.db).listByAccount('Session', accountId, new Date());
    expect((session?.payload[SESSION_SEEN_KEY] as { ip?: string } | undefined)?.ip).toBe('198.51.100.4');
  });
});

describe('an https ISSUER reached without a trusted proxy', () => {
  let server: TestGatehouse;
  beforeAll(async () => {
    server = await startTestGatehouse('sqlite', { env: { ISSUER: 'https://id.example.test' } });
  });
  afterAll(async () => server?.close());

  it('still names https endpoints on its own host in discovery, whatever the caller forwards', async () => {
    const response = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' } });
    const discovery = (await response.json()) as Record<string, string>;
    expect(discovery.token_endpoint).toBe('https://id.example.test/token');
    expect(discovery.jwks_uri).toBe('https://id.example.test/jwks');
  });
});
