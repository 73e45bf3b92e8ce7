// The services a running Gatehouse wires together (src/server.ts, createServices), built here on
// a throwaway migrated database and called directly, without HTTP: the engine, the audit log,
// the password verifier with its sign-in limits, MFA, the interaction steps and the account
// service. For tests that prove a service's logic by calling it.
//
// The interaction steps and the account service read the engine's cookies from a request, as
// the engine does; engineExchange() makes such a request in memory, its cookies signed with
// the engine's keys, and the response a step writes its redirect to.
import { randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type Provider from 'oidc-provider';
import type { AuditEventType } from '../../src/audit/store.js';
import { createClientStore, type ClientMetadata } from '../../src/clients/store.js';
import { loadConfig, type Config, type DatabaseFlavour } from '../../src/config/index.js';
import { createLogger } from '../../src/core/logger.js';
import type { Interaction } from '../../src/oidc/interaction-state.js';
import { createEngine, createServices } from '../../src/server.js';
import { migratedDb, type MigratedDb } from './databases.js';
import { newPerson } from './fixtures.js';
import { addUserTo, testEnv } from './gatehouse.js';

/** The issuer the engine is configured with; nothing listens there. */
export const SERVICES_ISSUER = 'http://gatehouse.test';

export type Services = Awaited<ReturnType<typeof startServices>>;

/**
 * Every service createGatehouse builds, on a new database of `flavour`, with the test settings
 * and `env` (no increasing delay after failed sign-ins unless `env` sets one). `close` settles
 * the engine's audit writes and drops the database.
 */
export async function startServices(flavour: DatabaseFlavour, env: Record<string, string> = {}) {
  const db: MigratedDb = await migratedDb(flavour);
  const config: Config = loadConfig(testEnv(db, { ISSUER: SERVICES_ISSUER, SIGN_IN_DELAY_STEP_MS: '0', ...env }));
  const { provider, audit, hooks, outbox } = await createEngine(config, db, createLogger(config));
  const { mfa, passwords, passkeys, steps, account } = createServices({ config, db, provider, audit, outbox });
  return {
    config,
    db,
    provider,
    audit,
    mfa,
    passwords,
    passkeys,
    steps,
    account,
    /** Registers a client as an administrator would. */
    addClient: (metadata: ClientMetadata) => createClientStore(db).save(metadata),
    /** Adds a newPerson() as an administrator would, for a test that changes one. */
    async addPerson() {
      const person = newPerson();
      return { ...person, id: await addUserTo(db, person) };
    },
    /** The audit events of one account (or of none, with null), oldest first. */
    events: (accountId: string | null, type: AuditEventType) => db.prisma.auditEvent.findMany({ where: { accountId, type }, orderBy: { at: 'asc' } }),
    async close() {
      await hooks.settle();
      await db.drop();
    },
  };
}

/**
 * A request as a browser sends it to Gatehouse, in memory, carrying `cookies` (name → value)
 * signed with the engine's keys as the engine signs its own; and the response a step answers on.
 */
export function engineExchange(provider: Provider, cookies: Record<string, string> = {}) {
  const minted = bareExchange();
  const jar = provider.createContext(minted.req, minted.res).cookies;
  for (const [name, value] of Object.entries(cookies)) jar.set(name, value, { httpOnly: true });
  const setCookie = (minted.res.getHeader('set-cookie') as string[] | undefined) ?? [];
  return bareExchange(setCookie.map((line) => line.split(';')[0]).join('; '));
}

function bareExchange(cookie?: string) {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  req.url = '/';
  req.headers = { host: new URL(SERVICES_ISSUER).host, ...(cookie ? { cookie } : {}) };
  return { req, res: new ServerResponse(req) };
}

export interface InteractionSetUp {
  clientId: string;
  /** The prompt the engine stopped at: login (the default) or consent, with its reasons and details. */
  prompt?: { name: 'login' | 'consent'; reasons?: string[]; details?: Record<string, unknown> };
  /** The signed-in account a consent prompt is for. */
  accountId?: string;
  /** The grant the account already gave the client. */
  grantId?: string;
  /** Authorization parameters beyond client_id, scope and response_type (a login_hint, say). */
  params?: Record<string, string>;
}

/**
 * An interaction as the engine starts one at /authorize, saved in its storage: `exchange()` is a
 * request of the browser that holds its cookie, `stored()` the interaction as it is now.
 */
export async function openInteraction(provider: Provider, { clientId, prompt = { name: 'login' }, accountId, grantId, params = {} }: InteractionSetUp) {
  const uid = randomUUID();
  // The engine's own authorization action builds it this way; its type declarations leave the constructor out.
  const Interaction = provider.Interaction as unknown as new (uid: string, payload: Record<string, unknown>) => { save(ttl: number): Promise<string> };
  const interaction = new Interaction(uid, {
    returnTo: `${SERVICES_ISSUER}/auth/${uid}`,
    prompt: { reasons: [], details: {}, ...prompt },
    params: { client_id: clientId, scope: 'openid email', response_type: 'code', ...params },
    cid: randomUUID(),
    ...(accountId ? { session: { accountId } } : {}),
    ...(grantId ? { grantId } : {}),
  });
  await interaction.save(600);
  return {
    uid,
    returnTo: `${SERVICES_ISSUER}/auth/${uid}`,
    exchange: () => engineExchange(provider, { [provider.cookieName('interaction')]: uid }),
    stored: () => provider.Interaction.find(uid),
  };
}

export type OpenInteraction = Awaited<ReturnType<typeof openInteraction>>;

/** One request to `interaction` as its route handles it: the interaction loaded from the request, then `step`. */
export async function runStep<T>(services: Pick<Services, 'steps'>, interaction: OpenInteraction, step: (req: IncomingMessage, res: ServerResponse, loaded: Interaction) => Promise<T>) {
  const { req, res } = interaction.exchange();
  const outcome = await step(req, res, await services.steps.load(req, res));
  return { outcome, res };
}
