// Declaring upstream identity providers, on SQLite and PostgreSQL: the management layer the admin
// API and the CLI share, the admin API itself, `gatehouse idps`, and the seed file's
// identity_providers. The client secret is stored encrypted, bound to its provider, and never shown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createClient } from '../../src/clients/service.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { ValidationError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { DecryptionError } from '../../src/core/secrets.js';
import { createIdp, deleteIdp, getIdp, listIdps, updateIdp, type IdpManagementDeps } from '../../src/federation/service.js';
import { createFederationStore, openIdpSecret } from '../../src/federation/store.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { tokenRequest } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, testEnv, type TestGatehouse } from '../helpers/gatehouse.js';

const GOOGLE = { id: 'google', display_name: 'Google', kind: 'oidc', issuer: 'https://accounts.google.com', client_id: 'gatehouse.apps.googleusercontent.com', client_secret: 'GOCSPX-the-google-secret' };
const GITHUB = { id: 'github', display_name: 'GitHub', kind: 'oauth2', preset: 'github', client_id: 'Iv1.abc', client_secret: 'the-github-secret', create_accounts: true };

describe.each(await flavours())('identity provider management on %s', (flavour) => {
  let server: TestGatehouse;
  let deps: IdpManagementDeps;
  const actor = { via: 'cli' as const };

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    deps = { db: server.gatehouse.db, secrets: [TEST_SECRET], audit: createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' })), issuer: server.issuer };
  });
  afterAll(async () => server?.close());

  const row = (id: string) => createFederationStore(server.gatehouse.db).findProvider(id);

  it('creates a provider whose secret is stored encrypted, bound to it, and never shown', async () => {
    const view = await createIdp(deps, GOOGLE, actor);
    expect(view).toMatchObject({ id: 'google', kind: 'oidc', enabled: true, client_secret_set: true, redirect_uri: `${server.issuer}/federation/google/callback`, create_accounts: false, link_by_verified_email: false, trusted: false });
    expect(JSON.stringify(view)).not.toContain(GOOGLE.client_secret);
    const stored = (await row('google'))!;
    expect(JSON.stringify(stored)).not.toContain(GOOGLE.client_secret);
    expect(openIdpSecret(stored, [TEST_SECRET])).toBe(GOOGLE.client_secret);
    // Copied to another provider's row, it does not decrypt.
    expect(() => openIdpSecret({ ...stored, id: 'elsewhere' }, [TEST_SECRET])).toThrow(DecryptionError);
    expect(JSON.stringify(await listIdps(deps))).not.toContain(GOOGLE.client_secret);
  });

  it('names every problem of a declaration, and changes nothing', async () => {
    const before = await listIdps(deps);
    const problems = async (input: unknown) => {
      const error = await createIdp(deps, input, actor).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      return (error as ValidationError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    };
    expect(await problems({ ...GOOGLE, id: 'Not OK', issuer: undefined })).toEqual(expect.arrayContaining([expect.stringMatching(/^id: must be 1 to 63/), 'issuer: is required for kind oidc']));
    expect(await problems({ ...GITHUB, preset: undefined })).toEqual(['authorization_endpoint: is required for kind oauth2 without a preset', 'token_endpoint: is required for kind oauth2 without a preset', 'userinfo_endpoint: is required for kind oauth2 without a preset']);
    expect(await problems({ ...GOOGLE, id: 'g2', email_domains: ['not a domain'], claims: { colour: 'x' } })).toEqual(expect.arrayContaining(['email_domains.0: must be a domain name such as example.com', 'claims.colour: is not a known field']));
    expect(await listIdps(deps)).toEqual(before);
    await expect(createIdp(deps, GOOGLE, actor)).rejects.toThrow('an identity provider with id google already exists');
  });

  it('updates the fields given, replaces the secret only when one is given, and deletes with every linked identity', async () => {
    const sealed = (await row('google'))!.clientSecretEncrypted;
    const updated = await updateIdp(deps, 'google', { email_domains: ['example.com'], create_accounts: true, icon_uri: 'https://example.com/g.svg' }, actor);
    expect(updated).toMatchObject({ email_domains: ['example.com'], create_accounts: true, icon_uri: 'https://example.com/g.svg' });
    expect((await row('google'))!.clientSecretEncrypted).toBe(sealed);
    expect(await updateIdp(deps, 'google', { icon_uri: null, client_secret: 'rotated-secret' }, actor)).not.toHaveProperty('icon_uri');
    expect(openIdpSecret((await row('google'))!, [TEST_SECRET])).toBe('rotated-secret');
    await expect(updateIdp(deps, 'google', { kind: 'oauth2' }, actor)).rejects.toBeInstanceOf(ValidationError);

    const person = await server.addPerson();
    await createFederationStore(server.gatehouse.db).link('google', 'g-123', person.id, person.email);
    await deleteIdp(deps, 'google', actor);
    await expect(getIdp(deps, 'google')).rejects.toThrow('there is no identity provider google');
    expect(await server.gatehouse.db.prisma.linkedIdentity.count({ where: { providerId: 'google' } })).toBe(0);
    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: { in: ['idp.created', 'idp.updated', 'idp.deleted'] } }, orderBy: { at: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['idp.created', 'idp.updated', 'idp.updated', 'idp.deleted']);
    expect(JSON.stringify(events)).not.toContain('rotated-secret');
  });

  it('is managed through the admin API, which never returns the secret', async () => {
    const { client, client_secret } = await createClient({ db: server.gatehouse.db, secrets: [TEST_SECRET], audit: deps.audit }, { client_id: 'ops', grant_types: ['client_credentials'], scope: 'admin' }, actor);
    const token = (await tokenRequest(server.url, { id: client.client_id, secret: client_secret as string }, { grant_type: 'client_credentials', scope: 'admin' })).body.access_token;
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await response.text();
      return { status: response.status, text, body: text ? JSON.parse(text) : {} };
    };
    const created = await call('POST', '/identity-providers', GITHUB);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'github', preset: 'github', client_secret_set: true, redirect_uri: `${server.issuer}/federation/github/callback` });
    expect(created.text).not.toContain(GITHUB.client_secret);
    expect((await call('GET', '/identity-providers')).body.identity_providers.map((idp: { id: string }) => idp.id)).toContain('github');
    expect((await call('PATCH', '/identity-providers/github', { enabled: false })).body.enabled).toBe(false);
    const invalid = await call('POST', '/identity-providers', { ...GITHUB, id: 'gh2', kind: 'saml' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.issues).toEqual(expect.arrayContaining([{ path: 'kind', message: 'must be one of oidc, oauth2' }]));
    expect((await call('DELETE', '/identity-providers/github')).status).toBe(204);
    expect((await call('GET', '/identity-providers/github')).status).toBe(404);
    const openapi = (await (await fetch(`${server.url}/admin/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/admin/identity-providers', '/admin/identity-providers/{idpId}']));
  });

  it('is declared in the seed file: created once, unchanged on a re-run, updated when the secret changes', async () => {
    const seed = async (file: unknown) => {
      const parsed = parseSeedFile(file);
      if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
      return (await applySeed(server.gatehouse.db, parsed.data, { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]), secrets: [TEST_SECRET] })).identityProviders;
    };
    const keycloak = { id: 'keycloak', display_name: 'Company SSO', kind: 'oidc', issuer: 'https://sso.example.com/realms/staff', client_id: 'gatehouse', client_secret: 'kc-secret', link_by_verified_email: true };
    expect(await seed({ identity_providers: [keycloak] })).toEqual({ created: ['keycloak'], updated: [], unchanged: [] });
    expect(await seed({ identity_providers: [keycloak] })).toEqual({ created: [], updated: [], unchanged: ['keycloak'] });
    expect(await seed({ identity_providers: [{ ...keycloak, client_secret: 'kc-secret-2' }] })).toEqual({ created: [], updated: ['keycloak'], unchanged: [] });
    expect(openIdpSecret((await row('keycloak'))!, [TEST_SECRET])).toBe('kc-secret-2');
    const problems = parseSeedFile({ identity_providers: [{ ...keycloak, client_secret: undefined }, keycloak, keycloak] });
    expect(problems.ok ? [] : problems.problems).toEqual(['identity_providers[0].client_secret: is required', 'identity_providers[1].id: duplicates identity_providers[0].id', 'identity_providers[2].id: duplicates identity_providers[0].id']);
  });

  it('is managed with `gatehouse idps`, the secret read from stdin', async () => {
    const env = testEnv(server.database.config, { ISSUER: server.issuer });
    const created = await runCli(['idps', 'create', 'entra', '--kind', 'oidc', '--name', 'Microsoft', '--issuer', 'https://login.microsoftonline.com/tenant-id/v2.0', '--client-id', 'app-id', '--client-secret-stdin', '--declaration', '{"email_domains":["example.com"]}', '--json'], env, 'entra-secret\n');
    expect(created.stderr).toContain(`Register ${server.issuer}/federation/entra/callback`);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ id: 'entra', display_name: 'Microsoft', email_domains: ['example.com'] });
    expect(openIdpSecret((await row('entra'))!, [TEST_SECRET])).toBe('entra-secret');
    const listed = await runCli(['idps', 'list'], env);
    expect(listed.stdout).toMatch(/entra\s+Microsoft\s+oidc\s+enabled/);
    expect(listed.stdout + listed.stderr).not.toContain('entra-secret');
    expect((await runCli(['idps', 'create', 'nosecret', '--kind', 'oidc', '--name', 'X', '--issuer', 'https://x.example', '--client-id', 'x'], env)).code).toBe(2);
    expect((await runCli(['idps', 'update', 'entra', '--disable'], env)).code).toBe(0);
    expect((await row('entra'))!.enabled).toBe(false);
    expect((await runCli(['idps', 'delete', 'entra'], env)).code).toBe(0);
    expect(await row('entra')).toBeNull();
  });
});
