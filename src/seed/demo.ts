// Development only: a demo client and user so a person can try a sign-in right after
// `npm start`. Their secret and password are derived from SECRETS, so they stay the same
// across restarts without being a value anyone could guess from this source. The demo user is in
// the console's ADMIN_GROUP (created if missing), so the admin console can be tried as well.
import { createHmac } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { createClientStore } from '../clients/store.js';
import { createGroupStore } from '../groups/store.js';
import { createUserStore } from '../people/store.js';
import { hashPassword, passwordMatches } from '../people/accounts.js';
import { sealClientMetadata } from '../clients/secrets.js';

export interface Demo {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  email: string;
  password: string;
  authorizeUrl: string;
  /** The admin console, where the demo user may sign in (ADMIN_GROUP). */
  consoleUrl: string;
  adminGroup: string;
}

export const DEMO_CLIENT_ID = 'demo-app';
export const DEMO_USER_ID = 'demo-user';
export const DEMO_EMAIL = 'demo@example.com';
export const DEMO_CALLBACK_PATH = '/demo/callback';

const derived = (config: Config, purpose: string, length: number) =>
  createHmac('sha256', config.secrets[0] as string).update(`gatehouse/demo/${purpose}`).digest('base64url').slice(0, length);

export async function ensureDemo(db: Db, config: Config): Promise<Demo> {
  if (config.nodeEnv === 'production') throw new Error('The demo client and user are for development only.');
  const clientSecret = derived(config, 'client-secret', 43);
  const password = derived(config, 'password', 16);
  const redirectUri = `${config.issuer}${DEMO_CALLBACK_PATH}`;

  // Stored hashed; the same secret and SECRETS give the same hash, so restarts change nothing.
  const metadata = {
    client_id: DEMO_CLIENT_ID,
    client_secret: clientSecret,
    client_name: 'Gatehouse demo app',
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [`${config.issuer}/`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email offline_access',
  };
  await createClientStore(db).save(sealClientMetadata(metadata, config.secrets));

  const users = createUserStore(db);
  const user = await users.findById(DEMO_USER_ID);
  if (user) {
    if (!(await passwordMatches(password, user.passwordHash))) {
      await users.update(DEMO_USER_ID, { passwordHash: await hashPassword(password, config.passwords.bcryptCost) });
    }
  } else {
    const profile = { email: DEMO_EMAIL, emailVerified: true, name: 'Demo Person', givenName: 'Demo', familyName: 'Person', preferredUsername: 'demo', picture: null, locale: 'en' };
    await users.create(DEMO_USER_ID, profile, await hashPassword(password, config.passwords.bcryptCost));
  }

  const groups = createGroupStore(db);
  const admins = (await groups.findByName(config.console.adminGroup)) ?? (await groups.create({ name: config.console.adminGroup, description: 'Administrators: may use the admin console' }));
  await groups.addMembers(admins.id, [DEMO_USER_ID]);

  const authorizeUrl = new URL(`${config.issuer}/authorize`);
  authorizeUrl.search = new URLSearchParams({ client_id: DEMO_CLIENT_ID, response_type: 'code', scope: 'openid profile email', redirect_uri: redirectUri, state: 'demo' }).toString();
  return { clientId: DEMO_CLIENT_ID, clientSecret, redirectUri, email: DEMO_EMAIL, password, authorizeUrl: authorizeUrl.href, consoleUrl: `${config.issuer}/console`, adminGroup: config.console.adminGroup };
}
