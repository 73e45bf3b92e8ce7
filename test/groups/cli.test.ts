// `gatehouse groups …` and `users create|update --groups`, run as real processes against a
// migrated database on SQLite and PostgreSQL: the first administrator's path (create the group,
// then the person in it), a group that does not exist refused with exit 1 and nothing written,
// members by id or email, and every change in the audit trail with the CLI as the actor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type Outcome } from '../helpers/commands.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';

const SLOW = { timeout: 300_000 };
const PASSWORD = 'a long and unusual password';

const json = <T = unknown>(outcome: Outcome): T => {
  expect(outcome, outcome.stderr).toMatchObject({ code: 0 });
  return JSON.parse(outcome.stdout) as T;
};

describe.each(await flavours())('gatehouse groups on %s', (flavour) => {
  let db: MigratedDb;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await migratedDb(flavour);
    env = { DATABASE_URL: db.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4', AUTO_MIGRATE: 'false' };
  });
  afterAll(async () => db?.drop());

  it('makes the first administrator: the group must exist first, then `users create --groups admins`', SLOW, async () => {
    const early = await runCli(['users', 'create', 'root@example.com', '--password-stdin', '--groups', 'admins'], env, PASSWORD);
    expect(early).toMatchObject({ code: 1, stdout: '' });
    expect(early.stderr).toBe('error: invalid input; nothing was changed:\n  - groups.0: there is no group admins\n');
    expect(await db.prisma.user.count({ where: { email: 'root@example.com' } })).toBe(0);

    const created = await runCli(['groups', 'create', 'admins', '--description', 'Run Gatehouse'], env);
    expect(created, created.stderr).toMatchObject({ code: 0 });
    expect(created.stdout).toMatch(/^admins +0 +Run Gatehouse$/m);
    const root = json<{ id: string; groups: string[] }>(await runCli(['users', 'create', 'root@example.com', '--password-stdin', '--groups', 'admins', '--json'], env, PASSWORD));
    expect(root.groups).toEqual(['admins']);
    expect((await runCli(['users', 'get', 'root@example.com'], env)).stdout).toMatch(/root@example\.com .* admins /);
    expect(json<Array<{ email: string }>>(await runCli(['groups', 'members', 'admins', '--json'], env)).map((m) => m.email)).toEqual(['root@example.com']);
  });

  it('lists, gets, updates and deletes groups, refusing what is invalid or taken', SLOW, async () => {
    expect((await runCli(['groups', 'create', 'staff'], env)).code).toBe(0);
    const [bad, taken, nothing, both] = await Promise.all([
      runCli(['groups', 'create', 'two words'], env),
      runCli(['groups', 'create', 'staff'], env),
      runCli(['groups', 'update', 'staff'], env),
      runCli(['groups', 'update', 'staff', '--description', 'x', '--clear-description'], env),
    ]);
    expect(bad).toMatchObject({ code: 1 });
    expect(bad.stderr).toContain('name: must be 1 to 64 characters');
    expect(taken).toMatchObject({ code: 1, stderr: 'error: a group named staff already exists\n' });
    expect(nothing).toMatchObject({ code: 2, stderr: expect.stringContaining('name at least one change') as string });
    expect(both).toMatchObject({ code: 2, stderr: expect.stringContaining('not both') as string });

    expect(json(await runCli(['groups', 'update', 'staff', '--name', 'employees', '--description', 'Everyone', '--json'], env))).toMatchObject({ name: 'employees', description: 'Everyone' });
    expect(json(await runCli(['groups', 'update', 'employees', '--clear-description', '--json'], env))).toMatchObject({ description: null });
    const list = await runCli(['groups', 'list'], env);
    expect(list.stdout).toMatch(/^NAME +MEMBERS +DESCRIPTION\nadmins +1 +Run Gatehouse\nemployees +0 +-\n$/);
    expect(list.stderr).toContain('2 groups.');
    expect(json<{ name: string }[]>(await runCli(['groups', 'list', '--json'], env)).map((g) => g.name)).toEqual(['admins', 'employees']);
    expect(await runCli(['groups', 'get', 'nope'], env)).toMatchObject({ code: 1, stderr: 'error: there is no group nope\n' });
  });

  it('adds and removes members by id or email, and sets a person\'s groups with `users update --groups`', SLOW, async () => {
    const eve = json<{ id: string }>(await runCli(['users', 'create', 'eve@example.com', '--password-stdin', '--json'], env, PASSWORD));
    const added = json<Array<{ id: string; email: string }>>(await runCli(['groups', 'add-members', 'employees', eve.id, 'root@example.com', '--json'], env));
    expect(added.map((member) => member.email).sort()).toEqual(['eve@example.com', 'root@example.com']);
    const unknown = await runCli(['groups', 'add-members', 'employees', 'nobody@example.com'], env);
    expect(unknown).toMatchObject({ code: 1, stderr: 'error: there is no user with email nobody@example.com\n' });
    const removed = await runCli(['groups', 'remove-members', 'employees', 'root@example.com'], env);
    expect(removed.stdout).toMatch(/eve@example\.com/);
    expect(removed.stdout).not.toMatch(/root@example\.com/);

    expect(json(await runCli(['users', 'update', 'eve@example.com', '--groups', 'admins,employees', '--json'], env))).toMatchObject({ groups: ['admins', 'employees'] });
    expect(json(await runCli(['users', 'update', 'eve@example.com', '--groups', '', '--json'], env))).toMatchObject({ groups: [] });
    expect((await runCli(['groups', 'delete', 'employees'], env)).stdout).toBe('deleted group employees\n');

    const events = json<Array<{ type: string; details: Record<string, unknown> }>>(await runCli(['audit', 'list', '--account', eve.id, '--json'], env));
    expect(events.map((event) => event.type)).toEqual(['user.groups_changed', 'user.groups_changed', 'group.members_added', 'user.created']);
    expect(events[0]?.details).toEqual({ via: 'cli', added: [], removed: ['admins', 'employees'] });
    const groupEvents = json<Array<{ details: Record<string, unknown> }>>(await runCli(['audit', 'list', '--type', 'group.deleted', '--json'], env));
    expect(groupEvents[0]?.details).toEqual({ via: 'cli', group: 'employees', members_removed: 0 });
  });
});
