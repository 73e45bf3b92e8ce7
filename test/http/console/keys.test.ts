// The console's signing keys section over real HTTP: every key with its state and dates, the
// rotation schedule as the settings make it, and rotation now (all algorithms or one, after the
// activation delay or at once), audited with the administrator as the actor.
import { describe, expect, it } from 'vitest';
import { consoleForTests, followRedirect, postPairs } from '../../helpers/console-forms.js';
import { flavours } from '../../helpers/databases.js';

const ENV = { KEY_ROTATION_INTERVAL: '90d', KEY_ACTIVATION_DELAY: '1h' };

describe.each(await flavours())('the console’s signing keys on %s', (flavour) => {
  const ctx = consoleForTests(flavour, ENV);

  const keys = () => ctx.server.gatehouse.db.prisma.signingKey.findMany({ orderBy: { generation: 'asc' } });

  it('lists the keys with their states and the schedule the settings make', async () => {
    const page = await ctx.agent.browser.visit('/console/keys');
    expect(page.status).toBe(200);
    for (const key of await keys()) expect(page.html).toContain(`<code>${key.id}</code>`);
    expect(page.html).toContain('Signing</td>');
    expect(page.html).toContain('90 d</dd>');
    expect(page.html).toContain('1 h</dd>');
    // Due 90 days after the newest key was made.
    const newest = (await keys()).find((key) => key.alg === 'RS256') as { createdAt: Date };
    const due = new Date(newest.createdAt.getTime() + 90 * 86_400_000);
    expect(page.html).toContain(new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23', timeZone: 'UTC' }).format(due));
  });

  it('rotates one algorithm after the activation delay: the new key is published, not yet signing', async () => {
    const before = await keys();
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/keys/rotate', [['alg', 'ES256']]));
    expect(page.location).toBe('/console/keys?done=keys_rotated');
    expect(page.html).toContain('New signing keys were made');
    const created = (await keys()).filter((key) => !before.some((old) => old.id === key.id));
    expect(created.map((key) => key.alg)).toEqual(['ES256']);
    expect((created[0]?.activatesAt as Date).getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(page.html).toContain('Published (verifies only)');
    const [event] = await ctx.server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'key.created' }, orderBy: { at: 'desc' }, take: 1 });
    expect(event?.details).toMatchObject({ kid: created[0]?.id, reason: 'rotation', via: 'console' });
  });

  it('rotates every algorithm at once when asked (a suspected compromise)', async () => {
    const before = await keys();
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/keys/rotate', [['alg', ''], ['immediate', 'on']]));
    expect(page.location).toBe('/console/keys?done=keys_rotated_immediately');
    const created = (await keys()).filter((key) => !before.some((old) => old.id === key.id));
    expect(created.map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const key of created) expect((key.activatesAt ?? key.createdAt).getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('shows the page again for an unknown algorithm, and makes no key', async () => {
    const count = (await keys()).length;
    const refused = await postPairs(ctx.agent, '/console/keys/rotate', [['alg', 'HS256']]);
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('id="f-alg-error">must be one of RS256, ES256');
    expect(html).toContain('Every key');
    expect((await keys()).length).toBe(count);
  });

  it('refuses a rotation without the form token', async () => {
    const count = (await keys()).length;
    expect((await postPairs(ctx.agent, '/console/keys/rotate', [['immediate', 'on']], { token: false })).status).toBe(403);
    expect((await keys()).length).toBe(count);
  });
});
