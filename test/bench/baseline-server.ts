// The benchmark's baseline: the same oidc-provider engine, configured by the same
// createProvider() from the same environment, keys and database rows as Gatehouse, but storing
// its artifacts and clients in the engine's own in-memory adapter. It is mounted bare on
// node:http: no Express, request log, metrics, security headers, audit trail or brute-force
// limits, which are Gatehouse's own costs and part of what the benchmark compares.
//
// Clients: Gatehouse's clients live behind its adapter (the engine looks them up on every use),
// so here they are read from the same Client rows, revealed exactly as Gatehouse's adapter
// reveals them (hashed secrets as placeholders, verified by the same compareClientSecret), and
// served by an in-memory Client adapter that the engine also asks on every use. They are not
// given as static `clients`, which the engine would build once and keep, skipping the
// per-request lookup Gatehouse has to make.
//
// Sign-in is the minimal handler both baselines share (sign-in-pages.ts), comparing against
// the same user rows.
import { createServer } from 'node:http';
import type { Adapter, AdapterPayload, Configuration } from 'oidc-provider';
// The engine's default adapter (an LRU of 1000 entries); the package has no exports map.
// @ts-expect-error no type declarations for the engine's internal module
import MemoryAdapterModule from 'oidc-provider/lib/adapters/memory_adapter.js';
import { loadConfig } from '../../src/config/index.js';
import { createDb } from '../../src/db/client.js';
import { createUserStore } from '../../src/people/store.js';
import { createPageRenderer } from '../../src/http/pages.js';
import { createLogger } from '../../src/core/logger.js';
import { compareClientSecretAtRest, hideSecretPlaceholders } from '../../src/clients/hooks.js';
import { revealClientMetadata } from '../../src/clients/secrets.js';
import { deliverBackchannelLogoutsThroughOutbox } from '../../src/oidc/backchannel-logout.js';
import { createOutbox } from '../../src/mail/outbox.js';
import { enforceDevicePollingInterval, recoverDeviceFormWithoutSession } from '../../src/oidc/device-flow.js';
import { renderFormPostPages } from '../../src/oidc/form-post.js';
import { runEngineHooks } from '../../src/oidc/hook-runner.js';
import { correctTokenEndpointErrors } from '../../src/oidc/token-errors.js';
import { loadSigningKeys } from '../../src/keys/signing-keys.js';
import { createProvider } from '../../src/oidc/provider.js';
import { loadPairwiseSalt } from '../../src/oidc/subjects.js';
import { engineWithSignInPages } from './sign-in-pages.js';

const MemoryAdapter = MemoryAdapterModule as new (model: string) => Adapter;

// Clients are kept in a Map beside it: the engine's adapter is an LRU of 1000 entries, which a
// few thousand tokens would evict them from (a real deployment's client store never forgets).
const clientStore = new Map<string, AdapterPayload>();
const clientAdapter: Adapter = {
  upsert: async (id, payload) => void clientStore.set(id, payload),
  find: async (id) => clientStore.get(id),
  destroy: async (id) => void clientStore.delete(id),
  findByUid: async () => undefined,
  findByUserCode: async () => undefined,
  consume: async () => {},
  revokeByGrantId: async () => {},
};
const storage: NonNullable<Configuration['adapter']> = (model: string) => (model === 'Client' ? clientAdapter : new MemoryAdapter(model));

const config = loadConfig();
const logger = createLogger(config);
const db = await createDb(config.database);
const keys = await loadSigningKeys(db, config.secrets);
const pairwiseSalt = await loadPairwiseSalt(db, config.secrets);
const renderPage = createPageRenderer();
const provider = createProvider({ config, db, keys, pairwiseSalt, renderPage, adapter: storage });
// The engine hooks that make its protocol answers Gatehouse's (oidc/hooks.ts), without the ones
// that are Gatehouse's own costs (audit trail, brute-force limits, metrics): hashed secrets are
// checked the same way, and answers are corrected and rendered the same way.
provider.Client.prototype.compareClientSecret = compareClientSecretAtRest({ secrets: config.secrets, db, logger });
if (config.features.backchannelLogout) {
  const outbox = createOutbox({ config, db, logger });
  deliverBackchannelLogoutsThroughOutbox(provider, { outbox, db, logger, options: config.backchannelLogout });
  outbox.start();
}
const deviceFlowHooks = config.features.deviceFlow ? [enforceDevicePollingInterval(), recoverDeviceFormWithoutSession(renderPage)] : [];
provider.use(runEngineHooks([hideSecretPlaceholders, correctTokenEndpointErrors(provider), renderFormPostPages(renderPage), ...deviceFlowHooks]));

for (const row of await db.prisma.client.findMany()) {
  const { metadata } = revealClientMetadata({ ...(row.metadata as object), client_id: row.id }, config.secrets);
  clientStore.set(row.id, metadata);
}

const users = createUserStore(db);
const server = createServer(
  engineWithSignInPages(provider, (email) => users.findByEmail(email), (error) => logger.error({ err: error }, 'baseline interaction failed')),
);
server.listen(config.server.port, config.server.host);

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void db.close().then(() => process.exit(0));
});
