// Hostile input, generated: malformed, oversized, wrongly typed, look-alike and control-character
// values (fast-check) sent to every route we own and to the engine's public endpoints, and
// arbitrary JSON handed to the seed file parser. Whatever arrives, Gatehouse answers with a
// 4xx (or a 2xx/3xx where the input happens to be acceptable), never a 5xx, never a stack trace
// or a path on this machine, never a redirect to an address the client did not register, and
// the database keeps every user, client, grant and token it had and gains none.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSeedFile } from '../../src/seed/schema.js';
import { findForm } from '../helpers/browser.js';
import { authorizePath, basicAuth } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, APP, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

/**
 * Per property: enough variety to find a crash, few enough to keep the file well under a minute
 * (the time limit also bounds shrinking, each step of which is an HTTP request or three).
 */
const RUNS = { numRuns: 100, interruptAfterTimeLimit: 15_000 };
const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// What hostile values look like
// ---------------------------------------------------------------------------------------------

/** What a body must never contain (stack frames, dependency paths, source positions, our paths). */
const INTERNALS = ['    at ', 'node_modules', '.ts:', '.js:', 'ENOENT', 'EACCES', 'EISDIR', process.cwd()];
const harmless = (value: string) => !INTERNALS.some((marker) => value.includes(marker));

/** Values that broke parsers somewhere before: look-alikes, controls, injections, edge numbers. */
const NASTY = [
  '', ' ', '\u0000', 'a\u0000b', '%00', '\r\n', '\n\nX-Injected: 1', '\u202eevil', '\u200b', '\ufeff', '\u0085',
  'аdmin', 'ɑdmin', 'ᴀᴅᴍɪɴ', 'ｗｅｂ－ａｐｐ', 'web‐app', 'wеb-app', 'İ', 'ß', 'ﬁ', '\ud800', '\udfff', '😀', '𝕒𝕓', 'é', 'Ω',
  '../../../../etc/passwd', '..\\..\\windows\\win.ini', '..%2f..%2f', '%2e%2e/%2e%2e/',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' OR '1'='1", '"; DROP TABLE "User"; --', '{{7*7}}', '<%= 7*7 %>', '${7*7}',
  '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'null', 'undefined', 'NaN', 'Infinity', '-1', '0', '1e309', '-0',
  '9'.repeat(400), '[]', '{}', '[object Object]', 'true', '{"$ne":null}', 'a[b]=c', 'javascript:alert(1)', 'data:text/html,<b>x</b>',
  'http://evil.test/', '//evil.test', 'https://app.test@evil.test/', `${WEB_APP.redirectUri}/../evil`, `${WEB_APP.redirectUri}#frag`, `${WEB_APP.redirectUri}?x=1`,
  '%', '%zz', '%E0%A4%A', '%ff%fe', '+', '&', '=', '#', '?', '\\', '*', ';', 'openid openid', 'openid\u0000profile',
  WEB_APP.id, ALICE.email, 'ALICE@EXAMPLE.COM', 'a'.repeat(5000),
].filter(harmless);

const withoutLoneSurrogates = (value: string) => value.replace(/\p{Surrogate}/gu, '\ufffd');

const hostileString: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 2000, maxLength: 9000 }) },
  )
  .filter(harmless);

/** Bytes Node lets a client put in a header value (obs-text included). */
const headerChar = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((code) => String.fromCharCode(code));
const headerValue = fc.string({ unit: headerChar, maxLength: 200 }).map((value) => value.trim());

/** Characters Node lets a client put in a request path, so nothing is normalised on the way. */
const pathSegment: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((value) => encodeURIComponent(withoutLoneSurrogates(value))),
  fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', '..', '.', '%2e%2e', '%2f', '%5c', ';', '@', ':', '~', '%ff%fe', '%c0%ae%c0%ae', 'a%2F..%2F..', '%252e%252e'),
);

