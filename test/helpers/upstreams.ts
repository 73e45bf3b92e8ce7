// Real upstream identity providers on 127.0.0.1 for the federation tests: a bare oidc-provider
// (a static client, the in-memory adapter, a tiny interaction handler that signs in whoever the
// test says, or refuses) and a small node:http server speaking GitHub's OAuth 2.0 and user
// endpoints. Each can be told to misbehave the way an attacker or a broken upstream would: an
// ID token re-signed with another key, or naming another issuer or audience.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { freePort } from './ports.js';

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const port = await freePort();
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A signing key pair as a private JWK (with kid and alg) and its public half. */
async function signingKey(kid: string) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } as JWK;
  return jwk;
}

export type IdTokenTampering = 'other_key' | 'other_issuer' | 'other_audience' | 'other_nonce' | 'expired';

/** What the bare upstream does on its next sign-ins. */
export interface BareUpstreamBehaviour {
  /** Who signs in (an id of `accounts`); undefined: the interaction is refused (access_denied). */
  account: string | undefined;
  amr?: string[];
  acr?: string;
  /** How the ID token is altered at the token endpoint. */
  tamper?: IdTokenTampering;
}

export interface BareUpstream {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Claims by account id, as findAccount returns them (sub is the id). */
  readonly accounts: Map<string, Record<string, unknown>>;
  behaviour: BareUpstreamBehaviour;
  close(): Promise<void>;
}

