// Groups through the admin API (/admin/groups, /admin/users/:id/groups, groups on the user), on
// SQLite and PostgreSQL: each route answers with its documented shape and status, errors name
// the field at fault, every change is audited with the admin client as the actor, and the
// OpenAPI document describes the routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createClient } from '../../src/clients/service.js';
import { createLogger } from '../../src/core/logger.js';
import { GroupMemberView, GroupView } from '../../src/groups/schema.js';
import { UserPage, UserView } from '../../src/people/service.js';
import { tokenRequest } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

interface Reply {
  status: number;
  body: Record<string, unknown> & { error?: string; issues?: { path: string; message: string }[] };
}

describe.each(await flavours())('groups in the admin API on %s', (flavour) => {
  let server: TestGatehouse;
  let token: string;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    const audit = createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' }));
    const { client_secret: secret } = await createClient({ db: server.gatehouse.db, secrets: [TEST_SECRET], audit }, { client_id: 'ops-console', grant_types: ['client_credentials'], scope: 'admin' }, { via: 'cli' });
    const { body } = await tokenRequest(server.url, { id: 'ops-console', secret: secret as string }, { grant_type: 'client_credentials', scope: 'admin' });
    token = body.access_token as string;
  });
  afterAll(async () => server?.close());

  async function call(method: string, path: string, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${server.url}/admin${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : {} };
  }
  const newUser = async (email: string, groups?: string[]) => call('POST', '/users', { email, password: 'a long and unusual password', ...(groups && { groups }) });

  it('creates, lists, gets, renames and deletes groups', async () => {
    const created = await call('POST', '/groups', { name: 'admins', description: 'Run Gatehouse' });
    expect(created.status).toBe(201);
    expect(GroupView.parse(created.body)).toMatchObject({ name: 'admins', description: 'Run Gatehouse', member_count: 0 });
    expect((await call('POST', '/groups', { name: 'staff' })).status).toBe(201);
    expect((await call('POST', '/groups', { name: 'to-go' })).status).toBe(201);

    const taken = await call('POST', '/groups', { name: 'admins' });
    expect(taken).toMatchObject({ status: 409, body: { error: 'conflict' } });
    const invalid = await call('POST', '/groups', { name: 'has space', extra: 1 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.issues?.map((issue) => issue.path)).toEqual(['name', 'extra']);

    const list = await call('GET', '/groups');
    expect(list.status).toBe(200);
    expect((list.body.groups as GroupView[]).map((group) => group.name)).toEqual(['admins', 'staff', 'to-go']);
    expect((await call('GET', '/groups/staff')).body).toMatchObject({ name: 'staff', description: null });
    expect((await call('GET', '/groups/nope')).status).toBe(404);
    // A NUL (which PostgreSQL refuses in a query) is no name and no id: 404 and 400, never 500.
    expect((await call('GET', '/groups/a%00b')).status).toBe(404);
    expect((await call('GET', '/users/a%00b/groups')).status).toBe(404);
    expect((await call('POST', '/groups/staff/members/remove', { user_ids: ['a\u0000b'] })).status).toBe(400);

    const renamed = await call('PATCH', '/groups/to-go', { name: 'leaving', description: 'Soon gone' });
    expect(renamed).toMatchObject({ status: 200, body: { name: 'leaving', description: 'Soon gone' } });
    expect((await call('PATCH', '/groups/leaving', { name: 'staff' })).status).toBe(409);
    expect((await call('DELETE', '/groups/leaving')).status).toBe(204);
    expect((await call('DELETE', '/groups/leaving')).status).toBe(404);
  });

  it('adds and removes members, and shows and sets a user\'s groups', async () => {
    const ann = (await newUser('ann@example.com')).body as UserView;
    const ben = (await newUser('ben@example.com')).body as UserView;
    expect(ann.groups).toEqual([]);

    const added = await call('POST', '/groups/admins/members', { user_ids: [ann.id, ben.id] });
    expect(added.status).toBe(200);
    expect((added.body.members as GroupMemberView[]).map((member) => GroupMemberView.parse(member).email).sort()).toEqual(['ann@example.com', 'ben@example.com']);
    const unknown = await call('POST', '/groups/admins/members', { user_ids: ['nobody'] });
    expect(unknown).toMatchObject({ status: 400, body: { issues: [{ path: 'user_ids.0', message: 'there is no user nobody' }] } });
    expect((await call('GET', '/groups/admins')).body).toMatchObject({ member_count: 2 });

    const removed = await call('POST', '/groups/admins/members/remove', { user_ids: [ben.id] });
    expect(removed).toMatchObject({ status: 200, body: { members: [{ id: ann.id, email: 'ann@example.com' }] } });
    expect((await call('GET', '/groups/admins/members')).body).toMatchObject({ members: [{ id: ann.id }] });

    expect((await call('GET', `/users/${ann.id}/groups`)).body).toEqual({ groups: ['admins'] });
    const set = await call('PUT', `/users/${ben.id}/groups`, { groups: ['staff', 'admins'] });
    expect(set).toMatchObject({ status: 200, body: { groups: ['admins', 'staff'] } });
    const notAGroup = await call('PUT', `/users/${ben.id}/groups`, { groups: ['staff', 'ghosts'] });
    expect(notAGroup).toMatchObject({ status: 400, body: { issues: [{ path: 'groups.1', message: 'there is no group ghosts' }] } });
    expect((await call('GET', '/users/nobody/groups')).status).toBe(404);

    // The user view carries the groups, in the list too.
    expect(UserView.parse((await call('GET', `/users/${ben.id}`)).body).groups).toEqual(['admins', 'staff']);
    const page = UserPage.parse((await call('GET', '/users?search=example.com')).body);
    expect(page.users.map((user) => [user.email, user.groups])).toEqual([
      ['ann@example.com', ['admins']],
      ['ben@example.com', ['admins', 'staff']],
    ]);
  });

  it('creates and updates users with groups, refusing a group that does not exist before changing anything', async () => {
    const carl = await newUser('carl@example.com', ['staff']);
    expect(carl).toMatchObject({ status: 201, body: { email: 'carl@example.com', groups: ['staff'] } });
    const refused = await newUser('dora@example.com', ['admins', 'root']);
    expect(refused).toMatchObject({ status: 400, body: { issues: [{ path: 'groups.1', message: 'there is no group root' }] } });
    expect(await server.gatehouse.db.prisma.user.count({ where: { email: 'dora@example.com' } })).toBe(0);

    const carlId = (carl.body as UserView).id;
    const updated = await call('PATCH', `/users/${carlId}`, { name: 'Carl', groups: ['admins'] });
    expect(updated).toMatchObject({ status: 200, body: { name: 'Carl', groups: ['admins'] } });
    const badUpdate = await call('PATCH', `/users/${carlId}`, { name: 'Not Carl', groups: ['root'] });
    expect(badUpdate.status).toBe(400);
    expect((await call('GET', `/users/${carlId}`)).body).toMatchObject({ name: 'Carl', groups: ['admins'] });
    expect((await call('PATCH', `/users/${carlId}`, { groups: [] })).body).toMatchObject({ groups: [] });

    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: carlId }, orderBy: { at: 'asc' } });
    expect(events.map((event) => [event.type, event.clientId ?? (event.details as { by?: string }).by])).toEqual([
      ['user.created', 'ops-console'],
      ['user.groups_changed', 'ops-console'],
      ['user.updated', 'ops-console'],
      ['user.groups_changed', 'ops-console'],
      ['user.groups_changed', 'ops-console'],
    ]);
    expect(events.filter((event) => event.type === 'user.groups_changed').map((event) => event.details)).toEqual([
      { via: 'admin', by: 'ops-console', added: ['staff'], removed: [] },
      { via: 'admin', by: 'ops-console', added: ['admins'], removed: ['staff'] },
      { via: 'admin', by: 'ops-console', added: [], removed: ['admins'] },
    ]);
    expect(events.find((event) => event.type === 'user.updated')?.details).toMatchObject({ fields: ['name'] });
  });

  it('describes the group routes in the OpenAPI document', async () => {
    const document = (await (await fetch(`${server.url}/admin/openapi.json`)).json()) as { paths: Record<string, Record<string, { tags: string[]; requestBody?: unknown }>>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(document.paths['/admin/groups'] ?? {})).toEqual(['get', 'post']);
    expect(Object.keys(document.paths['/admin/groups/{name}'] ?? {})).toEqual(['get', 'patch', 'delete']);
    expect(Object.keys(document.paths['/admin/groups/{name}/members'] ?? {})).toEqual(['get', 'post']);
    expect(Object.keys(document.paths['/admin/groups/{name}/members/remove'] ?? {})).toEqual(['post']);
    expect(Object.keys(document.paths['/admin/users/{userId}/groups'] ?? {})).toEqual(['get', 'put']);
    expect(document.paths['/admin/users/{userId}/groups']?.put?.requestBody).toBeTruthy();
    for (const schema of ['Group', 'GroupList', 'GroupMember', 'GroupMemberList', 'CreateGroup', 'UpdateGroup', 'GroupMembersChange', 'SetUserGroups', 'UserGroupList']) expect(document.components.schemas).toHaveProperty(schema);
  });
});
