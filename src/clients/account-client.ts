// The account page (/account) signs people in like any app would: it sends them to /authorize
// as an internal, first-party client, so the one sign-in page (second factor, brute-force
// limits, audit) is the only way in. It asks for no code and no token (response_type=none):
// all it needs is the engine's session cookie, which the sign-in sets. The client is static
// (no row in the Client table, so admins cannot edit or delete it), and it never asks for
// consent: Gatehouse does not need a person's permission to show them their own account.
import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';

export const ACCOUNT_CLIENT_ID = 'gatehouse-account';

export const accountCallbackUrl = (issuer: string) => `${issuer.replace(/\/$/, '')}/account/callback`;

export function accountClientMetadata(issuer: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'Your Gatehouse account',
    token_endpoint_auth_method: 'none',
    response_types: ['none'],
    grant_types: [],
    redirect_uris: [accountCallbackUrl(issuer)],
  };
}

/** The grant the account page works under: openid only, made without a consent prompt. */
export async function accountPageGrant(provider: Provider, accountId: string) {
  const grant = new provider.Grant({ accountId, clientId: ACCOUNT_CLIENT_ID });
  grant.addOIDCScope('openid');
  await grant.save();
  return grant;
}
