// Gatehouse's own pages sign people in like any app would: the account page (/account) and the
// admin console (/console) each send the browser to /authorize as an internal, first-party
// client, so the one sign-in page (second factor, brute-force limits, audit) is the only way in.
// They ask for no code and no token (response_type=none): all they need is the engine's session
// cookie, which the sign-in sets. The clients are static (no row in the Client table, so admins
// cannot edit or delete them), and they never ask for consent: Gatehouse does not need a
// person's permission to show them their own account or an administrator the console.
// The console's client requires the second factor the way any client can
// (`gatehouse_require_mfa`, oidc/provider.ts), unless CONSOLE_REQUIRE_MFA=false.
import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';

export const ACCOUNT_CLIENT_ID = 'gatehouse-account';
export const CONSOLE_CLIENT_ID = 'gatehouse-console';

/** Client ids nobody may register: they are Gatehouse's own pages. */
export const BUILT_IN_CLIENT_IDS: readonly string[] = [ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID];
export const isBuiltInClient = (clientId: string) => BUILT_IN_CLIENT_IDS.includes(clientId);

const base = (issuer: string) => issuer.replace(/\/$/, '');
export const accountCallbackUrl = (issuer: string) => `${base(issuer)}/account/callback`;
export const consoleCallbackUrl = (issuer: string) => `${base(issuer)}/console/callback`;

function pageClient(clientId: string, name: string, redirectUri: string): ClientMetadata {
  return { client_id: clientId, client_name: name, token_endpoint_auth_method: 'none', response_types: ['none'], grant_types: [], redirect_uris: [redirectUri] };
}

/** The static clients the engine is configured with (oidc/provider.ts). */
export function builtInClients(issuer: string, { consoleRequiresMfa }: { consoleRequiresMfa: boolean }): ClientMetadata[] {
  return [
    pageClient(ACCOUNT_CLIENT_ID, 'Your Gatehouse account', accountCallbackUrl(issuer)),
    { ...pageClient(CONSOLE_CLIENT_ID, 'Gatehouse admin console', consoleCallbackUrl(issuer)), gatehouse_require_mfa: consoleRequiresMfa },
  ];
}

/** The grant a built-in page works under: openid only, made without a consent prompt. */
export async function builtInGrant(provider: Provider, clientId: string, accountId: string) {
  const grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope('openid');
  await grant.save();
  return grant;
}
