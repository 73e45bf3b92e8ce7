// Where a session was last used: the adapter records it in the session's payload under this key
// when the engine saves a session (adapter.ts); the account page and the admin API read it
// (manage-users.ts). The engine ignores payload keys it does not know.
export const SESSION_SEEN_KEY = 'gatehouse_seen';

export interface SessionSeen {
  ip: string | null;
  user_agent: string | null;
  /** Epoch seconds. */
  at: number;
}
