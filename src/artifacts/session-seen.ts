// Where a session was last used: oidc/hooks.ts records it in the session's payload under this key
// when the engine saves a session; the account page and the admin API read it
// (people/service.ts). The engine ignores payload keys it does not know.
export const SESSION_SEEN_KEY = 'gatehouse_seen';

export interface SessionSeen {
  ip: string | null;
  user_agent: string | null;
  /** Epoch seconds. */
  at: number;
}
