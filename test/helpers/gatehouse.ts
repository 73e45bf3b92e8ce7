// Starts a real Gatehouse on 127.0.0.1 with a throwaway database, for flow tests.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import bcrypt from 'bcrypt';
import type { Config, DatabaseFlavour } from '../../src/config/index.js';
import { loadConfig } from '../../src/config/index.js';
import { createClientStore, type ClientMetadata } from '../../src/clients/store.js';
import { createUserStore } from '../../src/people/store.js';
import { createLogger, type Logger } from '../../src/core/logger.js';
import { createGatehouse, type Gatehouse } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { freePort } from './ports.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export interface TestGatehouse {
  /** Where this instance listens. */
  readonly url: string;
  /** The issuer it is configured with (its own URL unless ISSUER was given). */
  readonly issuer: string;
  readonly config: Config;
  readonly gatehouse: Gatehouse;
  readonly database: TestDatabase;
  addClient(metadata: Partial<ClientMetadata> & { client_id: string }): Promise<void>;
  addUser(user: { email: string; password: string; name?: string; emailVerified?: boolean }): Promise<string>;
  close(): Promise<void>;
}


/**
 * Starts a Gatehouse on its own port. Pass `shareWith` to start a second instance on the same
 * database (as behind a load balancer); the database is then dropped by the first one only.
 * Pass `logger` to capture what it logs (LOG_LEVEL in `env` then does not apply), and
 * `options.now` to run its key lifecycle on a controlled clock.
 */
export async function startTestGatehouse(
  flavour: DatabaseFlavour,
  env: Record<string, string> = {},
  shareWith?: TestGatehouse,
  logger?: Logger,
  options: { now?: () => Date } = {},
): Promise<TestGatehouse> {
  const database = shareWith?.database ?? (await createTestDatabase(flavour));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: url,
    DATABASE_URL: database.config.url,
    SECRETS: TEST_SECRET,
    BCRYPT_COST: '4',
    LOG_LEVEL: 'silent',
    SWEEP_INTERVAL: '0',
    ...env,
  });
  const gatehouse = await createGatehouse(config, logger ?? createLogger(config), options);
  const server: Server = await new Promise((resolve) => {
    const s = gatehouse.app.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    url,
    issuer: config.issuer,
    config,
    gatehouse,
    database,
    async addClient(metadata) {
      await createClientStore(gatehouse.db).save({ ...metadata } as ClientMetadata);
    },
    async addUser({ email, password, name, emailVerified = true }) {
      const id = randomUUID();
      const profile = { email, emailVerified, name: name ?? null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: null };
      await createUserStore(gatehouse.db).create(id, profile, await bcrypt.hash(password, 4));
      return id;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await gatehouse.close();
      if (!shareWith) await database.drop();
    },
  };
}
