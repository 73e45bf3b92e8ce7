// loadConfig: defaults, units, every problem reported at once by name, the production rules,
// the generated development secret, and the real process refusing a bad environment.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, describeEffectiveConfig, loadConfig, SETTING_ROWS } from '../../src/config/index.js';
import { nodeArgsFor } from '../helpers/compiled.js';
import { configProblems } from '../helpers/config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECRET_A = 'a'.repeat(20) + '-newest-secret-0123';
const SECRET_B = 'b'.repeat(20) + '-older-secret-01234';
const PRODUCTION = { NODE_ENV: 'production', ISSUER: 'https://id.example.com', SECRETS: SECRET_A, TRUST_PROXY: '1' };

let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
});
afterEach(() => {
  rmSync(cwd, { recursive: true, force: true });
});

const load = (env: Record<string, string>) => loadConfig(env, { cwd });

const problemsOf = (env: Record<string, string>) => configProblems(load, env);

const problemAbout = (problems: readonly string[], name: string) => problems.find((p) => p.startsWith(`${name}:`));

describe('defaults', () => {
  it('in development: localhost issuer, SQLite, bcrypt cost 12, durations in seconds', () => {
    const config = load({});

    expect(config).toMatchObject({
      nodeEnv: 'development',
      server: { host: '127.0.0.1', port: 3000, trustProxy: false, shutdownTimeout: 10, workers: 1, helperThreadNice: 10 },
      issuer: 'http://localhost:3000',
      database: { url: 'file:./data/gatehouse.db', flavour: 'sqlite', poolSize: 10, autoMigrate: true, sweepInterval: 600 },
      passwords: { minLength: 10, bcryptCost: 12 },
      bruteForce: { failureWindow: 900, lockout: 900 },
      logLevel: 'info',
      clientCache: 5,
      auditRetention: 90 * 86400,
      demo: true,
      seedFile: join(cwd, 'prisma/seed.json'),
    });
    expect(config.ttl).toStrictEqual({
      accessToken: 3600,
      idToken: 3600,
      authorizationCode: 60,
      refreshToken: 14 * 86400,
      session: 14 * 86400,
      interaction: 3600,
      grant: 365 * 86400,
      refreshTokenAbsolute: 90 * 86400,
      deviceCode: 600,
    });
    expect(config.features).toStrictEqual({
      clientCredentials: true,
      introspection: true,
      revocation: true,
      deviceFlow: true,
      backchannelLogout: true,
      pushedAuthorizationRequests: true,
      requestObjects: true,
      dpop: true,
      registration: false,
    });
    expect(config.server.authorizationPost).toBe(false);
  });

  it('turns features on and off, and POST authorization follows an https issuer', () => {
    const config = load({ FEATURE_REGISTRATION: 'true', FEATURE_DPOP: 'off', ISSUER: 'https://id.example.com' });
    expect(config.features).toMatchObject({ registration: true, dpop: false });
    expect(config.server.authorizationPost).toBe(true);
    expect(load({ ISSUER: 'https://id.example.com', AUTHORIZATION_POST: 'false' }).server.authorizationPost).toBe(false);
  });

  it('the development issuer follows PORT', () => {
    expect(load({ PORT: '4010' }).issuer).toBe('http://localhost:4010');
  });

  it('an empty value means the default', () => {
    expect(load({ PORT: '', BCRYPT_COST: '' })).toMatchObject({ server: { port: 3000 }, passwords: { bcryptCost: 12 } });
  });

  it('listens on this machine only (127.0.0.1) unless HOST is set, and on every interface in production', () => {
    expect(load({}).server.host).toBe('127.0.0.1');
    expect(load({ NODE_ENV: 'test', HOST: '' }).server.host).toBe('127.0.0.1');
    expect(load({ HOST: '0.0.0.0' }).server.host).toBe('0.0.0.0');
    expect(load(PRODUCTION).server.host).toBe('0.0.0.0');
    expect(load({ ...PRODUCTION, HOST: '10.0.0.5' }).server.host).toBe('10.0.0.5');
    expect(describeEffectiveConfig(load({})).find((s) => s.name === 'HOST')).toMatchObject({ value: '127.0.0.1', source: 'default' });
  });

  it('serves /metrics on PORT unless METRICS_PORT is set, on HOST unless METRICS_HOST is', () => {
    expect(load({}).metrics).toEqual({ port: undefined, host: '127.0.0.1' });
    expect(load({ HOST: '10.0.0.5', METRICS_PORT: '9464' }).metrics).toEqual({ port: 9464, host: '10.0.0.5' });
    expect(load({ METRICS_PORT: '9464', METRICS_HOST: '127.0.0.1' }).metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(problemAbout(problemsOf({ PORT: '3000', METRICS_PORT: '3000' }), 'METRICS_PORT')).toContain('must differ from PORT');
    expect(problemAbout(problemsOf({ METRICS_HOST: '127.0.0.1' }), 'METRICS_HOST')).toContain('applies only with METRICS_PORT');
    expect(problemAbout(problemsOf({ METRICS_PORT: '99999' }), 'METRICS_PORT')).toContain('whole number from 1 to 65535');
  });
});

describe('PASSKEY_RP_ID', () => {
  it("is the ISSUER's host unless set, and may widen to a parent domain of it", () => {
    expect(load({ ISSUER: 'https://id.example.com' }).passkeys.rpId).toBe('id.example.com');
    expect(load({}).passkeys.rpId).toBe('localhost');
    expect(load({ ISSUER: 'https://id.example.com', PASSKEY_RP_ID: 'example.com' }).passkeys.rpId).toBe('example.com');
    expect(load({ ISSUER: 'https://id.example.com', PASSKEY_RP_ID: 'ID.Example.com.' }).passkeys.rpId).toBe('id.example.com');
  });

  it('refuses anything the browser would refuse: another domain, a suffix that is not a parent, a child, a URL, an IP-literal issuer', () => {
    for (const [issuer, rpId] of [
      ['https://id.example.com', 'example.org'],
      ['https://id.example.com', 'ample.com'],
      ['https://id.example.com', 'sub.id.example.com'],
      ['https://id.example.com', 'https://example.com'],
      ['http://127.0.0.1:3000', '0.0.1'],
    ] as const) {
      expect(problemAbout(problemsOf({ ISSUER: issuer, PASSKEY_RP_ID: rpId }), 'PASSKEY_RP_ID'), `${issuer} ${rpId}`).toContain('parent domain');
    }
  });
});

describe('durations', () => {
  it('take seconds or a unit s/m/h/d', () => {
    const config = load({
      ACCESS_TOKEN_TTL: '15m',
      REFRESH_TOKEN_TTL: '14d',
      ID_TOKEN_TTL: '2h',
      AUTHORIZATION_CODE_TTL: '90s',
      INTERACTION_TTL: '1800',
      SWEEP_INTERVAL: '0',
    });
    expect(config.ttl).toMatchObject({ accessToken: 900, refreshToken: 1_209_600, idToken: 7200, authorizationCode: 90, interaction: 1800 });
    expect(config.database.sweepInterval).toBe(0);
  });

  it('refuse zero (except where it means off), negatives, fractions and other units', () => {
    for (const bad of ['0', '-5m', '1.5h', '10w', 'soon']) {
      expect(problemAbout(problemsOf({ ACCESS_TOKEN_TTL: bad }), 'ACCESS_TOKEN_TTL'), bad).toContain('e.g. 1h');
    }
  });
});

describe('DATABASE_URL', () => {
  it('postgresql:// selects PostgreSQL, file: selects SQLite', () => {
    const url = 'postgresql://gatehouse:secret@db.internal:5432/gatehouse';
    expect(load({ DATABASE_URL: url }).database).toMatchObject({ url, flavour: 'postgresql' });
    expect(load({ DATABASE_URL: 'postgres://u@h/db' }).database.flavour).toBe('postgresql');
    expect(load({ DATABASE_URL: 'file:./other.db' }).database).toMatchObject({ url: 'file:./other.db', flavour: 'sqlite' });
  });
});

describe('invalid values', () => {
  it('are all reported in one ConfigError, each by name with an example', () => {
    const bad = { PORT: 'abc', BCRYPT_COST: '99', ACCESS_TOKEN_TTL: 'soon', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', TRUST_PROXY: 'maybe' };
    let thrown: unknown;
    try {
      load(bad);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const { problems, message } = thrown as ConfigError;

    for (const name of Object.keys(bad)) {
      const problem = problemAbout(problems, name);
      expect(problem, `no problem reported for ${name}; got ${JSON.stringify(problems)}`).toBeDefined();
      // An example value, or the list of allowed values for an enumeration.
      expect(problem, name).toMatch(/\(e\.g\. .+\)|one of /);
      expect(message).toContain(problem);
    }
    expect(problemAbout(problems, 'LOG_LEVEL')).toContain('info');
    expect(problems).toHaveLength(Object.keys(bad).length);
  });

  it('HELPER_THREAD_NICE takes Linux nice values 0 to 19 (0: off), nothing else', () => {
    expect(load({ HELPER_THREAD_NICE: '0' }).server.helperThreadNice).toBe(0);
    expect(load({ HELPER_THREAD_NICE: '19' }).server.helperThreadNice).toBe(19);
    for (const value of ['20', '-1', '5.5', 'low']) {
      expect(problemAbout(problemsOf({ HELPER_THREAD_NICE: value }), 'HELPER_THREAD_NICE'), value).toContain('from 0 to 19');
    }
  });

  it('a blank SECRETS_FILE is a ConfigError naming it, not a crash, and nothing is written', () => {
    expect(problemAbout(problemsOf({ SECRETS_FILE: '   ' }), 'SECRETS_FILE')).toBeDefined();
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('a refused development start generates no secret file', () => {
    expect(problemAbout(problemsOf({ PORT: 'abc' }), 'PORT')).toBeDefined();
    expect(existsSync(join(cwd, 'data/dev-secret'))).toBe(false);
  });
});

describe('production', () => {
  it('requires ISSUER and SECRETS', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problemAbout(problems, 'ISSUER')).toMatch(/required in production/);
    expect(problemAbout(problems, 'SECRETS')).toMatch(/required in production/);
  });

  it('refuses to start a feature that needs mail without SMTP_URL, with one clear message; without it asked for, the feature is off', () => {
    const problems = problemsOf({ ...PRODUCTION, PASSWORD_RESET: 'true' });
    expect(problems).toEqual([expect.stringMatching(/^SMTP_URL: is required in production when PASSWORD_RESET=true/)]);
    expect(load(PRODUCTION).recovery.passwordReset).toBe(false);
    const withMail = load({ ...PRODUCTION, SMTP_URL: 'smtps://id%40example.com:hunter2-smtp@smtp.example.com:465' });
    expect(withMail.recovery.passwordReset).toBe(true);
    expect(withMail.mail.from).toBe('"Gatehouse" <no-reply@id.example.com>');
    expect(JSON.stringify(describeEffectiveConfig(withMail))).not.toContain('hunter2-smtp');
    // Outside production the development fallback (files in MAIL_DIR) serves.
    expect(load({}).recovery.passwordReset).toBe(true);
  });

  it('refuses SIGNUP=open in production without SMTP_URL, and bad SIGNUP and SIGNUP_DOMAINS values, each with one clear message', () => {
    expect(problemsOf({ ...PRODUCTION, SIGNUP: 'open' })).toEqual([expect.stringMatching(/^SMTP_URL: is required in production when SIGNUP=open/)]);
    expect(load({ ...PRODUCTION, SIGNUP: 'open', SMTP_URL: 'smtps://smtp.example.com:465' }).signUp.mode).toBe('open');
    expect(load({}).signUp).toEqual({ mode: 'closed', domains: undefined, maxPerIp: 5 });
    expect(load({ SIGNUP_DOMAINS: ' Example.com, example.ORG ,' }).signUp.domains).toEqual(['example.com', 'example.org']);
    expect(problemsOf({ SIGNUP: 'yes' })).toEqual([expect.stringMatching(/^SIGNUP: must be closed, invite or open/)]);
    expect(problemsOf({ SIGNUP_DOMAINS: 'example.com,@bad' })).toEqual([expect.stringMatching(/^SIGNUP_DOMAINS: must be comma-separated email domains/)]);
  });

  it('accepts only smtp:// and smtps:// for SMTP_URL, without echoing it', () => {
    for (const url of ['http://smtp.example.com', 'smtp://', 'mail.example.com:25', 'smtps://user:s3cret-pw@']) {
      const problem = problemAbout(problemsOf({ SMTP_URL: url }), 'SMTP_URL');
      expect(problem, url).toMatch(/must be smtp:\/\/user:pass@host:587/);
      expect(problem).not.toContain('s3cret-pw');
    }
  });

  it('requires an https ISSUER', () => {
    expect(problemAbout(problemsOf({ ...PRODUCTION, ISSUER: 'http://id.example.com' }), 'ISSUER')).toMatch(/https/);
  });

  it('accepts a complete configuration, without demo or a generated secret', () => {
    const config = load(PRODUCTION);
    expect(config).toMatchObject({ nodeEnv: 'production', issuer: 'https://id.example.com', secrets: [SECRET_A], demo: false });
    expect(config.generatedSecretFile).toBeUndefined();
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('requires TRUST_PROXY with an https ISSUER (Gatehouse itself serves plain HTTP behind a TLS proxy)', () => {
    expect(problemAbout(problemsOf({ ...PRODUCTION, TRUST_PROXY: 'false' }), 'TRUST_PROXY')).toMatch(/TLS-terminating proxy/);
    expect(load(PRODUCTION).server.trustProxy).toBe(1);
  });

  it('refuses DEMO=true', () => {
    expect(problemAbout(problemsOf({ ...PRODUCTION, DEMO: 'true' }), 'DEMO')).toBeDefined();
    expect(load({ ...PRODUCTION, DEMO: 'false' }).demo).toBe(false);
  });
});

describe('SECRETS', () => {
  it('each secret needs 32 or more characters', () => {
    expect(load({ ...PRODUCTION, SECRETS: 'x'.repeat(32) }).secrets).toStrictEqual(['x'.repeat(32)]);
    expect(problemAbout(problemsOf({ ...PRODUCTION, SECRETS: 'x'.repeat(31) }), 'SECRETS')).toBeDefined();
    expect(problemAbout(problemsOf({ ...PRODUCTION, SECRETS: `${SECRET_A},too-short` }), 'SECRETS')).toMatch(/#2/);
  });

  it('two values keep their order, newest first', () => {
    const config = load({ ...PRODUCTION, SECRETS: `${SECRET_A}, ${SECRET_B}` });
    expect(config.secrets).toStrictEqual([SECRET_A, SECRET_B]);
    expect(load({ ...PRODUCTION, SECRETS: `${SECRET_B},${SECRET_A}` }).secrets).toStrictEqual([SECRET_B, SECRET_A]);
  });

  it('in development without SECRETS, one is generated into SECRETS_FILE (mode 0600) and reused', () => {
    const first = load({ SECRETS_FILE: 'keep/dev-secret' });
    const file = join(cwd, 'keep/dev-secret');

    expect(first.generatedSecretFile).toBe(file);
    expect(first.secrets).toHaveLength(1);
    expect(first.secrets[0]!.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.secrets[0]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    expect(load({ SECRETS_FILE: 'keep/dev-secret' }).secrets).toStrictEqual(first.secrets);

    const elsewhere = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
    try {
      expect(loadConfig({ SECRETS_FILE: 'keep/dev-secret' }, { cwd: elsewhere }).secrets).not.toStrictEqual(first.secrets);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('in development with SECRETS, nothing is generated', () => {
    const config = load({ SECRETS: SECRET_A });
    expect(config.secrets).toStrictEqual([SECRET_A]);
    expect(config.generatedSecretFile).toBeUndefined();
    expect(existsSync(join(cwd, 'data/dev-secret'))).toBe(false);
  });
});

describe('the returned config', () => {
  it('is deeply frozen', () => {
    const config = load({ SECRETS: `${SECRET_A},${SECRET_B}` });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.ttl)).toBe(true);
    expect(Object.isFrozen(config.database)).toBe(true);
    expect(Object.isFrozen(config.secrets)).toBe(true);
    expect(() => {
      (config.ttl as { accessToken: number }).accessToken = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.secrets as string[]).push('x'.repeat(40));
    }).toThrow(TypeError);
    expect(config.ttl.accessToken).toBe(3600);
  });
});

describe('.env.example', () => {
  it('documents every variable loadConfig reads, and nothing else', () => {
    const file = join(ROOT, '.env.example');
    expect(existsSync(file), '.env.example is missing at the repository root').toBe(true);
    const documented = new Set(
      readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .map((line) => /^\s*(?:#\s*)?([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
        .filter((name): name is string => name !== undefined),
    );
    expect([...documented].sort()).toStrictEqual(SETTING_ROWS.map((row) => row.setting.env).sort());
  });
});

describe('the server process', () => {
  it('exits with code 1 and lists each problem on its own line, without a stack trace', async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: 'abc', NODE_ENV: 'production' };
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, nodeArgsFor('src/server.ts'), { cwd: ROOT, env, timeout: 60_000 }, (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
      });
      child.stdin?.end();
    });

    expect(code, stderr).toBe(1);
    const lines = stderr.split('\n');
    for (const name of ['PORT', 'ISSUER', 'SECRETS']) {
      const mentions = lines.filter((line) => line.includes(`${name}:`));
      expect(mentions, `${name} in:\n${stderr}`).toHaveLength(1);
      expect(['PORT', 'ISSUER', 'SECRETS'].filter((other) => mentions[0]!.includes(`${other}:`))).toStrictEqual([name]);
    }
    expect(stderr).not.toMatch(/^ {4}at /m);
  }, 60_000);
});
