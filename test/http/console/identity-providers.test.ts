// The console's upstream identity providers over real HTTP: the list with the redirect URI to
// register upstream, adding one (its secret stored encrypted, never shown again), editing one
// (an empty secret keeps the stored one), turning one off and on, deleting one after a
// confirmation page; refusals come back as the form with the input kept (never the secret).
import { describe, expect, it } from 'vitest';
import { consoleForTests, followRedirect, postPairs, textOf } from '../../helpers/console-forms.js';
import { flavours } from '../../helpers/databases.js';

const SECRET = 'upstream-secret-4f9a2c7e1b';

describe.each(await flavours())('the console’s identity providers on %s', (flavour) => {
  const ctx = consoleForTests(flavour);

  const stored = (id: string) => ctx.server.gatehouse.db.prisma.identityProvider.findUnique({ where: { id } });
  const oidc = (id: string, extra: [string, string][] = []): [string, string][] => [
    ['id', id],
    ['display_name', 'Company SSO'],
    ['enabled', 'on'],
    ['kind', 'oidc'],
    ['issuer', 'https://sso.example.com'],
    ['client_id', 'gatehouse'],
    ['client_secret', SECRET],
    ['email_domains', 'example.com\nexample.org'],
    ['create_accounts', 'on'],
    ...extra,
  ];

  it('adds a provider, shows the redirect URI to register, and never shows its secret', async () => {
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/new', oidc('sso')));
    expect(page.location).toBe('/console/identity-providers/sso/edit?done=idp_created');
    expect(textOf(page.html, 'redirect-uri')).toBe(`${ctx.server.issuer}/federation/sso/callback`);
    expect(page.html).not.toContain(SECRET);
    expect(page.html).toContain('Leave empty to keep the stored secret');
    const row = await stored('sso');
    expect(row).toMatchObject({ displayName: 'Company SSO', kind: 'oidc', enabled: true });
    expect(row?.settings).toMatchObject({ issuer: 'https://sso.example.com', email_domains: ['example.com', 'example.org'], create_accounts: true, link_by_verified_email: false });
    expect(row?.clientSecretEncrypted).not.toContain(SECRET);
    const list = await ctx.agent.browser.visit('/console/identity-providers');
    expect(list.html).toContain(`<code>${ctx.server.issuer}/federation/sso/callback</code>`);
    expect(list.html).not.toContain(SECRET);
    const [event] = await ctx.server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'idp.created' } });
    expect(event?.details).toMatchObject({ idp: 'sso', via: 'console' });
  });

  it('shows the form again with each field’s error and the input kept (never the secret), adding nothing', async () => {
    const refused = await postPairs(ctx.agent, '/console/identity-providers/new', [['id', 'Bad Id'], ['display_name', 'Kept'], ['kind', 'oidc'], ['client_id', 'x'], ['client_secret', SECRET]]);
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('id="f-id-error"');
    expect(html).toContain('id="f-issuer-error">is required for kind oidc');
    expect(html).toContain('value="Kept"');
    expect(html).not.toContain(SECRET);
    expect(await ctx.server.gatehouse.db.prisma.identityProvider.count({ where: { displayName: 'Kept' } })).toBe(0);
  });

  it('edits a provider; an empty secret keeps the stored one, a new one replaces it', async () => {
    await postPairs(ctx.agent, '/console/identity-providers/new', oidc('edit-me'));
    const before = await stored('edit-me');
    const form = (secret: string): [string, string][] => [['display_name', 'GitHub'], ['enabled', 'on'], ['kind', 'oauth2'], ['preset', 'github'], ['client_id', 'gh-app'], ['client_secret', secret], ['link_by_verified_email', 'on']];
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/edit-me/edit', form('')));
    expect(page.location).toBe('/console/identity-providers/edit-me/edit?done=idp_updated');
    const kept = await stored('edit-me');
    expect(kept).toMatchObject({ displayName: 'GitHub', kind: 'oauth2' });
    expect(kept?.settings).toMatchObject({ preset: 'github', client_id: 'gh-app', link_by_verified_email: true, create_accounts: false });
    expect((kept?.settings as Record<string, unknown>).email_domains).toBeUndefined();
    expect(kept?.clientSecretEncrypted).toBe(before?.clientSecretEncrypted);
    await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/edit-me/edit', form('a-new-secret')));
    expect((await stored('edit-me'))?.clientSecretEncrypted).not.toBe(before?.clientSecretEncrypted);
  });

  it('keeps the provider as it was when an edit is refused', async () => {
    await postPairs(ctx.agent, '/console/identity-providers/new', oidc('stays'));
    const before = await stored('stays');
    const refused = await postPairs(ctx.agent, '/console/identity-providers/stays/edit', [['display_name', ''], ['kind', 'oidc'], ['issuer', 'https://sso.example.com'], ['client_id', 'gatehouse']]);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('id="f-display_name-error"');
    expect(await stored('stays')).toEqual(before);
  });

  it('turns a provider off and on from the list', async () => {
    await postPairs(ctx.agent, '/console/identity-providers/new', oidc('switch'));
    const off = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/switch/disable', []));
    expect(off.location).toBe('/console/identity-providers?done=idp_disabled');
    expect((await stored('switch'))?.enabled).toBe(false);
    expect(off.html).toContain('action="/console/identity-providers/switch/enable"');
    await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/switch/enable', []));
    expect((await stored('switch'))?.enabled).toBe(true);
  });

  it('deletes a provider only from its confirmation page', async () => {
    await postPairs(ctx.agent, '/console/identity-providers/new', oidc('doomed'));
    const confirm = await ctx.agent.browser.visit('/console/identity-providers/doomed/delete');
    expect(confirm.html).toContain('Delete the identity provider “Company SSO”?');
    expect(await stored('doomed')).not.toBeNull();
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/identity-providers/doomed/delete', []));
    expect(page.location).toBe('/console/identity-providers?done=idp_deleted');
    expect(await stored('doomed')).toBeNull();
    expect((await ctx.agent.browser.visit('/console/identity-providers/doomed/edit')).status).toBe(404);
  });

  it('refuses every change without the console’s form token, and changes nothing', async () => {
    await postPairs(ctx.agent, '/console/identity-providers/new', oidc('guarded'));
    const before = await stored('guarded');
    for (const path of ['/console/identity-providers/new', '/console/identity-providers/guarded/edit', '/console/identity-providers/guarded/disable', '/console/identity-providers/guarded/delete']) {
      expect((await postPairs(ctx.agent, path, oidc('sneaky'), { token: false })).status, path).toBe(403);
    }
    expect(await stored('sneaky')).toBeNull();
    expect(await stored('guarded')).toEqual(before);
  });
});
