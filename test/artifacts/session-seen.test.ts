// Where and when a session was last used, and the saves it costs: the engine saves the session on
// every authorization request, and a save that would only move its expiry and last-seen time is
// skipped while the stored one is under a minute old; anything else is written at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onlyLastSeenMoved, SESSION_RESAVE_AFTER, SESSION_SEEN_KEY, type SessionSeen } from '../../src/artifacts/session-seen.js';
import { Browser, completeSignIn } from '../helpers/browser.js';
import { authorizationUrl } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

describe('onlyLastSeenMoved', () => {
  const seen = (at: number, ip = '192.0.2.1', user_agent = 'agent'): SessionSeen => ({ ip, user_agent, at });
  const stored = { uid: 'u', exp: 1000, accountId: 'a', authorizations: { app: { sid: 's', grantId: 'g' } }, [SESSION_SEEN_KEY]: seen(100) };

  it('is true when only the expiry and the time moved, by less than a minute', () => {
    expect(onlyLastSeenMoved(stored, { ...stored, exp: 1030, [SESSION_SEEN_KEY]: undefined }, seen(100 + SESSION_RESAVE_AFTER - 1))).toBe(true);
    // Key order and undefined members are not changes (PostgreSQL's jsonb reorders keys).
    expect(onlyLastSeenMoved(stored, { authorizations: { app: { grantId: 'g', sid: 's' } }, accountId: 'a', uid: 'u', exp: 1, transient: undefined }, seen(101))).toBe(true);
  });

  it('is false for a minute or more, a clock gone back, another address or browser, any other change, or nothing stored', () => {
    expect(onlyLastSeenMoved(stored, stored, seen(100 + SESSION_RESAVE_AFTER))).toBe(false);
    expect(onlyLastSeenMoved(stored, stored, seen(99))).toBe(false);
    expect(onlyLastSeenMoved(stored, stored, seen(101, '192.0.2.2'))).toBe(false);
    expect(onlyLastSeenMoved(stored, stored, seen(101, '192.0.2.1', 'other agent'))).toBe(false);
    expect(onlyLastSeenMoved(stored, { ...stored, authorizations: { app: { sid: 's', grantId: 'g2' } } }, seen(101))).toBe(false);
    expect(onlyLastSeenMoved(stored, { ...stored, loginTs: 5 }, seen(101))).toBe(false);
    expect(onlyLastSeenMoved(undefined, stored, seen(101))).toBe(false);
    expect(onlyLastSeenMoved({ ...stored, [SESSION_SEEN_KEY]: undefined }, stored, seen(101))).toBe(false);
  });
});

describe.each(await flavours())('session saves on %s', (flavour) => {
  let server: TestGatehouse;
  const browser = () => new Browser(server.url, { 'user-agent': 'agent-one' });
  let alice: Browser;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { clients: [webApp()], people: [ALICE] });
    alice = browser();
    await completeSignIn(alice, await alice.visit(authorizationUrl(server.url, WEB_APP, { scope: 'openid email' }).url.href), ALICE);
  });
  afterAll(async () => server?.close());

  const sessionRow = async () => {
    const rows = await server.gatehouse.db.prisma.oidcArtifact.findMany({ where: { model: 'Session', accountId: server.idOf(ALICE) } });
    expect(rows).toHaveLength(1);
    const [row] = rows;
    return { id: row!.id, expiresAt: row!.expiresAt, payload: row!.payload as Record<string, unknown>, seen: (row!.payload as Record<string, unknown>)[SESSION_SEEN_KEY] as SessionSeen };
  };
  /** An authorization request with the session: answered with a code, no page. */
  const authorizeAgain = async (headers: Record<string, string> = {}) => {
    const response = await alice.request(authorizationUrl(server.url, WEB_APP, { scope: 'openid email', prompt: undefined }).url.href, { headers });
    expect(response.status).toBe(303);
    expect(new URL(response.headers.get('location') ?? '').searchParams.get('code')).toBeTruthy();
  };

  it('skips the save of a session used again within a minute from the same place', async () => {
    const before = await sessionRow();
    expect(before.seen).toMatchObject({ user_agent: 'agent-one' });
    await authorizeAgain();
    expect(await sessionRow()).toEqual(before);
  });

  it('saves it once the stored save is a minute old, moving its expiry and last-seen time', async () => {
    const before = await sessionRow();
    const aged = { ...before.seen, at: before.seen.at - SESSION_RESAVE_AFTER };
    await server.gatehouse.db.prisma.oidcArtifact.update({ where: { model_id: { model: 'Session', id: before.id } }, data: { payload: { ...before.payload, [SESSION_SEEN_KEY]: aged } } });
    await authorizeAgain();
    const after = await sessionRow();
    expect(after.seen.at).toBeGreaterThan(aged.at);
    expect(after.expiresAt!.getTime()).toBeGreaterThanOrEqual(before.expiresAt!.getTime());
  });

  it('saves it at once when used from another browser', async () => {
    await authorizeAgain({ 'user-agent': 'agent-two' });
    expect((await sessionRow()).seen).toMatchObject({ user_agent: 'agent-two' });
  });
});
