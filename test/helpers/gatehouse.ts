// Starts a real Gatehouse on 127.0.0.1 with a throwaway database, for flow tests.
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcrypt';
import type { Config, DatabaseFlavour } from '../../src/config/index.js';
import { loadConfig } from '../../src/config/index.js';
import { createClientStore, type ClientMetadata } from '../../src/clients/store.js';
import type { DbHandle } from '../../src/db/client.js';
import { REQUEST_OBJECTS } from '../../src/http/request-objects.js';
import { createUserStore } from '../../src/people/store.js';
import { createLogger, type Logger } from '../../src/core/logger.js';
import { createGatehouse, type Gatehouse } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { newPerson, type Person } from './fixtures.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** The environment every test instance starts from; `env` adds to it or replaces it. */
export function testEnv(database: { url: string }, env: Record<string, string> = {}): Record<string, string> {
  // Mails sent without SMTP_URL go to a folder of the test's own, not the working tree.
  const mailDir = join(tmpdir(), `gatehouse-test-mail-${process.pid}`);
  return { NODE_ENV: 'test', DATABASE_URL: database.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4', LOG_LEVEL: 'silent', SWEEP_INTERVAL: '0', MAIL_DIR: mailDir, ...env };
}

export interface TestGatehouseOptions {
  /** Settings beyond the test defaults (a test port, this database, TEST_SECRET, BCRYPT_COST=4, silent logs, no sweeping). */
  env?: Record<string, string>;
  /** Another instance on the same database (as behind a load balancer); closing that one closes this one first, then drops the database. */
  shareWith?: TestGatehouse;
  /** To capture what it logs (LOG_LEVEL in `env` then does not apply). */
  logger?: Logger;
  /** Runs its key lifecycle on a controlled clock. */
  now?: () => Date;
  /** Registered before the start resolves. */
  clients?: ClientMetadata[];
  /** Added before the start resolves; idOf() tells their ids. */
  people?: Person[];
  /** ISSUER=http://localhost:<its port> (it still listens on 127.0.0.1): WebAuthn refuses IP-literal origins. */
  localhostIssuer?: boolean;
}

export interface TestGatehouse {
  /** Where this instance listens. */
  readonly url: string;
  /** The issuer it is configured with (its own URL unless ISSUER was given). */
  readonly issuer: string;
  readonly config: Config;
  readonly gatehouse: Gatehouse;
  readonly database: TestDatabase;
  addClient(metadata: ClientMetadata): Promise<void>;
  addUser(user: Person & { emailVerified?: boolean }): Promise<string>;
  /** Adds a newPerson(), for a test that changes one. */
  addPerson(): Promise<Required<Person> & { id: string }>;
  /** The id of a person this instance (or the one it shares a database with) added. */
  idOf(person: { email: string }): string;
  /** Stops it (any instance sharing its database first) and drops its database unless it shares another's. Safe to call twice. */
  close(): Promise<void>;
}

/** The instances started with `shareWith` each instance, to close before it. */
const sharers = new WeakMap<TestGatehouse, Set<TestGatehouse>>();

/** Writes a person to the database as an administrator would create them (email verified unless said otherwise); their id. */
export async function addUserTo(db: DbHandle, { email, password, name, emailVerified = true }: Person & { emailVerified?: boolean }): Promise<string> {
  const id = randomUUID();
  const profile = { email, emailVerified, name: name ?? null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: null };
  await createUserStore(db).create(id, profile, await bcrypt.hash(password, 4));
  return id;
}

/** Starts a Gatehouse on its own port, with the clients and people `options` name already in its database. */
export async function startTestGatehouse(flavour: DatabaseFlavour, options: TestGatehouseOptions = {}): Promise<TestGatehouse> {
  const { shareWith } = options;
  const database = shareWith?.database ?? (await createTestDatabase(flavour));
  // The port is held from the start, its handler set once the Gatehouse exists: a port only probed
  // as free could be taken meanwhile, by one of the database connections the Gatehouse opens.
  let handle: RequestListener = (_request, response) => response.writeHead(503).end();
  const server: Server = await new Promise((resolve) => {
    // With the request objects Gatehouse's own listener makes (src/listen.ts).
    const s = createServer(REQUEST_OBJECTS, (request, response) => handle(request, response)).listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const issuer = options.localhostIssuer ? `http://localhost:${port}` : url;
  let gatehouse: Gatehouse;
  let config: Config;
  try {
    config = loadConfig(testEnv(database.config, { PORT: String(port), HOST: '127.0.0.1', ISSUER: issuer, ...options.env }));
    gatehouse = await createGatehouse(config, options.logger ?? createLogger(config), { now: options.now });
  } catch (error) {
    await new Promise((resolve) => server.close(resolve));
    throw error;
  }
  handle = gatehouse.app.handle;
  const ids = new Map<string, string>();
  let closed: Promise<void> | undefined;
  const instance: TestGatehouse = {
    url,
    issuer: config.issuer,
    config,
    gatehouse,
    database,
    async addClient(metadata) {
      await createClientStore(gatehouse.db).save({ ...metadata });
    },
    async addUser(person) {
      const id = await addUserTo(gatehouse.db, person);
      ids.set(person.email, id);
      return id;
    },
    async addPerson() {
      const person = newPerson();
      return { ...person, id: await instance.addUser(person) };
    },
    idOf({ email }) {
      const id = ids.get(email) ?? shareWith?.idOf({ email });
      if (!id) throw new Error(`${email} was not added to this test Gatehouse`);
      return id;
    },
    close() {
      closed ??= (async () => {
        for (const sharer of [...(sharers.get(instance) ?? [])].reverse()) await sharer.close();
        if (shareWith) sharers.get(shareWith)?.delete(instance);
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await gatehouse.close();
        if (!shareWith) await database.drop();
      })();
      return closed;
    },
  };
  sharers.set(instance, new Set());
  if (shareWith) sharers.get(shareWith)?.add(instance);
  for (const client of options.clients ?? []) await instance.addClient(client);
  for (const person of options.people ?? []) await instance.addUser(person);
  return instance;
}

/** Two instances with the same settings on one new database, as behind a load balancer; closing the first closes both. */
export async function startTwoInstances(flavour: DatabaseFlavour, options: TestGatehouseOptions): Promise<[TestGatehouse, TestGatehouse]> {
  const first = await startTestGatehouse(flavour, options);
  return [first, await startTestGatehouse(flavour, { env: options.env, logger: options.logger, now: options.now, localhostIssuer: options.localhostIssuer, shareWith: first })];
}
