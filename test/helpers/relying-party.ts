// An app's side of the protocol, played by openid-client v6 (an independent relying party):
// discovery for one client, an authorization request with fresh PKCE, state and nonce, and the
// redemption of the code that comes back, checked as a careful app checks it.
import * as oidc from 'openid-client';
import type { Browser } from './browser.js';

/** Discovery for `client`: Basic authentication when it has a secret, none otherwise, unless `auth` says. */
export function discover(issuer: string, client: { id: string; secret?: string }, auth?: oidc.ClientAuth): Promise<oidc.Configuration> {
  const clientAuth = auth ?? (client.secret ? oidc.ClientSecretBasic(client.secret) : oidc.None());
  return oidc.discovery(new URL(issuer), client.id, client.secret, clientAuth, { execute: [oidc.allowInsecureRequests] });
}

export interface AuthorizationRequest {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

/** An authorization URL with fresh PKCE, state and nonce; `params` add to them or replace them. */
export async function authorizationRequest(config: oidc.Configuration, params: Record<string, string>): Promise<AuthorizationRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    ...params,
  });
  return { url, verifier, state: url.searchParams.get('state') as string, nonce: url.searchParams.get('nonce') as string };
}

/** Redeems the code `callback` carries, checking PKCE, state and nonce against `request`. */
export const redeemCallback = (config: oidc.Configuration, callback: URL, request: AuthorizationRequest) =>
  oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });

/** Starts an authorization in `browser`: the first page it lands on, and `finish`, which redeems the code of a callback. */
export async function authorizeIn(browser: Browser, config: oidc.Configuration, params: Record<string, string>) {
  const request = await authorizationRequest(config, params);
  const page = await browser.visit(request.url.href);
  return { page, request, finish: (callback: URL | undefined) => redeemCallback(config, callback as URL, request) };
}