const OIDC_PARAMS = [
  'client_id', 'client_secret', 'response_type', 'redirect_uri', 'scope', 'state', 'nonce', 'prompt', 'max_age', 'login_hint', 'ui_locales',
  'claims', 'acr_values', 'code_challenge', 'code_challenge_method', 'request', 'request_uri', 'response_mode', 'resource', 'id_token_hint',
  'grant_type', 'code', 'code_verifier', 'refresh_token', 'token', 'token_type_hint', 'device_code', 'user_code', 'client_assertion',
  'client_assertion_type', 'post_logout_redirect_uri', 'logout_hint', 'access_token', 'email', 'password', 'csrf_token', 'xsrf', 'confirm', 'abort',
];

/** Parameter lists as they arrive: known names, junk names, repeated names. */
const params = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...OIDC_PARAMS), hostileString), hostileString), { maxLength: 8 });
const encodeParams = (pairs: [string, string][]) => new URLSearchParams(pairs.map(([k, v]): [string, string] => [withoutLoneSurrogates(k), withoutLoneSurrogates(v)])).toString();

const CONTENT_TYPES = [
  'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded; charset=utf-16le',
  'application/x-www-form-urlencoded; charset=bogus', 'application/x-www-form-urlencoded;;;', 'application/json', 'application/json; charset=latin1',
  'application/jwt', 'application/xml', 'multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary=----x', 'text/plain',
  'text/html', '*/*', '', ';', 'application/', 'x'.repeat(500),
];

interface Body {
  contentType?: string;
  body?: string | Buffer;
}

/** Bodies of every shape: forms, JSON of any type, multipart-ish junk, raw (invalid UTF-8) bytes. */
const body: fc.Arbitrary<Body> = fc.oneof(
  fc.record({ contentType: fc.constant('application/x-www-form-urlencoded'), body: params.map(encodeParams) }),
  fc.record({ contentType: fc.constantFrom(...CONTENT_TYPES), body: params.map(encodeParams) }),
  fc.record({ contentType: fc.constantFrom('application/json', 'application/x-www-form-urlencoded'), body: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') }),
  fc.record({
    contentType: fc.constant('multipart/form-data; boundary=XyZ'),
    body: fc.tuple(hostileString, hostileString).map(([name, value]) => `--XyZ\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n--XyZ--\r\n`),
  }),
  fc.record({ contentType: fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerValue), body: fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes)) }),
  fc.record({ body: hostileString }, { requiredKeys: [] }),
);

/** Authorization headers: absent, junk, every scheme, Basic with junk or our client's id and a wrong secret. */
const authorization: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  headerValue,
  fc.tuple(fc.constantFrom('Basic', 'Bearer', 'DPoP', 'basic', 'BEARER', 'Digest', 'Negotiate', ''), headerValue).map(([scheme, value]) => `${scheme} ${value}`),
  fc.tuple(hostileString, hostileString).map(([user, secret]) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`),
  fc.tuple(fc.constantFrom(WEB_APP.id, encodeURIComponent(WEB_APP.id), '%zz', '%'), hostileString).map(([user, secret]) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`),
  fc.constantFrom('Basic', 'Basic ', 'Basic =', 'Basic ====', 'Basic Og==', 'Bearer', 'Bearer ', 'Bearer a b c', 'Bearer eyJhbGciOiJub25lIn0.e30.'),
);

/** Every POST route of our sign-in pages (src/http/interactions.ts). */
const INTERACTION_STEPS = ['/login', '/mfa', '/recovery', '/enroll', '/continue', '/confirm', '/abort'];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'FOO'];

// ---------------------------------------------------------------------------------------------
// Sending it
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  ms: number;
}

interface Sent {
  method: string;
  path: string;
  headers?: Record<string, string | undefined>;
  body?: string | Buffer;
}

/**
 * One raw HTTP request (node:http, so paths and methods arrive exactly as generated). The
 * server may answer an oversized body before reading it all: the answer counts, not the EPIPE.
 */
