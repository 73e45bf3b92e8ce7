// Rows read together, for one engine request. Right after the engine finds an access token, a
// refresh token or an authorization code, it looks up the session the token is bound to (by the
// uid in its payload) and the grant it belongs to, and on /userinfo and /token the token's
// account (findAccount). The adapter (adapter.ts) reads all four in one statement
// (artifacts/store.ts, findWithBindings) and keeps the session, the grant and the person here
// until the engine asks for them in the same request (the person through findAccount,
// people/accounts.ts, wired in provider.ts). Likewise the newest grant an authorization request
// looks up to remember consent (loadExistingGrant in provider.ts) is read with its row, kept here
// for the engine's Grant.find right after; and the session a browser's cookie names is read with
// its person and its grant for the client in the request's query (findSessionWithBindings), which
// the authorization endpoint asks for right after the session (findAccount, loadExistingGrant).
//
// An authorization resumed after a sign-in finds its interaction, and then the account its result
// names and that account's newest grant for the client: the interaction is read with both
// (findInteractionWithBindings), the newest grant kept under the account and the client.
//
// This is one read, not a cache: each row is handed out once (a second lookup reads the database
// again), nothing outlives the request (a WeakMap keyed by the engine's request context), and a
// write through the adapter in the request drops what was kept of the model it writes (a session
// written drops the sessions kept, a grant the grants); the adapter never writes a person, so the
// person stays (the engine deletes the interaction it resumes before it looks up the account, and
// redeems a code before it looks up the code's account: actions/grants/authorization_code.js).
// Consuming a token changes that token alone, which is never kept; a replayed one ends its grant,
// across models, and drops every artifact kept.
// The request sees the session, the grant and the person as they were when it read its token, a
// few statements earlier than it would have otherwise: a revocation, a person disabled, deleted
// or changed after that read is seen by the next request, as before.
import Provider from 'oidc-provider';
import type { ArtifactRow, LatestGrant } from '../artifacts/store.js';
import type { User } from '../people/store.js';

/** The engine's request being served (the engine keeps it in AsyncLocalStorage), if any. */
export type RequestScope = () => object | undefined;

export const engineRequest: RequestScope = () => Provider.ctx ?? undefined;

/** Where a row read with a token is kept; `T`, what is kept there (never set: it only types the key). */
export type ReadKey<T> = string & { readonly kept?: T };

const PERSON = 'Person ';
/** The key a session read with a token is kept under. */
export const sessionKey = (uid: string) => `Session uid ${uid}` as ReadKey<ArtifactRow>;
/** The key a grant read with a token is kept under. */
export const grantKey = (id: string) => `Grant ${id}` as ReadKey<ArtifactRow>;
/** The key the newest grant an account gave a client is kept under (a grant's key: a written grant drops it). */
export const latestGrantKey = (accountId: string, clientId: string) => `Grant newest ${JSON.stringify([accountId, clientId])}` as ReadKey<LatestGrant>;
/** The key the token's person is kept under. */
export const personKey = (accountId: string) => `${PERSON}${accountId}` as ReadKey<User>;

/** A row read with a token, under its key (null: read, and there was none). */
export type KeptRead =
  | readonly [key: ReadKey<ArtifactRow>, row: ArtifactRow | null]
  | readonly [key: ReadKey<LatestGrant>, row: LatestGrant | null]
  | readonly [key: ReadKey<User>, row: User | null];

export interface RequestReads {
  /** The engine request being served, if any: rows are kept only within one. */
  current(): object | undefined;
  /** Keeps rows read with a token for the rest of the request `scope`. */
  keep(scope: object, rows: readonly KeptRead[]): void;
  /** The row kept for `key` in the current request, handed out once; undefined when none is kept. */
  take<T>(key: ReadKey<T>): T | null | undefined;
  /**
   * Drops what the current request kept of `model` (written through the adapter: it may have
   * changed); without a model, every artifact it kept (a write across models). Never the person:
   * the adapter does not write people.
   */
  dropWritten(model?: string): void;
}

export function createRequestReads(scope: RequestScope): RequestReads {
  const kept = new WeakMap<object, Map<string, unknown>>();
  const keptNow = () => {
    const request = scope();
    return request && kept.get(request);
  };
  return {
    current: scope,
    keep(request, rows) {
      let map = kept.get(request);
      if (!map) kept.set(request, (map = new Map()));
      for (const [key, row] of rows) map.set(key, row);
    },
    take<T>(key: ReadKey<T>) {
      const map = keptNow();
      if (!map?.has(key)) return undefined;
      const row = map.get(key) as T | null;
      map.delete(key);
      return row;
    },
    dropWritten(model) {
      const map = keptNow();
      // Every key starts with its model's name (the person's with one the engine has no model of).
      const written = (key: string) => (model === undefined ? !key.startsWith(PERSON) : key.startsWith(`${model} `));
      for (const key of map?.keys() ?? []) if (written(key)) map?.delete(key);
    },
  };
}