/** A bare oidc-provider whose one client is Gatehouse at `redirectUri`. */
export async function startBareUpstream(redirectUris: string[]): Promise<BareUpstream> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'gatehouse';
  const clientSecret = `upstream-secret-${randomBytes(12).toString('hex')}`;
  const key = await signingKey('upstream-key');
  const accounts = new Map<string, Record<string, unknown>>();
  const upstream: BareUpstream = { issuer, clientId, clientSecret, accounts, behaviour: { account: undefined }, close: async () => {} };

  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris, grant_types: ['authorization_code'], response_types: ['code'] }],
    jwks: { keys: [key] },
    cookies: { keys: ['bare-upstream-cookie-key'] },
    claims: { openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name', 'preferred_username'] },
    findAccount: async (_ctx, id) => (accounts.has(id) ? { accountId: id, claims: () => ({ sub: id, ...accounts.get(id) }) } : undefined),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    // First-party: every requested scope is granted without a consent screen.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { client, session, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params?.scope ?? 'openid'));
      await grant.save();
      return grant;
    },
  });

  // The token endpoint's answer, altered as the test asked, before it is sent.
  provider.use(async (ctx, next) => {
    await next();
    const tamper = upstream.behaviour.tamper;
    const body = ctx.body as { id_token?: string } | undefined;
    if (!tamper || ctx.path !== '/token' || !body?.id_token) return;
    const claims = decodeJwt(body.id_token);
    const header = decodeProtectedHeader(body.id_token);
    const signWith = tamper === 'other_key' ? await signingKey(header.kid as string) : key;
    const now = Math.floor(Date.now() / 1000);
    const changes: Record<IdTokenTampering, Record<string, unknown>> = {
      other_key: {},
      other_issuer: { iss: 'http://127.0.0.1:1/somebody-else' },
      other_audience: { aud: 'another-app' },
      other_nonce: { nonce: 'a-nonce-from-another-request' },
      expired: { iat: now - 7200, exp: now - 3600 },
    };
    const altered = { ...claims, ...changes[tamper] };
    body.id_token = await new SignJWT(altered).setProtectedHeader({ alg: 'RS256', kid: header.kid as string, typ: header.typ as string | undefined }).sign(await importJWK(signWith, 'RS256'));
  });

  const engine = provider.callback();
  const server = await new Promise<Server>((resolve) => {
    const s = createServer((req, res) => {
      if (!req.url?.startsWith('/interaction/')) return void engine(req, res);
      // The tiny interaction handler: signs in the account the test chose, or refuses.
      void (async () => {
        const { account, amr, acr } = upstream.behaviour;
        const result = account ? { login: { accountId: account, ...(amr ? { amr } : {}), ...(acr ? { acr } : {}) } } : { error: 'access_denied', error_description: 'the person said no' };
        await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      })().catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
  upstream.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return upstream;
}

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url?: string;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface FakeGitHub {
  /** The base URL; endpoints: /login/oauth/authorize, /login/oauth/access_token, /user, /user/emails. */
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Who signs in next; undefined: the person refuses (error=access_denied). */
  user: GitHubUser | undefined;
  close(): Promise<void>;
}

/** GitHub's OAuth 2.0 web flow and user API as GitHub answers them (PKCE S256 checked, secret posted in the form). */
export async function startGitHub(): Promise<FakeGitHub> {
  const clientId = 'Iv1.gatehouse-test';
  const clientSecret = `gh-secret-${randomBytes(12).toString('hex')}`;
  const codes = new Map<string, { user: GitHubUser; challenge: string; redirectUri: string }>();
  const tokens = new Map<string, GitHubUser>();
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  };
  const bearer = (req: IncomingMessage) => tokens.get((req.headers.authorization ?? '').replace(/^(Bearer|token) /i, ''));

  const github: FakeGitHub = { url: '', clientId, clientSecret, user: undefined, close: async () => {} };
  const started = await listen((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
        const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
        redirect.searchParams.set('state', url.searchParams.get('state') ?? '');
        if (url.searchParams.get('client_id') !== clientId) return json(res, 404, { error: 'unknown client' });
        if (!github.user) {
          redirect.searchParams.set('error', 'access_denied');
          redirect.searchParams.set('error_description', 'The user has denied your application access.');
        } else {
          const code = randomBytes(10).toString('hex');
          codes.set(code, { user: github.user, challenge: url.searchParams.get('code_challenge') ?? '', redirectUri: url.searchParams.get('redirect_uri') ?? '' });
          redirect.searchParams.set('code', code);
        }
        res.writeHead(302, { location: redirect.href });
        return res.end();
      }
      if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
        const form = await readBody(req);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        // GitHub answers errors with 200 and an error field.
        if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) return json(res, 200, { error: 'incorrect_client_credentials' });
        if (!grant || grant.redirectUri !== form.get('redirect_uri') || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) return json(res, 200, { error: 'bad_verification_code' });
        const token = `gho_${randomBytes(16).toString('hex')}`;
        tokens.set(token, grant.user);
        const answer = { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' };
        // Like GitHub: JSON only when asked for, form-encoded otherwise.
        if (!(req.headers.accept ?? '').includes('application/json')) {
          res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
          return res.end(new URLSearchParams(answer).toString());
        }
        return json(res, 200, answer);
      }
      // Like GitHub's API: a request without a User-Agent is refused.
      if (!req.headers['user-agent']) return json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' });
      const user = bearer(req);
      if (req.method === 'GET' && url.pathname === '/user') {
        if (!user) return json(res, 401, { message: 'Requires authentication' });
        const { emails, ...profile } = user;
        return json(res, 200, { ...profile, email: emails.find((e) => e.primary)?.email ?? null });
      }
      if (req.method === 'GET' && url.pathname === '/user/emails') {
        if (!user) return json(res, 401, { message: 'Requires authentication' });
        return json(res, 200, user.emails.map((e) => ({ ...e, visibility: e.primary ? 'public' : null })));
      }
      json(res, 404, { message: 'Not Found' });
    })();
  });
  Object.assign(github, { url: started.url, close: started.close });
  return github;
}

/** The github preset's endpoints, pointed at the fake. */
export const gitHubEndpoints = (github: FakeGitHub) => ({
  authorization_endpoint: `${github.url}/login/oauth/authorize`,
  token_endpoint: `${github.url}/login/oauth/access_token`,
  userinfo_endpoint: `${github.url}/user`,
  emails_endpoint: `${github.url}/user/emails`,
});
