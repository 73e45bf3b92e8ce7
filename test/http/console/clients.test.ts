// The console's clients section over real HTTP, as an administrator uses it: the list, a new
// client whose secret is shown once (on the answer to the creation, never again, never cached),
// edits, a new secret, deleting after a confirmation page; the service's refusals come back as
// the form with the input kept and nothing changed; every POST needs the console's form token.
import { describe, expect, it } from 'vitest';
import { addAdmin, signInToConsole } from '../../helpers/console.js';
import { consoleForTests, followRedirect, postPairs, textOf } from '../../helpers/console-forms.js';
import { flavours } from '../../helpers/databases.js';


describe.each(await flavours())('the console’s clients on %s', (flavour) => {
  const ctx = consoleForTests(flavour);

  const stored = (id: string) => ctx.server.gatehouse.db.prisma.client.findUnique({ where: { id } });
  const auditOf = (clientId: string, type: string) => ctx.server.gatehouse.db.prisma.auditEvent.findMany({ where: { clientId, type } });
  const basicWeb = (id: string): [string, string][] => [
    ['client_id', id],
    ['client_name', 'Wiki'],
    ['redirect_uris', 'https://wiki.example.com/cb\nhttps://wiki.example.com/cb2'],
    ['scope', 'openid profile'],
    ['grant_types', 'authorization_code'],
    ['grant_types', 'refresh_token'],
    ['response_types', 'code'],
    ['logo_uri', 'https://wiki.example.com/logo.png'],
  ];

  it('registers a client and shows its secret once, on the answer only, never cached', async () => {
    const created = await postPairs(ctx.agent, '/console/clients/new', basicWeb('wiki'));
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const html = await created.text();
    const secret = textOf(html, 'client-secret') as string;
    expect(secret).toMatch(/^[\w-]{43}$/);
    expect(html).toContain('shown only on this page');
    const row = await stored('wiki');
    expect(row?.metadata).toMatchObject({ client_name: 'Wiki', redirect_uris: ['https://wiki.example.com/cb', 'https://wiki.example.com/cb2'], grant_types: ['authorization_code', 'refresh_token'], logo_uri: 'https://wiki.example.com/logo.png' });
    expect(JSON.stringify(row?.metadata)).not.toContain(secret);
    const [event] = await auditOf('wiki', 'client.created');
    expect(event?.details).toMatchObject({ via: 'console' });

    // Never again: not on the list, not on its page.
    const list = await ctx.agent.browser.visit('/console/clients');
    expect(list.html).toContain('href="/console/clients/wiki/edit"');
    expect(list.html).toContain('gatehouse-console');
    const edit = await ctx.agent.browser.visit('/console/clients/wiki/edit');
    expect(edit.html).not.toContain(secret);
    expect(edit.html).toContain('Set (stored hashed');
    expect(edit.html).toContain('https://wiki.example.com/cb\nhttps://wiki.example.com/cb2');
  });

  it('shows the form again with each field’s error and the input kept, and registers nothing', async () => {
    const count = await ctx.server.gatehouse.db.prisma.client.count();
    const refused = await postPairs(ctx.agent, '/console/clients/new', [['client_id', 'bad client'], ['client_name', 'Kept name'], ['redirect_uris', 'not a url'], ['grant_types', 'authorization_code']]);
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('role="alert"');
    expect(html).toMatch(/id="f-client_id-error">must be 1–128 characters/);
    expect(html).toContain('id="f-redirect_uris-error"');
    expect(html).toContain('value="Kept name"');
    expect(html).toContain('>not a url</textarea>');
    expect(await ctx.server.gatehouse.db.prisma.client.count()).toBe(count);

    // The form comes with a random client ID filled in, so sending it twice cannot make two clients.
    const form = await ctx.agent.browser.visit('/console/clients/new');
    expect(form.html).toMatch(/id="f-client_id" name="client_id" type="text" value="[0-9a-f-]{36}"/);
    const taken = await postPairs(ctx.agent, '/console/clients/new', basicWeb('wiki'));
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain('already exists');
  });

  it('refuses a built-in client id, and has no page to edit or delete the built-in clients', async () => {
    const reserved = await postPairs(ctx.agent, '/console/clients/new', basicWeb('gatehouse-account'));
    expect(reserved.status).toBe(409);
    expect((await ctx.agent.browser.visit('/console/clients/gatehouse-console/edit')).status).toBe(404);
    expect((await postPairs(ctx.agent, '/console/clients/gatehouse-console/delete', [])).status).toBe(404);
  });

  it('edits the redirect URIs, scopes, grants and branding; an emptied field is removed', async () => {
    await postPairs(ctx.agent, '/console/clients/new', basicWeb('edit-me'));
    const saved = await postPairs(ctx.agent, '/console/clients/edit-me/edit', [
      ['client_name', 'Wiki 2'],
      ['redirect_uris', 'https://wiki2.example.com/cb'],
      ['post_logout_redirect_uris', 'https://wiki2.example.com/bye'],
      ['scope', 'openid email'],
      ['grant_types', 'authorization_code'],
      ['response_types', 'code'],
      ['token_endpoint_auth_method', 'client_secret_post'],
      ['tos_uri', 'https://wiki2.example.com/tos'],
      ['gatehouse_require_mfa', 'on'],
    ]);
    const page = await followRedirect(ctx.agent, saved);
    expect(page.location).toBe('/console/clients/edit-me/edit?done=client_updated');
    expect(page.html).toContain('The client was saved.');
    const metadata = (await stored('edit-me'))?.metadata as Record<string, unknown>;
    expect(metadata).toMatchObject({ client_name: 'Wiki 2', redirect_uris: ['https://wiki2.example.com/cb'], post_logout_redirect_uris: ['https://wiki2.example.com/bye'], scope: 'openid email', grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_post', tos_uri: 'https://wiki2.example.com/tos', gatehouse_require_mfa: true });
    expect(metadata.logo_uri).toBeUndefined();
    expect(metadata.client_secret_hash).toBeTypeOf('string');
  });

  it('keeps the client as it was when an edit is refused', async () => {
    await postPairs(ctx.agent, '/console/clients/new', basicWeb('stays'));
    const before = await stored('stays');
    const refused = await postPairs(ctx.agent, '/console/clients/stays/edit', [['client_name', 'Changed'], ['redirect_uris', ''], ['grant_types', 'authorization_code']]);
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('id="f-redirect_uris-error"');
    expect(html).toContain('value="Changed"');
    expect((await stored('stays'))?.metadata).toEqual(before?.metadata);
  });

  it('makes a new secret, shown once; the old one is replaced', async () => {
    const created = await postPairs(ctx.agent, '/console/clients/new', basicWeb('rotating'));
    const first = textOf(await created.text(), 'client-secret');
    const rotated = await postPairs(ctx.agent, '/console/clients/rotating/rotate-secret', []);
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    const second = textOf(await rotated.text(), 'client-secret');
    expect(second).toMatch(/^[\w-]{43}$/);
    expect(second).not.toBe(first);
    expect(await auditOf('rotating', 'client.secret_rotated')).toHaveLength(1);
    expect((await ctx.agent.browser.visit('/console/clients/rotating/edit')).html).not.toContain(second);
  });

  it('registers a public client without a secret, and offers no rotation for it', async () => {
    const created = await postPairs(ctx.agent, '/console/clients/new', [['client_id', 'spa'], ['redirect_uris', 'https://spa.example.com/cb'], ['token_endpoint_auth_method', 'none']]);
    const page = await followRedirect(ctx.agent, created);
    expect(page.location).toBe('/console/clients/spa/edit?done=client_created');
    expect(page.html).not.toContain('/rotate-secret');
    expect((await postPairs(ctx.agent, '/console/clients/spa/rotate-secret', [])).status).toBe(409);

    // Made confidential: the service generates its first secret, shown once like any other.
    const confidential = await postPairs(ctx.agent, '/console/clients/spa/edit', [['redirect_uris', 'https://spa.example.com/cb'], ['token_endpoint_auth_method', 'client_secret_basic']]);
    expect(confidential.status).toBe(200);
    const html = await confidential.text();
    expect(html).toContain('needs a new secret');
    expect(textOf(html, 'client-secret')).toMatch(/^[\w-]{43}$/);
    expect(((await stored('spa'))?.metadata as Record<string, unknown>).client_secret_hash).toBeTypeOf('string');
  });

  it('deletes a client only from its confirmation page', async () => {
    await postPairs(ctx.agent, '/console/clients/new', basicWeb('doomed'));
    const confirm = await ctx.agent.browser.visit('/console/clients/doomed/delete');
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Delete the client “Wiki”?');
    expect(confirm.html).toContain('action="/console/clients/doomed/delete"');
    expect(await stored('doomed')).not.toBeNull();
    const page = await followRedirect(ctx.agent, await postPairs(ctx.agent, '/console/clients/doomed/delete', []));
    expect(page.location).toBe('/console/clients?done=client_deleted');
    expect(await stored('doomed')).toBeNull();
    expect((await ctx.agent.browser.visit('/console/clients/doomed/edit')).status).toBe(404);
  });

  it('refuses every change without the console’s form token, and changes nothing', async () => {
    await postPairs(ctx.agent, '/console/clients/new', basicWeb('guarded'));
    const before = await stored('guarded');
    for (const path of ['/console/clients/new', '/console/clients/guarded/edit', '/console/clients/guarded/rotate-secret', '/console/clients/guarded/delete']) {
      const refused = await postPairs(ctx.agent, path, [['client_id', 'sneaky'], ['client_name', 'Sneaky'], ['redirect_uris', 'https://x.example.com/cb']], { token: false });
      expect(refused.status, path).toBe(403);
    }
    expect(await stored('sneaky')).toBeNull();
    expect((await stored('guarded'))?.metadata).toEqual(before?.metadata);
  });

  it('speaks Korean', async () => {
    const korean = await signInToConsole(ctx.server, await addAdmin(ctx.server), { path: '/console/clients/new', headers: { 'accept-language': 'ko' } });
    expect(korean.page.html).toContain('<html lang="ko">');
    expect(korean.page.html).toContain('클라이언트 등록');
  });
});
