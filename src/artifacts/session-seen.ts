// Where a session was last used: oidc/hooks.ts records it in the session's payload under this key
// when the engine saves a session; the account page and the admin API read it
// (people/service.ts). The engine ignores payload keys it does not know.
import { isDeepStrictEqual } from 'node:util';

export const SESSION_SEEN_KEY = 'gatehouse_seen';

export interface SessionSeen {
  ip: string | null;
  user_agent: string | null;
  /** Epoch seconds. */
  at: number;
}

/**
 * How old a stored session may be before a save that changes only its expiry and last-seen time
 * is written anyway: sliding expiry and last-seen are accurate to this, in seconds.
 */
export const SESSION_RESAVE_AFTER = 60;

/**
 * Whether saving `next` over `stored` (the session as this request read it) would change only its
 * expiry and the time it was last seen, and the stored save is under SESSION_RESAVE_AFTER old: the
 * engine saves the session on every authorization request, and such a save can be skipped. The
 * row stays what counts: a session ended elsewhere is not brought back, and anything else that
 * changed (a sign-in, a grant, the address or browser it was used from) is written at once.
 */
export function onlyLastSeenMoved(stored: Record<string, unknown> | undefined, next: Record<string, unknown>, seen: SessionSeen): boolean {
  const before = stored?.[SESSION_SEEN_KEY] as SessionSeen | undefined;
  if (!stored || !before || typeof before.at !== 'number') return false;
  if (seen.at - before.at >= SESSION_RESAVE_AFTER || seen.at < before.at) return false;
  if (before.ip !== seen.ip || before.user_agent !== seen.user_agent) return false;
  const { exp: _storedExp, [SESSION_SEEN_KEY]: _storedSeen, ...storedRest } = stored;
  // As stored (JSON): no undefined members, whatever the engine's object holds.
  const { exp: _nextExp, [SESSION_SEEN_KEY]: _nextSeen, ...nextRest } = JSON.parse(JSON.stringify(next)) as Record<string, unknown>;
  return isDeepStrictEqual(storedRest, nextRest);
}
