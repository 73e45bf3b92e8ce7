// The console's groups pages over HTTP: list and create, rename and describe, members added by
// email and removed, and deleting after a confirmation page (no JavaScript needed). Every change
// is audited with the administrator as the actor; refused input shows the form again with the
// field's error and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findForm } from '../../helpers/browser.js';
import { addAdmin, signInToConsole, type ConsoleAdmin, type ConsoleAgent } from '../../helpers/console.js';
import { flavours } from '../../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';
import { createGroupStore } from '../../../src/groups/store.js';

describe.each(await flavours())('the console’s groups pages on %s', (flavour) => {
  let server: TestGatehouse;
  let admin: ConsoleAdmin;
  let agent: ConsoleAgent;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    admin = await addAdmin(server);
    agent = await signInToConsole(server, admin);
  });
  afterAll(async () => server?.close());

  const groups = () => createGroupStore(server.gatehouse.db);
  const lastEvent = (type: string) => server.gatehouse.db.prisma.auditEvent.findFirst({ where: { type }, orderBy: { at: 'desc' } });
  const byAdmin = () => ({ via: 'console', by: admin.email, admin_id: admin.id });

  it('lists the groups, the admin group marked, and creates one; a bad or taken name is refused', async () => {
    const list = await agent.browser.visit('/console/groups');
    expect(list.html).toContain('href="/console/groups/admins"');
    expect(list.html).toContain('console access');
    const created = await agent.post('/console/groups', { name: 'engineering', description: 'Builds things' });
    expect(created.status).toBe(303);
    expect(created.headers.get('location')).toBe('/console/groups/engineering?done=group_created');
    expect(await groups().findByName('engineering')).toMatchObject({ description: 'Builds things' });
    expect((await lastEvent('group.created'))?.details).toMatchObject({ ...byAdmin(), group: 'engineering' });

    const bad = await agent.post('/console/groups', { name: 'has space', description: 'x' });
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toMatch(/id="field-name"[^>]*aria-invalid="true"/);
    expect(html).toContain('value="has space"');
    expect(await groups().findByName('has space')).toBeNull();
    expect((await agent.post('/console/groups', { name: 'engineering' })).status).toBe(409);
  });

  it('renames and redescribes a group; a taken name changes nothing', async () => {
    await agent.post('/console/groups', { name: 'sales' });
    await agent.post('/console/groups', { name: 'taken' });
    const saved = await agent.post('/console/groups/sales', { name: 'sales-emea', description: 'Europe' });
    expect(saved.headers.get('location')).toBe('/console/groups/sales-emea?done=group_saved');
    expect(await groups().findByName('sales-emea')).toMatchObject({ description: 'Europe' });
    const refused = await agent.post('/console/groups/sales-emea', { name: 'taken', description: 'Other' });
    expect(refused.status).toBe(409);
    expect(await groups().findByName('sales-emea')).toMatchObject({ description: 'Europe' });
    expect((await agent.browser.visit('/console/groups/nope')).status).toBe(404);
  });

  it('adds a member by email and removes them; an unknown email is the field’s error', async () => {
    await agent.post('/console/groups', { name: 'support' });
    const person = await server.addPerson();
    const added = await agent.post('/console/groups/support/members', { email: person.email.toUpperCase() });
    expect(added.status).toBe(303);
    const group = await groups().findByName('support');
    expect(await groups().memberIds(group!.id)).toEqual([person.id]);
    expect((await lastEvent('group.members_added'))?.details).toMatchObject(byAdmin());
    const page = await agent.browser.visit('/console/groups/support');
    expect(page.html).toContain(person.email);

    const unknown = await agent.post('/console/groups/support/members', { email: 'nobody@example.com' });
    expect(unknown.status).toBe(400);
    const html = await unknown.text();
    expect(html).toMatch(/id="member-email"[^>]*aria-invalid="true"/);
    expect(html).toContain('nobody@example.com');

    const removed = await agent.post('/console/groups/support/members/remove', { user_id: person.id });
    expect(removed.status).toBe(303);
    expect(await groups().memberIds(group!.id)).toEqual([]);
    expect((await lastEvent('group.members_removed'))?.details).toMatchObject(byAdmin());
  });

  it('deletes a group only from its confirmation page', async () => {
    await agent.post('/console/groups', { name: 'temporary' });
    const confirm = await agent.browser.visit('/console/groups/temporary/delete');
    expect(confirm.html).toContain('Delete the group temporary?');
    const form = findForm(confirm.html, '/console/groups/temporary/delete');
    expect(form.fields.csrf_token).toBeTruthy();
    // The group's page links to the confirmation; it has no delete form of its own.
    expect((await agent.browser.visit('/console/groups/temporary')).html).not.toMatch(/<form[^>]*action="\/console\/groups\/temporary\/delete"/);
    const deleted = await agent.browser.request(form.action, { form: form.fields });
    expect(deleted.headers.get('location')).toBe('/console/groups?done=group_deleted');
    expect(await groups().findByName('temporary')).toBeNull();
    expect((await lastEvent('group.deleted'))?.details).toMatchObject({ ...byAdmin(), group: 'temporary' });
    expect((await agent.browser.visit('/console/groups/admins/delete')).html).toContain('gives access to the admin console');
  });
});