function send(origin: string, { method, path, headers = {}, body }: Sent): Promise<Reply> {
  const { hostname, port } = new URL(origin);
  const started = performance.now();
  const definedHeaders = Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return new Promise((resolve, reject) => {
    let answered = false;
    const payload = body !== undefined && method !== 'GET' && method !== 'HEAD' ? body : undefined;
    // Always a Content-Length: Node sends DELETE and OPTIONS bodies without one, which reads as a
    // second, garbled request (the 400 then comes from Node's parser, not from Gatehouse).
    const length = payload === undefined ? {} : { 'content-length': String(Buffer.byteLength(payload)) };
    const req = httpRequest({ hostname, port, path, method, headers: { connection: 'close', ...definedHeaders, ...length }, timeout: 15_000 }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path.slice(0, 100)} within 15 s`)));
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(payload);
  });
}

function describeSent(sent: Sent, reply: Reply): string {
  const shown = typeof sent.body === 'string' ? sent.body.slice(0, 300) : sent.body ? `<${sent.body.length} bytes>` : '';
  return `${sent.method} ${sent.path.slice(0, 300)} ${JSON.stringify(sent.headers ?? {}).slice(0, 300)} ${JSON.stringify(shown)}\n→ ${reply.status} ${reply.text.slice(0, 500)}`;
}

/** No 5xx, nothing internal in the body, and a redirect only to us or the registered redirect_uri. */
function expectHarmless(sent: Sent, reply: Reply, { issuer, allow }: { issuer: string; allow: 'refusal' | 'any' }) {
  const context = describeSent(sent, reply);
  expect(reply.status, context).toBeGreaterThanOrEqual(allow === 'refusal' ? 400 : 200);
  expect(reply.status, context).toBeLessThan(500);
  for (const marker of INTERNALS) expect(reply.text.includes(marker), `${JSON.stringify(marker)} in the body of ${context}`).toBe(false);
  if (reply.status >= 300 && reply.status < 400 && reply.headers.location) {
    const target = new URL(reply.headers.location, issuer);
    const ours = target.origin === new URL(issuer).origin;
    const registered = `${target.origin}${target.pathname}` === WEB_APP.redirectUri;
    expect(ours || registered, `redirect to ${target.href} from ${context}`).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

interface Snapshot {
  kept: unknown;
  auditEvents: unknown[];
}

describe.each(await flavours())('hostile input on %s', (flavour) => {
  let server: TestGatehouse;
  let before: Snapshot;

  const go = async (sent: Sent, allow: 'refusal' | 'any') => {
    const reply = await send(server.url, sent);
    expectHarmless(sent, reply, { issuer: server.issuer, allow });
    return reply;
  };

  /**
   * "Unchanged", precisely: every row of every table is as it was, except that the engine may
   * add Session and Interaction artifacts (a browser that opens /authorize gets both), the audit
   * trail may gain events (it is append-only: the old ones stay as they were), and brute-force
   * counters may move. No user, client, grant, code or token appears, changes or disappears.
   */
  async function snapshot(): Promise<Snapshot> {
    const prisma = server.gatehouse.db.prisma;
    const byId = { orderBy: { id: 'asc' as const } };
    const artifacts = await prisma.oidcArtifact.findMany({ orderBy: [{ model: 'asc' }, { id: 'asc' }] });
    return {
      kept: {
        users: await prisma.user.findMany(byId),
        clients: await prisma.client.findMany(byId),
        resources: await prisma.resource.findMany(byId),
        signingKeys: await prisma.signingKey.findMany(byId),
        settings: await prisma.setting.findMany({ orderBy: { key: 'asc' } }),
        recoveryCodes: await prisma.recoveryCode.findMany(byId),
        artifacts: artifacts.filter((a) => a.model !== 'Session' && a.model !== 'Interaction'),
      },
      auditEvents: await prisma.auditEvent.findMany(byId),
    };
  }

  beforeAll(async () => {
    // Failed sign-ins are the point here: no lockout, no increasing delay.
    const env = { SIGN_IN_DELAY_STEP_MS: '0', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '1000', SIGN_IN_MAX_FAILURES_PER_IP: '100000', CLIENT_AUTH_MAX_FAILURES: '100000' };
    // Every grant the fuzzed requests name, so that each reaches the engine's own checks.
    const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'];
    const client = webApp({ post_logout_redirect_uris: [`${APP}/`], grant_types: grantTypes });
    server = await startTestGatehouse(flavour, { env, clients: [client], people: [ALICE] });
    before = await snapshot();
  });
  afterAll(async () => server?.close());

  describe('our interaction pages', () => {
    it('refuse any uid, sub-path, method, content type and body without a sign-in in progress', async () => {
      await fc.assert(
        fc.asyncProperty(
          pathSegment,
          fc.constantFrom(...INTERACTION_STEPS, '', '/login/', '/x'),
          fc.constantFrom('GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE'),
          body,
          async (uid, step, method, { contentType, body: payload }) => {
            await go({ method, path: `/interaction/${uid}${step}`, headers: { 'content-type': contentType, accept: 'text/html' }, body: payload }, 'refusal');
          },
        ),
        RUNS,
      );
    });

    it('refuse junk posted into a live sign-in, with or without its form token', async () => {
      // A browser starts signing in: the engine sets the interaction cookies and sends it to our page.
      const started = await send(server.url, { method: 'GET', path: authorizePath() });
      expect(started.status).toBe(303);
      const uid = /\/interaction\/([\w-]+)$/.exec(started.headers.location ?? '')?.[1] as string;
      const cookies = (started.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]).join('; ');
      const page = await send(server.url, { method: 'GET', path: `/interaction/${uid}`, headers: { cookie: cookies, accept: 'text/html' } });
      expect(page.status).toBe(200);
      const form = findForm(page.text, '/login');
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...INTERACTION_STEPS),
          fc.boolean(),
          params,
          fc.option(hostileString, { nil: undefined }),
          fc.option(hostileString, { nil: undefined }),
          async (step, withToken, extra, email, password) => {
            const fields: [string, string][] = [...extra];
            // A valid token on /abort would (rightly) end the interaction: only junk tokens there.
            if (withToken && step !== '/abort') for (const [name, value] of Object.entries(form.fields)) fields.push([name, value]);
            if (email !== undefined) fields.push(['email', email]);
            if (password !== undefined) fields.push(['password', password]);
            await go(
              {
                method: 'POST',
                path: `/interaction/${uid}${step}`,
                headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies, accept: 'text/html' },
                body: encodeParams(fields),
              },
              'refusal',
            );
          },
        ),
        RUNS,
      );
      // Still the same sign-in, still usable.
      expect((await send(server.url, { method: 'GET', path: `/interaction/${uid}`, headers: { cookie: cookies } })).status).toBe(200);
    });
  });

  describe('the engine', () => {
    it('answers /authorize with any query by a page, an error or a redirect to us or the registered redirect_uri', async () => {
      await fc.assert(
        fc.asyncProperty(params, fc.boolean(), async (pairs, realClient) => {
          const base: [string, string][] = realClient ? [['client_id', WEB_APP.id], ['redirect_uri', WEB_APP.redirectUri], ['response_type', 'code'], ['scope', 'openid']] : [];
          await go({ method: 'GET', path: `/authorize?${encodeParams([...base, ...pairs])}`, headers: { accept: 'text/html' } }, 'any');
        }),
        RUNS,
      );
    });

    it('refuses anything at /token, /token/introspection, /token/revocation, /par and /device/auth without valid client credentials', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/token', '/token/introspection', '/token/revocation', '/par', '/device/auth'),
          body,
          authorization,
          fc.option(headerValue, { nil: undefined }),
          async (path, { contentType, body: payload }, auth, dpop) => {
            await go({ method: 'POST', path, headers: { 'content-type': contentType, authorization: auth, dpop, accept: 'application/json' }, body: payload }, 'refusal');
          },
        ),
        RUNS,
      );
    });

    it('answers a client_id holding a NUL character as an unknown client, in the body or in a client assertion', async () => {
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const assertion = `${part({ alg: 'RS256' })}.${part({ iss: 'app\0', sub: 'app\0', aud: server.issuer, exp: Math.floor(Date.now() / 1000) + 60, jti: 'nul' })}.c2ln`;
      for (const body of [
        'grant_type=client_credentials&client_id=%00',
        `grant_type=client_credentials&client_id=${'%00'.repeat(300)}&client_secret=x`,
        `grant_type=client_credentials&client_assertion_type=${encodeURIComponent('urn:ietf:params:oauth:client-assertion-type:jwt-bearer')}&client_assertion=${assertion}`,
      ]) {
        const reply = await go({ method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body }, 'refusal');
        expect(reply.status, body).toBe(401);
        expect(JSON.parse(reply.text), body).toMatchObject({ error: 'invalid_client' });
      }
    });

    it('refuses /userinfo with any Authorization header, query or body', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('GET', 'POST'), authorization, params, body, async (method, auth, query, { contentType, body: payload }) => {
          await go({ method, path: `/userinfo?${encodeParams(query)}`, headers: { authorization: auth, 'content-type': contentType }, body: payload }, 'refusal');
        }),
        RUNS,
      );
    });

    it('answers the device and logout pages with any query or body, and never redirects elsewhere', async () => {
      const pages = fc.constantFrom(['/device', 'GET'], ['/device', 'POST'], ['/logout', 'GET'], ['/logout', 'POST']);
      await fc.assert(
        fc.asyncProperty(pages, params, body, async ([path, method], query, { contentType, body: payload }) => {
          await go({ method, path: `${path}?${encodeParams(query)}`, headers: { 'content-type': contentType, accept: 'text/html' }, body: payload }, 'any');
        }),
        RUNS,
      );
    });

    it('serves discovery and the JWKS whatever the query, and nothing at /register (registration is off)', async () => {
      await fc.assert(
        fc.asyncProperty(params, fc.constantFrom(...METHODS), async (query, method) => {
          const search = encodeParams(query);
          // Node itself answers 431 to a request line or headers over 16 KB, before Gatehouse sees it.
          for (const path of ['/.well-known/openid-configuration', '/jwks']) {
            const reply = await go({ method: 'GET', path: `${path}?${search}` }, 'any');
            if (reply.status === 431) continue;
            expect(reply.status).toBe(200);
            expect(() => JSON.parse(reply.text) as unknown).not.toThrow();
          }
          const register = await go({ method, path: `/register?${search}`, headers: { 'content-type': 'application/json' }, body: '{"redirect_uris":["https://evil.test/"]}' }, 'refusal');
          // And 400 to an unknown method such as FOO.
          if (register.status !== 431) expect(register.status).toBe(method === 'FOO' ? 400 : 404);
        }),
        RUNS,
      );
    });
  });

  describe('forwarded headers', () => {
    it('builds discovery from ISSUER whatever X-Forwarded-* or Forwarded a caller sends', async () => {
      await fc.assert(
        fc.asyncProperty(headerValue, headerValue, headerValue, headerValue, async (host, proto, forwardedFor, forwarded) => {
          const reply = await go({ method: 'GET', path: '/.well-known/openid-configuration', headers: { 'x-forwarded-host': host, 'x-forwarded-proto': proto, 'x-forwarded-for': forwardedFor, forwarded } }, 'any');
          expect(reply.status).toBe(200);
          const discovery = JSON.parse(reply.text) as Record<string, unknown>;
          for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) expect(String(discovery[key]).startsWith(`${server.issuer}/`), key).toBe(true);
        }),
        RUNS,
      );
    });
  });

  describe('cookies', () => {
    /** The cookies we and the engine set (and their signatures), and junk names. */
    const COOKIE_NAMES = ['gatehouse.account_state', 'gatehouse.federation', '_session', '_session.sig', '_session.legacy', '_interaction', '_interaction.sig', '_interaction_resume', '_interaction_resume.sig', '_state.web-app'];
    const cookieValue = fc.oneof(
      fc.constantFrom('%', '%zz', '%E0%A4%A', '%ff%fe', '%00', '%%', 'x.%', '"', '""', '"%"', '=', 'a=b', '.', '..', 'x'.repeat(4000)),
      headerValue.map((value) => value.replace(/;/g, '')),
      hostileString.map((value) => encodeURIComponent(withoutLoneSurrogates(value))),
    );
    const cookieHeader = fc
      .array(fc.tuple(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...COOKIE_NAMES) }, { weight: 1, arbitrary: headerValue.map((name) => name.replace(/[;=]/g, '')) }), cookieValue), { minLength: 1, maxLength: 5 })
      .map((pairs) => pairs.map(([name, value]) => `${name}=${value}`).join('; '));
    const PAGES: [string, string][] = [
      ['GET', '/account'],
      ['GET', '/account/callback?state=x'],
      ['GET', '/account/callback'],
      ['GET', '/account/mfa'],
      ['POST', '/account/password'],
      ['POST', '/account/mfa/remove'],
      ['POST', '/account/federation/some-idp/link'],
      ['GET', '/federation/some-idp/callback?state=x&code=y'],
      ['GET', '/federation/Not%20An%20Id/callback'],
      ['GET', authorizePath()],
      ['GET', '/interaction/some-uid'],
      ['POST', '/interaction/some-uid/login'],
      ['GET', '/device'],
      ['POST', '/device'],
      ['GET', '/logout'],
      ['POST', '/logout/confirm'],
      ['GET', '/userinfo'],
    ];

    it('refuses a malformed account state cookie with a 400 page, not a server error', async () => {
      const sent: Sent = { method: 'GET', path: '/account/callback?state=x', headers: { cookie: 'gatehouse.account_state=%', accept: 'text/html' } };
      const reply = await go(sent, 'refusal');
      expect(reply.status, describeSent(sent, reply)).toBe(400);
    });

    it('answers any value of our own cookie on the account pages without a server error', async () => {
      const accountPages = PAGES.filter(([, path]) => path.startsWith('/account'));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...accountPages), cookieValue, fc.option(cookieHeader, { nil: undefined }), async ([method, path], value, others) => {
          const cookie = [`gatehouse.account_state=${value}`, ...(others ? [others] : [])].join('; ');
          await go({ method, path, headers: { cookie, accept: 'text/html' } }, 'any');
        }),
        RUNS,
      );
    });

    it('answers any Cookie header on our pages and the engine\'s without a server error', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...PAGES), cookieHeader, body, async ([method, path], cookie, { contentType, body: payload }) => {
          await go({ method, path, headers: { cookie, 'content-type': contentType, accept: 'text/html' }, body: payload }, 'any');
        }),
        RUNS,
      );
    });
  });

  describe('everything else', () => {
    it('answers any path under /assets that is not one of our files without a 5xx, and refuses /demo/callback (the demo is off in tests)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(pathSegment, { minLength: 1, maxLength: 4 }), params, async (segments, query) => {
          // "." and "%2f" name the folder itself: a 301 to "/assets/…/", which expectHarmless checks is ours.
          await go({ method: 'GET', path: `/assets/${segments.join('/')}` }, 'any');
          await go({ method: 'GET', path: `/demo/callback?${encodeParams(query)}` }, 'refusal');
        }),
        RUNS,
      );
    });

    it('answers any method on any path without a server error', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...METHODS), fc.array(pathSegment, { minLength: 1, maxLength: 3 }), body, async (method, segments, { contentType, body: payload }) => {
          await go({ method, path: `/${segments.join('/')}`, headers: { 'content-type': contentType }, body: payload }, 'any');
        }),
        RUNS,
      );
    });
  });

  it('refuses a 1 MB body at every POST endpoint, quickly', async () => {
    const form = `a=${'x'.repeat(MB)}`;
    const json = JSON.stringify({ a: 'x'.repeat(MB) });
    const ours = INTERACTION_STEPS.map((step) => `/interaction/some-uid${step}`);
    const engine = ['/token', '/token/introspection', '/token/revocation', '/par', '/device/auth', '/device', '/userinfo', '/register', '/logout', '/authorize'];
    const basic = basicAuth(WEB_APP);
    for (const path of [...ours, ...engine]) {
      for (const [contentType, payload] of [['application/x-www-form-urlencoded', form], ['application/json', json]] as const) {
        const sent = { method: 'POST', path, headers: { 'content-type': contentType, authorization: basic }, body: payload };
        const reply = await go(sent, 'refusal');
        expect(reply.ms, describeSent(sent, reply)).toBeLessThan(3000);
        // Our forms stop at 16 kB with 413; the engine reads at most 56 kB and answers 400
        // invalid_request (or 404/405 where the route is off), which is its equivalent.
        if (ours.includes(path) && contentType === 'application/x-www-form-urlencoded') expect(reply.status, describeSent(sent, reply)).toBe(413);
      }
    }
  });

  describe('with POST authorization and logout requests on (AUTHORIZATION_POST=true)', () => {
    let posting: TestGatehouse;
    beforeAll(async () => {
      posting = await startTestGatehouse(flavour, { env: { AUTHORIZATION_POST: 'true' }, shareWith: server });
    });
    afterAll(async () => posting?.close());

    it('answers any form at /authorize and /logout by a page, an error or a redirect to us or the registered redirect_uri', async () => {
      const realClient: [string, string][] = [['client_id', WEB_APP.id], ['redirect_uri', WEB_APP.redirectUri], ['response_type', 'code'], ['scope', 'openid']];
      const forms = fc.oneof(
        fc.tuple(fc.boolean(), params).map(([real, pairs]): Body => ({ contentType: 'application/x-www-form-urlencoded', body: encodeParams([...(real ? realClient : []), ...pairs]) })),
        body,
      );
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/authorize', '/logout'), forms, async (path, { contentType, body: payload }) => {
          const sent: Sent = { method: 'POST', path, headers: { 'content-type': contentType, accept: 'text/html' }, body: payload };
          expectHarmless(sent, await send(posting.url, sent), { issuer: posting.issuer, allow: 'any' });
        }),
        RUNS,
      );
    });
  });

  it('leaves every user, client, key, grant and token as it was, and signs nobody in', async () => {
    const after = await snapshot();
    expect(after.kept).toEqual(before.kept);
    expect(after.auditEvents).toEqual(expect.arrayContaining(before.auditEvents));
    const signedIn = await server.gatehouse.db.prisma.oidcArtifact.count({ where: { model: 'Session', accountId: { not: null } } });
    expect(signedIn).toBe(0);
  });
});

describe('parseSeedFile with arbitrary JSON', () => {
  const name = String.raw`[A-Za-z_$][\w$]*`;
  const quoted = String.raw`"(?:[^"\\]|\\.)*"`;
  /** `(file): …`, `users[0].password: …`, `"odd key": …`, `users[0]["odd key"]: …` */
  const problemLine = new RegExp(String.raw`^(?:\(file\)|(?:${name}|${quoted})(?:\[\d+\]|\.${name}|\[${quoted}\])*): \S`);

  it('never throws: it either accepts the file or names every problem', () => {
    const entry = fc.dictionary(fc.oneof(fc.constantFrom('client_id', 'client_secret', 'redirect_uris', 'grant_types', 'email', 'password', 'name', 'identifier', 'scopes', 'jwks', '__proto__', 'constructor'), fc.string()), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 });
    const file = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.dictionary(fc.constantFrom('clients', 'users', 'resources', '__proto__', 'constructor', 'toString', 'extra'), fc.oneof(fc.array(entry, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }),
    );
    fc.assert(
      fc.property(file, fc.integer({ min: 1, max: 200 }), (json, passwordMinLength) => {
        // As the seed command gets it: through JSON.parse, so "__proto__" is an own key.
        const parsed: unknown = JSON.parse(JSON.stringify(json) ?? 'null');
        const result = parseSeedFile(parsed, { passwordMinLength });
        if (result.ok) return;
        expect(result.problems.length).toBeGreaterThan(0);
        for (const problem of result.problems) expect(problem).toMatch(problemLine);
      }),
      { numRuns: 500 },
    );
  });
});

