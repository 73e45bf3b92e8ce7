// The `gatehouse` command line, run as a real process (src/cli.ts compiled, as it ships; see
// test/helpers/compiled.ts) against throwaway databases: help for every command,
// usage errors with exit code 2, failures with exit code 1, and what each command does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/program.js';
import { basicAuth, postForm } from '../helpers/code-flow.js';
import { runCli, type Outcome } from '../helpers/commands.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { freePort } from '../helpers/ports.js';
import { spawnServer } from '../helpers/server-process.js';
import { startSmtpServer } from '../helpers/smtp.js';

/** For tests that spawn several processes: on a busy machine each can take seconds. */
const SLOW = { timeout: 300_000 };

const json = <T = unknown>(outcome: Outcome): T => {
  expect(outcome, outcome.stderr).toMatchObject({ code: 0 });
  return JSON.parse(outcome.stdout) as T;
};

/** Every command of the tree, with its full name (e.g. "clients rotate-secret"). */
function commandsOf(command: Command, prefix = ''): Array<{ name: string; command: Command }> {
  return command.commands.flatMap((sub) => {
    const name = `${prefix}${sub.name()}`;
    return [{ name, command: sub }, ...commandsOf(sub, `${name} `)];
  });
}

describe('gatehouse help', () => {
  const program = createProgram();
  const all = commandsOf(program);

  it('has the commands operators need', () => {
    const names = all.map((entry) => entry.name);
    for (const name of [
      'serve',
      'migrate',
      'seed',
      'clients list',
      'clients get',
      'clients create',
      'clients update',
      'clients delete',
      'clients rotate-secret',
      'users list',
      'users create',
      'users update',
      'users reset-mfa',
      'users passkeys',
      'users remove-passkey',
      'users set-password',
      'users disable',
      'users enable',
      'users lockout',
      'users unlock',
      'users lockouts',
      'users unlock-address',
      'groups list',
      'groups get',
      'groups create',
      'groups update',
      'groups delete',
      'groups members',
      'groups add-members',
      'groups remove-members',
      'keys list',
      'keys rotate',
      'initial-access-token create',
      'audit list',
      'config check',
      'mail test',
      'mail list',
    ]) {
      expect(names).toContain(name);
    }
  });

  it.each(all.map((entry) => [entry.name, entry.command] as const))('`%s --help` describes the command and lists each of its options and arguments', (_name, command) => {
    const help = command.helpInformation();
    expect(help).toContain(`Usage: gatehouse ${_name}`);
    expect(command.description().length).toBeGreaterThan(10);
    for (const option of command.options) {
      expect(help).toContain(option.flags);
      expect(option.description.length, `${option.flags} has no description`).toBeGreaterThan(5);
    }
    for (const argument of command.registeredArguments) expect(help).toContain(argument.name());
    for (const sub of command.commands) expect(help).toContain(sub.name());
  });

  it('prints help with exit code 0, and refuses usage errors with exit code 2 and a clear message, without any configuration', SLOW, async () => {
    const [help, auditHelp, nothing, unknown, badOption, missingArgument, badValue, badChoice, noSubcommand] = await Promise.all([
      runCli(['--help']),
      runCli(['audit', 'list', '--help']),
      runCli([]),
      runCli(['migrat']),
      runCli(['migrate', '--force']),
      runCli(['seed']),
      runCli(['audit', 'list', '--limit', '0']),
      runCli(['audit', 'list', '--type', 'sign_in.maybe']),
      runCli(['audit']),
    ]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: gatehouse \[options\] \[command\]/);
    expect(help.stdout).toContain('Exit codes: 0 done, 1 the operation failed or was refused');
    expect(auditHelp).toMatchObject({ code: 0 });
    for (const option of ['--since <time>', '--until <time>', '--account <id>', '--client <id>', '--type <type>', '--limit <n>', '--json']) expect(auditHelp.stdout).toContain(option);

    for (const outcome of [nothing, unknown, badOption, missingArgument, badValue, badChoice, noSubcommand]) {
      expect(outcome.code, outcome.stderr).toBe(2);
      expect(outcome.stdout).toBe('');
    }
    expect(nothing.stderr).toContain('Usage: gatehouse');
    expect(unknown.stderr).toContain("unknown command 'migrat'");
    expect(unknown.stderr).toContain('(Did you mean migrate?)');
    expect(badOption.stderr).toContain("unknown option '--force'");
    expect(badOption.stderr).toContain('(add --help for usage)');
    expect(missingArgument.stderr).toContain("missing required argument 'file'");
    expect(badValue.stderr).toContain("option '--limit <n>' argument '0' is invalid. Expected a whole number from 1 to 1000.");
    expect(badChoice.stderr).toContain('Allowed choices are sign_in.success');
    expect(noSubcommand.stderr).toContain('Usage: gatehouse audit');
  });

  it('reports invalid configuration with the variable named, and exit code 1', SLOW, async () => {
    const outcome = await runCli(['migrate'], { DATABASE_URL: 'mysql://nope', SECRETS: TEST_SECRET });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('Invalid configuration:\n  - DATABASE_URL: must start with file: (SQLite) or postgresql://');
  });
});

