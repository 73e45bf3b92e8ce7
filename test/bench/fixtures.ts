// What every benchmarked server holds: the same clients, people and resources, written through
// the real seed path (applySeed, secrets sealed as in production), so Gatehouse and the baseline
// start from identical data.
import type { DbConfig } from '../../src/db/client.js';
import { createDb } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';

export const BENCH_SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
export const REDIRECT_URI = 'http://127.0.0.1:1/cb';
export const WEB_CLIENT = { id: 'bench-web', secret: 'bench-web-secret-0123456789-0123456789-0123', redirectUri: REDIRECT_URI, postLogoutRedirectUri: REDIRECT_URI };
export const MACHINE_CLIENT = { id: 'bench-machine', secret: 'bench-machine-secret-0123456789-0123456789' };
export const JWT_API = 'https://jwt-api.bench.example';
export const OPAQUE_API = 'https://opaque-api.bench.example';
export const PASSWORD = 'bench password that is long enough';

/** One person per connection: sign-ins of one account are counted (src/people/sign-in-limits.ts), not parallel-safe for a benchmark. */
export const userEmail = (index: number) => `bench-user-${index}@example.com`;

export async function seedBenchData(database: DbConfig, { users, bcryptCost }: { users: number; bcryptCost: number }): Promise<void> {
  await migrate(database);
  const parsed = parseSeedFile({
    clients: [
      {
        client_id: WEB_CLIENT.id,
        client_secret: WEB_CLIENT.secret,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid email offline_access',
      },
      { client_id: MACHINE_CLIENT.id, client_secret: MACHINE_CLIENT.secret, grant_types: ['client_credentials'], response_types: [] },
    ],
    resources: [
      { identifier: JWT_API, scopes: ['read'], access_token_format: 'jwt', access_token_ttl: 600 },
      { identifier: OPAQUE_API, scopes: ['read'], access_token_format: 'opaque', access_token_ttl: 600 },
    ],
    users: Array.from({ length: users }, (_, i) => ({ email: userEmail(i), password: PASSWORD, email_verified: true })),
  });
  if (!parsed.ok) throw new Error(`bench seed refused: ${parsed.problems.join('; ')}`);
  const db = await createDb(database);
  try {
    await applySeed(db, parsed.data, { bcryptCost, clientSecrets: clientSecretSealing([BENCH_SECRET]) });
  } finally {
    await db.close();
  }
}
