// The console's audit trail over real HTTP: newest first, filtered by person (email or id),
// client, event type and time range (UTC), fifty to a page with links to the next and previous
// pages; a filter the service refuses comes back with its error beside the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditStore } from '../../../src/audit/store.js';
import { addAdmin, signInToConsole, type ConsoleAdmin, type ConsoleAgent } from '../../helpers/console.js';
import { CONSOLE_TEST_ENV } from '../../helpers/console-forms.js';
import { flavours } from '../../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';

const rows = (html: string) => [...html.matchAll(/<tr>\s*<td>/g)].length;

describe.each(await flavours())('the console’s audit trail on %s', (flavour) => {
  let server: TestGatehouse;
  let admin: ConsoleAdmin;
  let agent: ConsoleAgent;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env: CONSOLE_TEST_ENV });
    admin = await addAdmin(server);
    agent = await signInToConsole(server, admin);
    // 60 events of one client, a minute apart, in November 2026.
    const start = Date.parse('2026-11-01T00:00:00Z');
    await createAuditStore(server.gatehouse.db).recordMany(Array.from({ length: 60 }, (_, i) => ({ event: { type: 'token.issued' as const, clientId: 'paged-app', details: { n: i } }, at: new Date(start + i * 60_000) })));
  });
  afterAll(async () => server?.close());

  it('shows the newest events first, the administrator’s own sign-in among them', async () => {
    const page = await agent.browser.visit('/console/audit');
    expect(page.status).toBe(200);
    expect(page.html).toContain('console.signed_in');
    expect(page.html.indexOf('console.signed_in')).toBeLessThan(page.html.indexOf('token.issued</a>'));
  });

  it('filters by the person’s email or id, by client and by type', async () => {
    const byEmail = await agent.browser.visit(`/console/audit?person=${encodeURIComponent(admin.email.toUpperCase())}`);
    expect(byEmail.html).toContain('console.signed_in');
    expect(byEmail.html).not.toContain('paged-app');
    expect(byEmail.html).toContain(`value="${admin.email.toUpperCase()}"`);
    const byId = await agent.browser.visit(`/console/audit?person=${admin.id}&type=console.signed_in`);
    expect(rows(byId.html)).toBe(1);
    expect(byId.html).toContain('<option value="console.signed_in" selected>');
    const byClient = await agent.browser.visit('/console/audit?client=paged-app&type=sign_in.success');
    expect(byClient.html).toContain('No event matches.');
  });

  it('filters by a time range given in UTC, minutes or whole days', async () => {
    const minutes = await agent.browser.visit('/console/audit?client=paged-app&since=2026-11-01T00:10&until=2026-11-01T00:19');
    expect(rows(minutes.html)).toBe(10);
    expect(minutes.html).toContain('n: 19');
    expect(minutes.html).not.toContain('n: 20<');
    const days = await agent.browser.visit('/console/audit?client=paged-app&since=2026-11-02&until=2026-11-03');
    expect(days.html).toContain('No event matches.');
  });

  it('pages fifty at a time, newest first, keeping the filter in the links', async () => {
    const first = await agent.browser.visit('/console/audit?client=paged-app');
    expect(rows(first.html)).toBe(50);
    expect(first.html).toContain('n: 59<');
    expect(first.html).not.toContain('n: 9<');
    expect(first.html).toContain('href="/console/audit?client=paged-app&amp;page=2" rel="next"');
    expect(first.html).not.toContain('rel="prev"');
    const second = await agent.browser.visit('/console/audit?client=paged-app&page=2');
    expect(rows(second.html)).toBe(10);
    expect(second.html).toContain('n: 0<');
    expect(second.html).toContain('rel="prev"');
    expect(second.html).not.toContain('rel="next"');
  });

  it('shows a filter the service refuses with its error beside the field', async () => {
    const bad = await agent.browser.visit('/console/audit?since=yesterday&type=no.such');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('id="f-since-error">must be an ISO 8601 date-time');
    expect(bad.html).toContain('id="f-type-error"');
    expect(bad.html).toContain('value="yesterday"');
  });

  it('speaks Korean', async () => {
    const korean = await signInToConsole(server, await addAdmin(server), { path: '/console/audit', headers: { 'accept-language': 'ko' } });
    expect(korean.page.html).toContain('이벤트, 최신순');
  });
});
