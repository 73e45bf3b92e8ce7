// The pieces of the upstream flow that need no upstream: plain http refused in production except
// to this machine, the github preset's defaults, and when a trusted upstream's amr/acr is MFA.
import { describe, expect, it } from 'vitest';
import { GITHUB, resolveIdp, type IdpSettings } from '../../src/federation/schema.js';
import { createUpstreams, UpstreamFailure, upstreamShowsMfa, type UpstreamIdentity } from '../../src/federation/upstream.js';
import { freePort } from '../helpers/ports.js';

const resolved = (kind: string, settings: Partial<IdpSettings>) =>
  resolveIdp({ id: 'idp', displayName: 'IdP', kind, settings: { client_id: 'c', create_accounts: false, link_by_verified_email: false, trusted: false, ...settings } as IdpSettings, updatedAt: new Date() });

describe('the upstream flow', () => {
  it('refuses a plain-http upstream in production, before any request, unless it is on this machine', async () => {
    const production = createUpstreams({ production: true });
    const refused = await production.authorizationUrl(resolved('oidc', { issuer: 'http://sso.example.com' }), 'secret', 'https://id.example.com/federation/idp/callback').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamFailure);
    expect((refused as UpstreamFailure).reason).toBe('insecure_upstream');

    // On this machine it is let through to the network (nothing listens: unreachable, not insecure).
    const local = await production.authorizationUrl(resolved('oidc', { issuer: `http://127.0.0.1:${await freePort()}` }), 'secret', 'https://id.example.com/federation/idp/callback').catch((e: unknown) => e);
    expect((local as UpstreamFailure).reason).toBe('upstream_unreachable');

    const oauth2 = await production.authorizationUrl(resolved('oauth2', { preset: 'github', token_endpoint: 'http://github.internal/token' }), 'secret', 'https://id.example.com/cb').catch((e: unknown) => e);
    expect((oauth2 as UpstreamFailure).reason).toBe('insecure_upstream');
  });

  it('builds a GitHub authorization request from the preset: PKCE, state, its scope, no nonce', async () => {
    const { url, checks } = await createUpstreams({ production: true }).authorizationUrl(resolved('oauth2', { preset: 'github' }), 'secret', 'https://id.example.com/federation/idp/callback');
    expect(url.origin + url.pathname).toBe(GITHUB.authorization_endpoint);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ client_id: 'c', scope: 'read:user user:email', state: checks.state, code_challenge_method: 'S256', redirect_uri: 'https://id.example.com/federation/idp/callback' });
    expect(url.searchParams.has('nonce')).toBe(false);
    expect(checks.nonce).toBeUndefined();
  });

  it('counts a trusted upstream sign-in as MFA only when its amr or acr says so', () => {
    const identity = (amr: string[], acr: string | null = null): UpstreamIdentity => ({ subject: 's', email: null, emailVerified: false, profile: {}, amr, acr });
    const trusted = resolved('oidc', { issuer: 'https://sso.example.com', trusted: true, mfa_acr_values: ['gold'] });
    expect(upstreamShowsMfa(trusted, identity(['pwd', 'otp']))).toBe(true);
    expect(upstreamShowsMfa(trusted, identity(['mfa']))).toBe(true);
    expect(upstreamShowsMfa(trusted, identity(['pwd'], 'gold'))).toBe(true);
    expect(upstreamShowsMfa(trusted, identity(['pwd'], 'silver'))).toBe(false);
    expect(upstreamShowsMfa(trusted, identity(['fed', 'pwd']))).toBe(false);
    expect(upstreamShowsMfa({ ...trusted, trusted: false }, identity(['pwd', 'otp'], 'gold'))).toBe(false);
  });
});
