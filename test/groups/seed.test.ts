// Groups in the seed file, on SQLite and PostgreSQL: the top-level list declares groups (a
// description left out is cleared), a user's `groups` makes their memberships exactly those,
// re-running changes nothing, a name that is no group is refused naming the entry and nothing
// is written, and `gatehouse seed` records the changes in the audit trail.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { ValidationError } from '../../src/core/errors.js';
import { createGroupStore } from '../../src/groups/store.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile, type SeedFile } from '../../src/seed/schema.js';
import { runCli } from '../helpers/commands.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';

const ANN = { email: 'ann@example.com', password: 'ann has a long enough password' };
const BEN = { email: 'ben@example.com', password: 'ben has a long enough password' };

function parsed(file: unknown): SeedFile {
  const result = parseSeedFile(file);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.data;
}

describe('groups in parseSeedFile', () => {
  it('names every problem with a group or a user\'s groups', () => {
    const result = parseSeedFile({
      groups: [{ name: 'admins' }, { name: 'admins', description: '' }, { name: 'no spaces' }, { description: 'nameless' }],
      users: [{ ...ANN, groups: ['admins', 'admins'] }, { ...BEN, groups: 'admins' }],
    });
    expect(result.ok ? [] : result.problems).toEqual([
      'groups[1].description: must not be empty',
      'groups[1].name: duplicates groups[0].name',
      'groups[2].name: must be 1 to 64 characters: letters, digits and . _ : @ -, starting with a letter or digit',
      'groups[3].name: is required',
      'users[0].groups: must not repeat a group',
      'users[1].groups: must be an array of group names',
    ]);
  });
});

describe.each(await flavours())('groups in the seed file on %s', (flavour) => {
  let db: MigratedDb;
  let dir: string;
  const seed = (file: unknown) => applySeed(db, parsed(file), { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]) });
  const groupsOf = async (email: string) => createGroupStore(db).namesOf((await db.prisma.user.findUniqueOrThrow({ where: { email } })).id);

  beforeAll(async () => {
    db = await migratedDb(flavour);
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-seed-groups-'));
  });
  afterAll(async () => {
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const FILE = {
    groups: [{ name: 'admins', description: 'Run Gatehouse' }, { name: 'staff' }],
    users: [{ ...ANN, groups: ['staff', 'admins'] }, BEN],
  };

  it('creates the groups and memberships, and changes nothing when run again', async () => {
    const first = await seed(FILE);
    expect(first.groups).toEqual({ created: ['admins', 'staff'], updated: [], unchanged: [] });
    expect(first.users.created).toEqual([ANN.email, BEN.email]);
    expect(first.memberships).toEqual([{ userId: expect.any(String), email: ANN.email, added: ['admins', 'staff'], removed: [] }]);
    expect(await groupsOf(ANN.email)).toEqual(['admins', 'staff']);
    expect(await groupsOf(BEN.email)).toEqual([]);

    const again = await seed(FILE);
    expect(again.groups).toEqual({ created: [], updated: [], unchanged: ['admins', 'staff'] });
    expect(again.users).toEqual({ created: [], updated: [], unchanged: [ANN.email, BEN.email] });
    expect(again.memberships).toEqual([]);
  });

  it('declares descriptions whole, sets a listed user\'s groups exactly, and leaves other memberships alone', async () => {
    await createGroupStore(db).addMembers((await createGroupStore(db).findByName('staff'))!.id, [(await db.prisma.user.findUniqueOrThrow({ where: { email: BEN.email } })).id]);
    const report = await seed({ groups: [{ name: 'admins' }, { name: 'staff', description: 'Everyone' }], users: [{ ...ANN, groups: ['staff'] }, BEN] });
    expect(report.groups).toEqual({ created: [], updated: ['admins', 'staff'], unchanged: [] });
    expect(await createGroupStore(db).findByName('admins')).toMatchObject({ description: null });
    expect(report.users).toEqual({ created: [], updated: [ANN.email], unchanged: [BEN.email] });
    expect(await groupsOf(ANN.email)).toEqual(['staff']);
    // Ben's entry lists no groups: the membership an administrator gave him stays.
    expect(await groupsOf(BEN.email)).toEqual(['staff']);
    // A group that exists already may be named without being declared.
    await seed({ users: [{ ...ANN, groups: ['admins', 'staff'] }] });
    expect(await groupsOf(ANN.email)).toEqual(['admins', 'staff']);
  });

  it('refuses a user\'s group that exists nowhere, writing nothing', async () => {
    const error = await seed({ groups: [{ name: 'new-group' }], users: [{ ...ANN, groups: ['new-group', 'ghosts'] }, { email: 'cat@example.com', password: 'cat has a long enough password' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([{ path: 'users[0].groups[1]', message: 'there is no group ghosts (declare it in "groups" or create it first)' }]);
    expect(await createGroupStore(db).findByName('new-group')).toBeNull();
    expect(await db.prisma.user.count({ where: { email: 'cat@example.com' } })).toBe(0);
    expect(await groupsOf(ANN.email)).toEqual(['admins', 'staff']);
  });

  it('`gatehouse seed` reports the groups, names a missing group as the file\'s problem, and audits the changes', { timeout: 120_000 }, async () => {
    const env = { DATABASE_URL: db.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4' };
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ users: [{ ...BEN, groups: ['ghosts'] }] }));
    expect(await runCli(['seed', bad], env)).toMatchObject({ code: 1, stdout: '', stderr: `Seed file ${bad} has 1 problem; nothing was written:\n  - users[0].groups[0]: there is no group ghosts (declare it in "groups" or create it first)\n` });

    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ groups: [{ name: 'ops', description: 'On call' }], users: [{ ...BEN, groups: ['ops'] }] }));
    const outcome = await runCli(['seed', good], env);
    expect(outcome, outcome.stderr).toMatchObject({ code: 0 });
    expect(outcome.stdout).toContain('groups: 1 created (ops), 0 updated, 0 unchanged');
    expect(outcome.stdout).toContain(`users: 0 created, 1 updated (${BEN.email}), 0 unchanged`);
    const ben = await db.prisma.user.findUniqueOrThrow({ where: { email: BEN.email } });
    const events = await db.prisma.auditEvent.findMany({ where: { type: { in: ['group.created', 'user.groups_changed'] } }, orderBy: { at: 'asc' } });
    expect(events.map((event) => [event.type, event.accountId, event.details])).toEqual([
      ['group.created', null, { source: 'seed', group: 'ops' }],
      ['user.groups_changed', ben.id, { source: 'seed', added: ['ops'], removed: ['staff'] }],
    ]);
  });
});
