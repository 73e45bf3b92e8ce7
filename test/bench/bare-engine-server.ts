// The benchmark's second baseline: the oidc-provider engine bare, as its own documentation
// starts it: plain node:http, the engine's in-memory adapter, the bench's clients given as static
// `clients`, people in a Map, and the minimal configuration the scenarios need (client
// credentials and resource indicators for the two APIs, refresh tokens, the email claim).
// Nothing of Gatehouse is loaded, not even its configuration of the engine; what separates the
// two is everything Gatehouse is. Sign-in uses the same minimal pages as the other baseline
// (sign-in-pages.ts) and the same bcrypt cost.
//
// Environment: PORT, HOST, ISSUER (as the bench starts every server), BCRYPT_COST, BENCH_USERS.
import { createServer } from 'node:http';
import bcrypt from 'bcrypt';
import Provider, { errors, type Configuration } from 'oidc-provider';
import { generateJwkPair } from '../../src/keys/signing-keys.js';
import { JWT_API, MACHINE_CLIENT, OPAQUE_API, PASSWORD, WEB_CLIENT, userEmail } from './fixtures.js';
import { engineWithSignInPages } from './sign-in-pages.js';

const issuer = process.env.ISSUER ?? 'http://127.0.0.1:3000';
const users = Number(process.env.BENCH_USERS ?? 16);
const passwordHash = await bcrypt.hash(PASSWORD, Number(process.env.BCRYPT_COST ?? 4));
const people = new Map(Array.from({ length: users }, (_, i) => [userEmail(i), { id: `bench-${i}`, passwordHash }]));

// One key per algorithm, as Gatehouse publishes: RS256 signs ID tokens and JWT access tokens.
// Made as Gatehouse makes its keys (generateJwkPair says why that way); only the key, none of Gatehouse's serving code.
const privateJwk = (alg: 'RS256' | 'ES256') => ({ ...generateJwkPair(alg).privateKey, alg, use: 'sig', kid: alg.toLowerCase() });

const configuration: Configuration = {
  clients: [
    {
      client_id: WEB_CLIENT.id,
      client_secret: WEB_CLIENT.secret,
      redirect_uris: [WEB_CLIENT.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email offline_access',
    },
    { client_id: MACHINE_CLIENT.id, client_secret: MACHINE_CLIENT.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  ],
  jwks: { keys: [privateJwk('RS256'), privateJwk('ES256')] as never },
  cookies: { keys: ['bare-engine-cookie-key-0123456789'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'email', 'offline_access'],
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@example.com`, email_verified: true }) }),
  // The paths the scenarios call (Gatehouse's names for them).
  routes: { authorization: '/authorize', userinfo: '/userinfo', jwks: '/jwks', token: '/token' },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf as unknown as string,
      useGrantedResource: async () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator === JWT_API) return { scope: 'read', audience: JWT_API, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        if (indicator === OPAQUE_API) return { scope: 'read', audience: OPAQUE_API, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
        throw new errors.InvalidTarget(`${indicator} is not a registered resource`);
      },
    },
  },
  // Refresh tokens for a client allowed them and a grant with offline_access (the engine's default asks for both and for consent).
  issueRefreshToken: (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
};

const provider = new Provider(issuer, configuration);
const { port, hostname } = { port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? '127.0.0.1' };
const server = createServer(engineWithSignInPages(provider, async (email) => people.get(email), (error) => console.error('bare engine interaction failed', error)));
server.listen(port, hostname);

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
