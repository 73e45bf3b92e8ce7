// The clients and people the tests use, defined once. A test that needs a variant builds it
// from these (webApp({ client_name: 'Photo Album' }), machineClient('ledger-rs')) rather than
// spelling out a registration of its own, so what differs from the usual is all it shows.
import type { ClientMetadata } from '../../src/clients/store.js';

/** Where the apps live. Nothing listens there: a test's browser stops at the redirect. */
export const APP = 'http://app.test';

export const PASSWORD = 'correct horse battery staple';
/** A password no test person has. */
export const WRONG_PASSWORD = 'not the password at all';

export interface Person {
  email: string;
  password: string;
  name?: string;
}

let people = 0;
/** A person no other test of the file shares (person-N@example.com, PASSWORD), for a test that changes one. */
export function newPerson(): Required<Person> {
  people += 1;
  return { email: `person-${people}@example.com`, password: PASSWORD, name: `Person ${people}` };
}

/** The person most tests sign in as. */
export const ALICE = { email: 'alice@example.com', password: PASSWORD, name: 'Alice Liddell' } as const satisfies Person;
export const BOB = { email: 'bob@example.com', password: 'bob has a long enough password' } as const satisfies Person;

/** A client as an app holds it: what it authenticates with and where it sends the browser. */
export interface ConfidentialClient {
  id: string;
  secret: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
}

/** A client secret long enough for every check, named after its client. */
export const secretFor = (clientId: string) => `${clientId}-secret-0123456789-0123456789-0123456789`;

/** The confidential web app most tests sign in to. */
export const WEB_APP: ConfidentialClient = {
  id: 'web-app',
  secret: secretFor('web-app'),
  redirectUri: `${APP}/callback`,
  postLogoutRedirectUri: `${APP}/signed-out`,
};

/** WEB_APP's registration: the code flow with refresh tokens, client_secret_basic. */
export function webApp(overrides: Partial<ClientMetadata> = {}): ClientMetadata {
  return {
    client_id: WEB_APP.id,
    client_secret: WEB_APP.secret,
    client_name: 'Web App',
    redirect_uris: [WEB_APP.redirectUri],
    post_logout_redirect_uris: [WEB_APP.postLogoutRedirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email offline_access',
    ...overrides,
  };
}

/** A public client (no secret, PKCE only) of the code flow. */
export function publicApp(clientId: string, overrides: Partial<ClientMetadata> = {}): ClientMetadata {
  return {
    client_id: clientId,
    redirect_uris: [`${APP}/${clientId}/callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...overrides,
  };
}

/** A service that signs in as itself (client credentials), with secretFor(clientId). */
export function machineClient(clientId = 'machine', overrides: Partial<ClientMetadata> = {}): ClientMetadata {
  return {
    client_id: clientId,
    client_secret: secretFor(clientId),
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...overrides,
  };
}

/** The credentials a client registered with secretFor() authenticates with. */
export const credentialsOf = (clientId: string) => ({ id: clientId, secret: secretFor(clientId) });