describe('gatehouse config check', () => {
  it('prints the configuration in effect with its sources, secrets and database password masked', SLOW, async () => {
    const env = { DATABASE_URL: 'postgresql://gatehouse:hunter2-db-password@db.example:5432/gatehouse', SECRETS: `${TEST_SECRET},older-secret-0123456789-abcdefghijklmnop`, PORT: '4123' };
    const [text, asJson] = await Promise.all([runCli(['config', 'check'], env), runCli(['config', 'check', '--json'], env)]);
    expect(text, text.stderr).toMatchObject({ code: 0 });
    expect(text.stderr).toContain('The configuration is valid.');
    expect(text.stdout).toMatch(/^PORT +4123 +\[env/m);
    expect(text.stdout).toMatch(/^HOST +127\.0\.0\.1 +\[default/m);
    const settings = json<Array<{ name: string; value: string; source: string; masked: boolean }>>(asJson);
    expect(settings.find((s) => s.name === 'SECRETS')).toMatchObject({ value: '******** (2 secrets)', source: 'env', masked: true });
    expect(settings.find((s) => s.name === 'DATABASE_URL')).toMatchObject({ value: 'postgresql://gatehouse:********@db.example:5432/gatehouse', masked: true });
    for (const output of [text.stdout, asJson.stdout]) {
      expect(output).not.toContain(TEST_SECRET);
      expect(output).not.toContain('older-secret');
      expect(output).not.toContain('hunter2');
    }
  });

  it('warns about old configuration file keys, naming the new ones, and still accepts them', SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-config-'));
    try {
      const file = join(dir, 'gatehouse.yaml');
      writeFileSync(file, 'lifetimes: { accessToken: 15m }\nserver: { port: 4124 }\n');
      const outcome = await runCli(['config', 'check'], { CONFIG_FILE: file, SECRETS: TEST_SECRET });
      expect(outcome, outcome.stderr).toMatchObject({ code: 0 });
      expect(outcome.stderr).toContain(`warning: ${file}: lifetimes.accessToken is now ttl.accessToken`);
      expect(outcome.stderr).toContain('The configuration is valid.');
      expect(outcome.stdout).toMatch(/^ACCESS_TOKEN_TTL +15m +\[file; file key ttl\.accessToken\]$/m);
      expect(outcome.stdout).toMatch(/^PORT +4124 +\[file; file key server\.port\]$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists every problem with exit code 1', SLOW, async () => {
    const outcome = await runCli(['config', 'check'], { PORT: 'eighty', SECRETS: 'short' });
    expect(outcome).toMatchObject({ code: 1, stdout: '' });
    expect(outcome.stderr).toMatch(/^Invalid configuration:\n/);
    expect(outcome.stderr).toContain('  - PORT: ');
    expect(outcome.stderr).toContain('  - SECRETS: secret #1 is 5 characters');
    expect(outcome.stderr).not.toContain('short');
  });
});

const SEED = {
  clients: [{ client_id: 'cli-web', client_secret: 'cli-web-secret-0123456789-abcdefghijkl', redirect_uris: ['http://localhost:8080/cb'] }],
  users: [{ email: 'carol@example.com', password: 'carols long password' }],
};

describe.each(await flavours())('gatehouse against %s', (flavour) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    database = await createTestDatabase(flavour);
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
    env = { DATABASE_URL: database.config.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4', AUTO_MIGRATE: 'false' };
  });

  afterAll(async () => {
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('migrates a fresh database, then finds nothing to do', SLOW, async () => {
    const first = await runCli(['migrate'], env);
    expect(first, first.stderr).toMatchObject({ code: 0 });
    expect(first.stdout).toMatch(/^applied \d{14}_init$/m);
    const again = json<{ applied: string[]; alreadyApplied: string[]; unknown: string[] }>(await runCli(['migrate', '--json'], env));
    expect(again.applied).toEqual([]);
    expect(again.unknown).toEqual([]);
    expect(again.alreadyApplied.length).toBe(first.stdout.trim().split('\n').length);
  });

  it('`mail test` prints what the SMTP server answered; a refusal exits 1 with the reason; `mail list` shows the outbox', SLOW, async () => {
    await runCli(['migrate'], env);
    const smtp = await startSmtpServer({ user: 'ops', password: 'smtp-pass-0123' });
    try {
      const smtpEnv = { ...env, SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true' };
      const sent = await runCli(['mail', 'test', '--to', 'ops@example.com'], smtpEnv);
      expect(sent, sent.stderr).toMatchObject({ code: 0 });
      expect(sent.stdout).toMatch(new RegExp(`^Sent to ops@example.com via smtp://127.0.0.1:${smtp.port}.\nThe server answered: 250`));
      expect((await smtp.waitFor(1)).subject).toBe('Gatehouse: test mail');
      const refused = await runCli(['mail', 'test', '--to', 'ops@example.com'], { ...smtpEnv, SMTP_URL: smtp.url.replace('smtp-pass-0123', 'wrong-pass-9876') });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/the mail was not sent via smtp:\/\/127\.0\.0\.1:\d+: EAUTH/);
      expect(refused.stderr + refused.stdout).not.toContain('wrong-pass-9876');
      expect((await runCli(['mail', 'test', '--to', 'nobody'], smtpEnv)).code).toBe(1);
      const list = json<{ counts: Record<string, number>; messages: unknown[] }>(await runCli(['mail', 'list', '--json'], env));
      expect(list.counts).toEqual({ pending: 0, sent: 0, failed: 0 });
      expect((await runCli(['mail', 'list', '--state', 'lost'], env)).code).toBe(2);
    } finally {
      await smtp.close();
    }
  });

  it('seeds a file, reports what changed, and changes nothing the second time', SLOW, async () => {
    const file = join(dir, 'seed.json');
    writeFileSync(file, JSON.stringify(SEED));
    const first = await runCli(['seed', file], env);
    expect(first, first.stderr).toMatchObject({ code: 0 });
    expect(first.stdout).toBe(
      [`Seeded from ${file}`, 'clients: 1 created (cli-web), 0 updated, 0 unchanged', 'groups: 0 created, 0 updated, 0 unchanged', 'users: 1 created (carol@example.com), 0 updated, 0 unchanged', 'resources: 0 created, 0 updated, 0 unchanged', 'identity providers: 0 created, 0 updated, 0 unchanged', 'invitations: 0 created, 0 updated, 0 unchanged', ''].join('\n'),
    );
    const again = json<{ clients: { unchanged: string[]; created: string[] } }>(await runCli(['seed', file, '--json'], env));
    expect(again.clients).toEqual({ created: [], updated: [], unchanged: ['cli-web'] });

    writeFileSync(file, JSON.stringify({ clients: [{ client_id: 'bad id!' }] }));
    const invalid = await runCli(['seed', file], env);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(`Seed file ${file} has`);
    expect(invalid.stderr).toContain('nothing was written');
    const missing = await runCli(['seed', join(dir, 'missing.json')], env);
    expect(missing).toMatchObject({ code: 1, stderr: `Seed file ${join(dir, 'missing.json')} does not exist.\n` });
  });

  it('lists the audit trail as a JSON array, filtered', SLOW, async () => {
    const events = json<Array<{ type: string; clientId: string; at: string }>>(await runCli(['audit', 'list', '--type', 'client.created', '--since', '1h', '--json'], env));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'client.created', clientId: 'cli-web', details: { source: 'seed' } });
    expect(Number.isNaN(Date.parse(events[0]!.at))).toBe(false);
    expect(json(await runCli(['audit', 'list', '--client', 'nobody', '--json'], env))).toEqual([]);
  });

  it('rotates signing keys, all or one algorithm, and lists them with their state', SLOW, async () => {
    expect(json(await runCli(['keys', 'list', '--json'], env))).toEqual([]);
    const first = json<{ created: Array<{ kid: string; alg: string; generation: number }>; retiring: unknown[] }>(await runCli(['keys', 'rotate', '--immediate', '--json'], env));
    expect(first.created.map((key) => [key.alg, key.generation]).sort()).toEqual([['ES256', 1], ['RS256', 1]]);
    expect(first.retiring).toEqual([]);
    const second = await runCli(['keys', 'rotate', '--alg', 'ES256'], env);
    expect(second, second.stderr).toMatchObject({ code: 0 });
    const es256 = first.created.find((key) => key.alg === 'ES256')!;
    expect(second.stdout).toMatch(/^ES256: new key es256-\S+ \(generation 2\) is published now and signs from \d{4}-/m);
    expect(second.stdout).toContain(`ES256: ${es256.kid} stays published until `);

    const keys = json<Array<{ kid: string; alg: string; generation: number; state: string; retireAfter: string | null }>>(await runCli(['keys', 'list', '--json'], env));
    expect(keys).toHaveLength(3);
    expect(keys.find((key) => key.kid === es256.kid)).toMatchObject({ state: 'active', retireAfter: expect.any(String) as string });
    expect(keys.find((key) => key.alg === 'ES256' && key.generation === 2)).toMatchObject({ state: 'published', retireAfter: null });
    expect(keys.find((key) => key.alg === 'RS256')).toMatchObject({ state: 'active', generation: 1 });
    const audited = json<Array<{ details: { kid: string } }>>(await runCli(['audit', 'list', '--type', 'key.created', '--json'], env));
    expect(audited.map((event) => event.details.kid).sort()).toEqual(keys.map((key) => key.kid).sort());
  });

  it('creates an initial access token only when registration is on', SLOW, async () => {
    const off = await runCli(['initial-access-token', 'create'], env);
    expect(off).toMatchObject({ code: 1, stdout: '' });
    expect(off.stderr).toContain('Dynamic client registration is off: set FEATURE_REGISTRATION=true');
    const token = json<{ token: string; expiresIn: number; expiresAt: string; registrationEndpoint: string }>(
      await runCli(['initial-access-token', 'create', '--expires-in', '15m', '--json'], { ...env, FEATURE_REGISTRATION: 'true', ISSUER: 'https://id.example.test' }),
    );
    expect(token).toMatchObject({ token: expect.stringMatching(/^[\w-]{20,}$/) as string, expiresIn: 900, registrationEndpoint: 'https://id.example.test/register' });
  });
});

// Spawning costs about a second each: one database suffices here (PostgreSQL when reachable),
// since the management layer these commands call is tested on both by its own tests.
describe.each((await flavours()).slice(-1))('clients and users from the command line, on %s', (flavour) => {
  let server: TestGatehouse;
  let env: Record<string, string>;

  beforeAll(async () => {
    // The CLI is another process: its client changes reach a running server within
    // CLIENT_CACHE_TTL. Read clients on every request, so each change shows at once.
    server = await startTestGatehouse(flavour, { env: { CLIENT_CACHE_TTL: '0' } });
    env = { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4', ISSUER: server.issuer };
  });

  afterAll(async () => {
    await server?.close();
  });

  const token = (clientId: string, secret: string) => postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth({ id: clientId, secret }) });

  it('creates a client whose secret is printed once and works at /token, rotates that secret, and deletes the client', SLOW, async () => {
    const created = json<{ client: Record<string, unknown>; client_secret: string }>(
      await runCli(['clients', 'create', '--id', 'cli-service', '--name', 'CLI service', '--grant-type', 'client_credentials', '--scope', 'openid', '--json'], env),
    );
    const secret = created.client_secret;
    expect(secret).toMatch(/^[\w-]{43}$/);
    expect(created.client).toMatchObject({ client_id: 'cli-service', client_name: 'CLI service', grant_types: ['client_credentials'], client_secret_storage: 'hashed' });
    expect((await token('cli-service', secret)).status).toBe(200);

    // Shown once: not by list or get, and not stored in clear.
    const [list, get] = await Promise.all([runCli(['clients', 'list'], env), runCli(['clients', 'get', 'cli-service', '--json'], env)]);
    expect(list.stdout).toMatch(/^CLIENT ID +NAME +AUTH METHOD +GRANT TYPES +REDIRECT URIS\n/);
    expect(list.stdout).toMatch(/^cli-service +CLI service +client_secret_basic +client_credentials +-$/m);
    expect(json(get)).toEqual(created.client);
    for (const output of [list.stdout, get.stdout]) expect(output).not.toContain(secret);
    const stored = await server.gatehouse.db.prisma.client.findUnique({ where: { id: 'cli-service' } });
    expect(JSON.stringify(stored)).not.toContain(secret);

    const rotated = await runCli(['clients', 'rotate-secret', 'cli-service'], env);
    expect(rotated, rotated.stderr).toMatchObject({ code: 0 });
    const newSecret = /^client_secret +(\S+)$/m.exec(rotated.stdout)?.[1] ?? '';
    expect(newSecret).toMatch(/^[\w-]{43}$/);
    expect(rotated.stderr).toContain('shown only this once');
    expect((await token('cli-service', secret)).status).toBe(401);
    expect((await token('cli-service', newSecret)).status).toBe(200);

    const [duplicate, invalid, publicRotation] = await Promise.all([
      runCli(['clients', 'create', '--id', 'cli-service', '--grant-type', 'client_credentials'], env),
      runCli(['clients', 'create', '--redirect-uri', 'not a url', '--auth-method', 'telepathy'], env),
      runCli(['clients', 'create', '--id', 'cli-spa', '--auth-method', 'none', '--redirect-uri', 'http://localhost:5173/cb', '--json'], env),
    ]);
    expect(duplicate).toMatchObject({ code: 1, stderr: expect.stringContaining('error: a client with client_id cli-service already exists') as string });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('error: invalid input; nothing was changed:\n  - redirect_uris.0: must be an absolute http(s) URL');
    expect(invalid.stderr).toContain('  - token_endpoint_auth_method: must be one of');
    expect(json<{ client_secret?: string }>(publicRotation).client_secret).toBeUndefined();
    const noSecret = await runCli(['clients', 'rotate-secret', 'cli-spa'], env);
    expect(noSecret).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining('has no secret to rotate') as string });

    expect(await runCli(['clients', 'delete', 'cli-service'], env)).toMatchObject({ code: 0, stdout: 'deleted client cli-service\n' });
    expect((await token('cli-service', newSecret)).status).toBe(401);
    const again = await runCli(['clients', 'delete', 'cli-service', '--json'], env);
    expect(again).toMatchObject({ code: 1, stdout: '', stderr: 'error: there is no client cli-service\n' });
  });

  it('updates only the client fields given, keeps the secret, and removes a field given as null', SLOW, async () => {
    const created = json<{ client_secret: string }>(
      await runCli(['clients', 'create', '--id', 'cli-batch', '--name', 'Batch', '--grant-type', 'client_credentials', '--metadata', '{"policy_uri": "https://batch.example/policy"}', '--json'], env),
    );
    const updated = await runCli(['clients', 'update', 'cli-batch', '--name', 'Nightly batch', '--scope', 'openid', '--metadata', '{"policy_uri": null, "tos_uri": "https://batch.example/tos"}', '--json'], env);
    expect(updated, updated.stderr).toMatchObject({ code: 0 });
    const { client, client_secret } = json<{ client: Record<string, unknown>; client_secret?: string }>(updated);
    expect(client_secret).toBeUndefined();
    expect(client).toMatchObject({ client_id: 'cli-batch', client_name: 'Nightly batch', scope: 'openid', grant_types: ['client_credentials'], tos_uri: 'https://batch.example/tos' });
    expect(client).not.toHaveProperty('policy_uri');
    expect((await token('cli-batch', created.client_secret)).status).toBe(200);

    const table = await runCli(['clients', 'update', 'cli-batch', '--name', 'Batch again'], env);
    expect(table.stdout).toMatch(/^client_name +Batch again$/m);
    const [nothing, unknown, invalid] = await Promise.all([
      runCli(['clients', 'update', 'cli-batch'], env),
      runCli(['clients', 'update', 'no-such-client', '--name', 'x'], env),
      runCli(['clients', 'update', 'cli-batch', '--redirect-uri', 'not a url'], env),
    ]);
    expect(nothing).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('name at least one field to change') as string });
    expect(unknown).toMatchObject({ code: 1, stderr: 'error: there is no client no-such-client\n' });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('redirect_uris.0: must be an absolute http(s) URL');
    expect(json<{ client_name: string }>(await runCli(['clients', 'get', 'cli-batch', '--json'], env)).client_name).toBe('Batch again');
  });

  it("updates a user's profile and email, clears fields, and resets their MFA", SLOW, async () => {
    const created = await runCli(['users', 'create', 'eve@example.com', '--password-stdin', '--name', 'Eve', '--json'], env, 'an apple a day keeps the doctor away');
    const eve = json<{ id: string }>(created);
    const changed = json<Record<string, unknown>>(
      await runCli(['users', 'update', 'eve@example.com', '--given-name', 'Eve', '--family-name', 'Adams', '--locale', 'ko-KR', '--email-verified', '--json'], env),
    );
    expect(changed).toMatchObject({ id: eve.id, email: 'eve@example.com', name: 'Eve', given_name: 'Eve', family_name: 'Adams', locale: 'ko-KR', email_verified: true });
    const moved = json<Record<string, unknown>>(await runCli(['users', 'update', eve.id, '--email', 'Eve.Adams@Example.com', '--clear', 'name', '--clear', 'locale', '--no-email-verified', '--json'], env));
    expect(moved).toMatchObject({ email: 'eve.adams@example.com', name: null, locale: null, given_name: 'Eve', email_verified: false });

    const [nothing, badClear, badPicture] = await Promise.all([
      runCli(['users', 'update', eve.id], env),
      runCli(['users', 'update', eve.id, '--clear', 'email'], env),
      runCli(['users', 'update', eve.id, '--picture', 'javascript:alert(1)'], env),
    ]);
    expect(nothing).toMatchObject({ code: 2, stderr: expect.stringContaining('name at least one field to change') as string });
    expect(badClear).toMatchObject({ code: 2, stderr: expect.stringContaining('--clear email: not a field that can be removed') as string });
    expect(badPicture.code).toBe(1);
    expect(badPicture.stderr).toContain('picture:');

    expect(json(await runCli(['users', 'reset-mfa', eve.id, '--json'], env))).toEqual({ id: eve.id, mfaRemoved: false });
    await server.gatehouse.db.prisma.user.update({ where: { id: eve.id }, data: { totpSecretEncrypted: 'sealed', totpEnabledAt: new Date() } });
    const reset = await runCli(['users', 'reset-mfa', 'eve.adams@example.com'], env);
    expect(reset).toMatchObject({ code: 0, stdout: 'removed the second factor of eve.adams@example.com\n' });
    expect(await server.gatehouse.db.prisma.user.findUnique({ where: { id: eve.id } })).toMatchObject({ totpSecretEncrypted: null, totpEnabledAt: null });

    // Passkeys: listed, removed by id; an id that is not theirs is not found.
    const passkey = await server.gatehouse.db.prisma.passkey.create({ data: { id: 'pk-1', userId: eve.id, credentialId: 'cred-1', publicKey: 'AA', name: 'Old phone', deviceType: 'singleDevice' } });
    expect(json<Array<{ id: string; name: string }>>(await runCli(['users', 'passkeys', 'eve.adams@example.com', '--json'], env))).toMatchObject([{ id: passkey.id, name: 'Old phone', last_used_at: null }]);
    expect((await runCli(['users', 'passkeys', eve.id], env)).stdout).toMatch(/pk-1\s+Old phone\s+singleDevice/);
    const notTheirs = await runCli(['users', 'remove-passkey', eve.id, 'pk-2'], env);
    expect(notTheirs.code).toBe(1);
    expect(notTheirs.stderr).toContain('has no passkey pk-2');
    expect(await runCli(['users', 'remove-passkey', eve.id, 'pk-1'], env)).toMatchObject({ code: 0, stdout: 'removed passkey pk-1 of ' + eve.id + '\n' });
    expect(await server.gatehouse.db.prisma.passkey.count({ where: { userId: eve.id } })).toBe(0);

    const events = json<Array<{ type: string }>>(await runCli(['audit', 'list', '--account', eve.id, '--json'], env));
    expect(events.map((event) => event.type)).toEqual(['passkey.removed', 'mfa.removed', 'user.updated', 'user.updated', 'user.created']);
  });

  it('creates users with a password from stdin, refuses weak ones with exit 1, sets passwords, disables and enables', SLOW, async () => {
    const hashOf = async (email: string) => (await server.gatehouse.db.prisma.user.findUnique({ where: { email } }))?.passwordHash ?? '';
    const [weak, noStdin, created] = await Promise.all([
      runCli(['users', 'create', 'dora@example.com', '--password-stdin'], env, 'password123\n'),
      runCli(['users', 'create', 'dora@example.com'], env),
      runCli(['users', 'create', 'Dora@Example.com', '--password-stdin', '--name', 'Dora Explorer', '--email-verified', '--json'], env, 'a map, a backpack and a monkey\n'),
    ]);
    expect(weak).toMatchObject({ code: 1, stdout: '' });
    expect(weak.stderr).toMatch(/error: invalid input; nothing was changed:\n {2}- password: /);
    expect(noStdin).toMatchObject({ code: 2, stdout: '' });
    expect(noStdin.stderr).toContain('--password-stdin');
    const dora = json<{ id: string; email: string; name: string; email_verified: boolean; disabled: boolean }>(created);
    expect(dora).toMatchObject({ email: 'dora@example.com', name: 'Dora Explorer', email_verified: true, disabled: false });
    // The trailing newline from `echo` is not part of the password.
    expect(await bcrypt.compare('a map, a backpack and a monkey', await hashOf('dora@example.com'))).toBe(true);

    const [tooShort, reset] = await Promise.all([
      runCli(['users', 'set-password', dora.id, '--password-stdin'], env, 'short'),
      runCli(['users', 'set-password', 'dora@example.com', '--password-stdin', '--json'], env, 'swiper no swiping, ever'),
    ]);
    expect(tooShort.code).toBe(1);
    expect(json(reset)).toEqual({ id: dora.id, passwordChanged: true });
    expect(await bcrypt.compare('swiper no swiping, ever', await hashOf('dora@example.com'))).toBe(true);

    expect(json<{ disabled: boolean }>(await runCli(['users', 'disable', 'dora@example.com', '--json'], env)).disabled).toBe(true);
    const [listed, missing] = await Promise.all([runCli(['users', 'list', '--search', 'dora', '--json'], env), runCli(['users', 'disable', 'nobody@example.com'], env)]);
    expect(json<Array<{ id: string; disabled: boolean }>>(listed)).toEqual([expect.objectContaining({ id: dora.id, disabled: true })]);
    const enabled = await runCli(['users', 'enable', dora.id], env);
    expect(enabled.stdout).toMatch(new RegExp(`^${dora.id} +dora@example.com +Dora Explorer +active`, 'm'));
    expect(missing).toMatchObject({ code: 1, stderr: 'error: there is no user with email nobody@example.com\n' });

    const events = json<Array<{ type: string; details: { via?: string } }>>(await runCli(['audit', 'list', '--account', dora.id, '--json'], env));
    expect(events.map((event) => event.type)).toEqual(['user.enabled', 'user.disabled', 'password.changed', 'user.created']);
    for (const event of events) expect(event.details.via).toBe('cli');
  });
});


describe('gatehouse serve', () => {
  it('starts the server as `npm start` does, answers, and exits 0 on SIGTERM', SLOW, async () => {
    const database = await createTestDatabase('sqlite');
    const port = await freePort();
    const { child, logs, stderr, exited } = spawnServer({ PORT: String(port), DATABASE_URL: database.config.url }, 'src/cli.ts', ['serve']);
    const output = () => `${logs.map((line) => line.msg).join('\n')}\n${stderr()}`;
    try {
      await expect.poll(output, { timeout: 30_000, interval: 200 }).toContain('Gatehouse is listening');
      const discovery = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      // One server only: the log says it started once.
      expect(output().match(/Gatehouse is listening/g)).toHaveLength(1);
      child.kill('SIGTERM');
      expect((await exited).code).toBe(0);
    } finally {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
      await database.drop();
    }
  });
});
