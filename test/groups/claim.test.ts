// The groups claim end to end, with openid-client as the relying party, on SQLite and PostgreSQL:
// scope groups puts the person's groups in userinfo; in the ID token only for a client registered
// with id_token_groups; in an access token for a registered resource; a client's
// allowed_groups hides every other group; and a membership change shows in the next response.
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { createClient } from '../../src/clients/service.js';
import type { ClientMetadata } from '../../src/clients/store.js';
import { ValidationError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { setUserGroups, type GroupManagementDeps } from '../../src/groups/service.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { Browser, completeSignIn } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, credentialsOf, secretFor, WEB_APP } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { authorizationRequest, discover, redeemCallback } from '../helpers/relying-party.js';

const API = 'https://api.example.com';
const OPAQUE_API = 'https://ledger.example.com';
const app = (clientId: string, extra: Record<string, unknown> = {}) => ({
  client_id: clientId,
  client_secret: secretFor(clientId),
  redirect_uris: [WEB_APP.redirectUri],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid email groups offline_access',
  ...extra,
});

const SEED = {
  clients: [app('plain-app'), app('id-token-app', { id_token_groups: true }), app('limited-app', { id_token_groups: true, allowed_groups: ['staff', 'nobody-here'] })],
  groups: [{ name: 'admins', description: 'Run Gatehouse' }, { name: 'staff' }, { name: 'ops' }],
  users: [{ ...ALICE, email_verified: true, groups: ['staff', 'admins'] }],
  resources: [
    { identifier: API, scopes: ['read'], access_token_format: 'jwt' },
    { identifier: OPAQUE_API, scopes: ['read'], access_token_format: 'opaque' },
  ],
};

describe.each(await flavours())('the groups claim on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;
  let jwks: JSONWebKeySet;
  let groups: GroupManagementDeps;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    const parsed = parseSeedFile(SEED);
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    await applySeed(server.gatehouse.db, parsed.data, { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]) });
    aliceId = (await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { email: ALICE.email } })).id;
    jwks = (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;
    groups = { db: server.gatehouse.db, audit: createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' })) };
  });
  afterAll(async () => server?.close());

  /** A whole code flow for Alice with `clientId`, up to its tokens (consent given when asked). */
  async function signIn(clientId: string, params: Record<string, string>) {
    const config = await discover(server.issuer, credentialsOf(clientId));
    const request = await authorizationRequest(config, { redirect_uri: WEB_APP.redirectUri, ...params });
    const browser = new Browser(server.issuer);
    const tokens = await redeemCallback(config, await completeSignIn(browser, await browser.visit(request.url.href), ALICE), request);
    return { config, tokens, userinfo: () => oidc.fetchUserInfo(config, tokens.access_token, aliceId) };
  }

  it('lists the groups scope and claim in discovery', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { scopes_supported: string[]; claims_supported: string[] };
    expect(discovery.scopes_supported).toContain('groups');
    expect(discovery.claims_supported).toContain('groups');
  });

  it('puts the sorted groups in userinfo for scope groups, and in the ID token only for a client with id_token_groups', async () => {
    const plain = await signIn('plain-app', { scope: 'openid email groups' });
    expect(plain.tokens.claims()).not.toHaveProperty('groups');
    expect(await plain.userinfo()).toMatchObject({ sub: aliceId, email: ALICE.email, groups: ['admins', 'staff'] });

    const withIdToken = await signIn('id-token-app', { scope: 'openid groups' });
    expect(withIdToken.tokens.claims()).toMatchObject({ sub: aliceId, groups: ['admins', 'staff'] });
    expect(await withIdToken.userinfo()).toMatchObject({ groups: ['admins', 'staff'] });

    // Without the scope, neither has it, whatever the client registered.
    const without = await signIn('id-token-app', { scope: 'openid email' });
    expect(without.tokens.claims()).not.toHaveProperty('groups');
    expect(await without.userinfo()).not.toHaveProperty('groups');
  });

  it('shows a client with allowed_groups only those of the groups, everywhere', async () => {
    const limited = await signIn('limited-app', { scope: 'openid groups' });
    expect(limited.tokens.claims()).toMatchObject({ groups: ['staff'] });
    expect(await limited.userinfo()).toMatchObject({ groups: ['staff'] });
  });

  it('puts the groups in a JWT access token for a registered resource when the scope has groups', async () => {
    const withGroups = await signIn('plain-app', { scope: 'openid groups read', resource: API });
    const { payload } = await jwtVerify(withGroups.tokens.access_token, createLocalJWKSet(jwks), { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: aliceId, client_id: 'plain-app', scope: 'read', groups: ['admins', 'staff'] });
    // The ID token of that flow still follows id_token_groups.
    expect(withGroups.tokens.claims()).not.toHaveProperty('groups');

    const limited = await signIn('limited-app', { scope: 'openid groups read', resource: API });
    expect(decodeJwt(limited.tokens.access_token).groups).toEqual(['staff']);

    const withoutGroups = await signIn('plain-app', { scope: 'openid read', resource: API });
    expect(decodeJwt(withoutGroups.tokens.access_token)).not.toHaveProperty('groups');

    // An opaque token for a resource: its introspection says the groups.
    const opaque = await signIn('limited-app', { scope: 'openid groups read', resource: OPAQUE_API });
    const introspected = await oidc.tokenIntrospection(opaque.config, opaque.tokens.access_token);
    expect(introspected).toMatchObject({ active: true, aud: OPAQUE_API, groups: ['staff'] });
  });

  it('reflects a membership change at the next userinfo response and token, and audits it', async () => {
    const flow = await signIn('id-token-app', { scope: 'openid groups offline_access', prompt: 'consent' });
    expect(flow.tokens.claims()).toMatchObject({ groups: ['admins', 'staff'] });

    await setUserGroups(groups, aliceId, { groups: ['ops', 'staff'] }, { via: 'admin', clientId: 'ops-console' });
    // The same access token: userinfo reads the groups afresh.
    expect(await flow.userinfo()).toMatchObject({ groups: ['ops', 'staff'] });
    const refreshed = await oidc.refreshTokenGrant(flow.config, flow.tokens.refresh_token as string);
    expect(refreshed.claims()).toMatchObject({ groups: ['ops', 'staff'] });

    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'user.groups_changed', accountId: aliceId }, orderBy: { at: 'asc' } });
    expect(events.at(-1)?.details).toEqual({ via: 'admin', by: 'ops-console', added: ['ops'], removed: ['admins'] });
    await setUserGroups(groups, aliceId, { groups: ['admins', 'staff'] }, { via: 'admin', clientId: 'ops-console' });
  });

  it('validates id_token_groups and allowed_groups when a client is registered', async () => {
    const deps = { db: server.gatehouse.db, secrets: [TEST_SECRET], audit: groups.audit, validateWithEngine: async (metadata: ClientMetadata) => server.gatehouse.provider.Client.validate(metadata) };
    const error = await createClient(deps, { client_id: 'bad-groups', redirect_uris: [WEB_APP.redirectUri], id_token_groups: 'yes', allowed_groups: ['two words'] }, { via: 'cli' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual(['id_token_groups', 'allowed_groups.0']);
    const created = await createClient(deps, { client_id: 'good-groups', redirect_uris: [WEB_APP.redirectUri], id_token_groups: true, allowed_groups: ['staff'] }, { via: 'cli' });
    expect(created.client).toMatchObject({ id_token_groups: true, allowed_groups: ['staff'] });
  });
});
