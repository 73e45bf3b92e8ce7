// Rows read together, for one engine request. Right after the engine finds an access token, a
// refresh token or an authorization code, it looks up the session the token is bound to (by the
// uid in its payload) and the grant it belongs to. The adapter (adapter.ts) reads all three in
// one statement (artifacts/store.ts, findWithBindings) and keeps the session and the grant here
// until the engine asks for them in the same request.
//
// This is one read, not a cache: each row is handed out once (a second lookup reads the database
// again), nothing outlives the request (a WeakMap keyed by the engine's request context), and any
// write through the adapter in the request drops what was kept. The request sees the session and
// the grant as they were when it read its token, a few statements earlier than it would have
// otherwise; a revocation committed after that read is seen by the next request, as before.
import Provider from 'oidc-provider';
import type { ArtifactRow } from '../artifacts/store.js';

/** The engine's request being served (the engine keeps it in AsyncLocalStorage), if any. */
export type RequestScope = () => object | undefined;

export const engineRequest: RequestScope = () => Provider.ctx ?? undefined;

/** The key a session read with a token is kept under. */
export const sessionKey = (uid: string) => `Session uid ${uid}`;
/** The key a grant read with a token is kept under. */
export const grantKey = (id: string) => `Grant ${id}`;

export interface RequestReads {
  /** Keeps rows read with a token (null: read, and there was none) for the rest of the request `scope`. */
  keep(scope: object, rows: ReadonlyArray<readonly [key: string, row: ArtifactRow | null]>): void;
  /** The row kept for `key` in the current request, handed out once; undefined when none is kept. */
  take(key: string): ArtifactRow | null | undefined;
  /** Drops what the current request kept (a write may have changed it). */
  drop(): void;
}

export function createRequestReads(scope: RequestScope): RequestReads {
  const kept = new WeakMap<object, Map<string, ArtifactRow | null>>();
  return {
    keep(request, rows) {
      let map = kept.get(request);
      if (!map) kept.set(request, (map = new Map()));
      for (const [key, row] of rows) map.set(key, row);
    },
    take(key) {
      const request = scope();
      const map = request && kept.get(request);
      if (!map?.has(key)) return undefined;
      const row = map.get(key) as ArtifactRow | null;
      map.delete(key);
      return row;
    },
    drop() {
      const request = scope();
      if (request) kept.delete(request);
    },
  };
}
