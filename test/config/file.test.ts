// CONFIG_FILE: a JSON or YAML file sets the same settings as the environment under structured
// keys (their Config paths); the environment wins; mistakes name the file and the key path;
// `config check` output says where each value came from and never shows a secret.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEffectiveConfig, formatEffectiveConfig, loadConfig, SETTING_ROWS } from '../../src/config/index.js';
import { configProblems } from '../helpers/config.js';

const SECRET = 'file-test-secret-0123456789-0123456789-abcdef';
const DB_PASSWORD = 'pg-pa55word-do-not-print';

let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'gatehouse-config-file-'));
});
afterEach(() => {
  rmSync(cwd, { recursive: true, force: true });
});

function writeFile(name: string, content: string | object): string {
  const path = join(cwd, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const load = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env }, { cwd });

const problemsOf = (env: Record<string, string>) => configProblems(load, env);

describe('values from the file', () => {
  it('apply from JSON: durations, bare numbers and booleans, lists, nested groups', () => {
    const file = writeFile('gatehouse.json', {
      server: { port: 4000 },
      ttl: { accessToken: '15m', idToken: 600 },
      features: { registration: true, dpop: false },
      backchannelLogout: { retryDelaysMs: [500, 1500] },
      bruteForce: { accountMaxFailures: 3, lockout: '1h' },
      keys: { rotationInterval: '90d', activationDelay: '2h' },
      branding: { productName: 'Acme ID', primaryColor: '#aa3300' },
      logLevel: 'warn',
    });
    const config = load({ CONFIG_FILE: file });
    expect(config.configFile).toBe(file);
    expect(config.server.port).toBe(4000);
    expect(config.issuer).toBe('http://localhost:4000');
    expect(config.ttl.accessToken).toBe(900);
    expect(config.ttl.idToken).toBe(600);
    expect(config.features.registration).toBe(true);
    expect(config.features.dpop).toBe(false);
    expect(config.backchannelLogout.retryDelaysMs).toEqual([500, 1500]);
    expect(config.bruteForce).toMatchObject({ accountMaxFailures: 3, lockout: 3600 });
    expect(config.keys).toEqual({ refreshInterval: 30, activationDelay: 7200, rotationInterval: 90 * 86400 });
    expect(config.branding).toMatchObject({ productName: 'Acme ID', primaryColor: '#aa3300' });
    expect(config.logLevel).toBe('warn');
  });

  it('apply from YAML, with comments', () => {
    const file = writeFile(
      'gatehouse.yaml',
      ['# Acme production settings', 'ttl:', '  refreshToken: 7d  # a week', 'features:', '  deviceFlow: off', 'branding:', '  supportUrl: mailto:help@acme.test', ''].join('\n'),
    );
    const config = load({ CONFIG_FILE: file });
    expect(config.ttl.refreshToken).toBe(7 * 86400);
    expect(config.features.deviceFlow).toBe(false);
    expect(config.branding.supportUrl).toBe('mailto:help@acme.test');
  });

  it('accept an empty YAML file', () => {
    expect(load({ CONFIG_FILE: writeFile('empty.yml', '') }).ttl.accessToken).toBe(3600);
  });

  it('resolve relative paths against the file, not the working directory', () => {
    writeFile('etc/branding/site.css', 'body { color: red; }');
    mkdirSync(join(cwd, 'etc/branding/views'), { recursive: true });
    const file = writeFile('etc/gatehouse.json', { seedFile: 'seed.json', branding: { cssFile: 'branding/site.css', templatesDir: 'branding/views' } });
    const config = load({ CONFIG_FILE: file });
    expect(config.seedFile).toBe(join(cwd, 'etc/seed.json'));
    expect(config.branding.cssFile).toBe(join(cwd, 'etc/branding/site.css'));
    expect(config.branding.templatesDir).toBe(join(cwd, 'etc/branding/views'));
  });

  it('lose to the environment, setting by setting', () => {
    const file = writeFile('gatehouse.json', { ttl: { accessToken: '15m', idToken: '5m' } });
    const config = load({ CONFIG_FILE: file, ACCESS_TOKEN_TTL: '30m' });
    expect(config.ttl.accessToken).toBe(1800);
    expect(config.ttl.idToken).toBe(300);
    expect(config.sources.ACCESS_TOKEN_TTL).toEqual({ value: '30m', source: 'env' });
    expect(config.sources.ID_TOKEN_TTL).toEqual({ value: '5m', source: 'file' });
    expect(config.sources.REFRESH_TOKEN_TTL).toEqual({ value: '14d', source: 'default' });
  });
});

describe('the README example', () => {
  it('loads, and sets what its comments say', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const example = /### Configuration file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'README.md has a yaml example under "Configuration file"').toBeTruthy();
    const config = load({ CONFIG_FILE: writeFile('gatehouse.yaml', example as string) });
    expect(config).toMatchObject({ issuer: 'https://id.example.com', server: { trustProxy: 1 }, passwords: { minLength: 12 }, auditRetention: 180 * 86400 });
    expect(config.ttl.accessToken).toBe(900);
    expect(config.features).toMatchObject({ registration: true, deviceFlow: false });
    expect(config.keys.rotationInterval).toBe(90 * 86400);
    expect(config.branding).toMatchObject({ productName: 'Acme ID', primaryColor: '#0f766e', supportUrl: 'mailto:help@acme.test' });
  });
});

describe('mistakes in the file', () => {
  it('an unknown key names its path and the keys known there', () => {
    const file = writeFile('gatehouse.json', { ttl: { acessToken: '1h' }, colour: 'red' });
    const problems = problemsOf({ CONFIG_FILE: file });
    expect(problems).toContain(`${file}: ttl.acessToken: unknown setting (known here: accessToken, idToken, authorizationCode, refreshToken, refreshTokenAbsolute, session, interaction, grant, deviceCode)`);
    expect(problems.find((p) => p.startsWith(`${file}: colour: unknown setting (known here: server, metrics, issuer, database, ttl,`))).toBeTruthy();
  });

  it('secrets and the database URL are refused with where to put them instead', () => {
    const file = writeFile('gatehouse.json', { secrets: SECRET, database: { url: `postgresql://gh:${DB_PASSWORD}@db/gh` } });
    const problems = problemsOf({ CONFIG_FILE: file });
    expect(problems).toContain(`${file}: secrets: secrets stay out of files: set SECRETS in the environment`);
    expect(problems).toContain(`${file}: database.url: connection strings carry passwords: set DATABASE_URL in the environment`);
    expect(problems.join('\n')).not.toContain(DB_PASSWORD);
  });

  it('a bad value names its path, gives an example and the variable that would override it', () => {
    const file = writeFile('gatehouse.json', { ttl: { accessToken: 'soon' }, server: { port: 70000 }, branding: { primaryColor: 'red' } });
    const problems = problemsOf({ CONFIG_FILE: file });
    expect(problems).toContain(`${file}: ttl.accessToken: must be a positive duration in seconds or with a unit s/m/h/d (e.g. 1h) (or set ACCESS_TOKEN_TTL)`);
    expect(problems).toContain(`${file}: server.port: must be a whole number from 0 to 65535 (e.g. 3000) (or set PORT)`);
    expect(problems).toContain(`${file}: branding.primaryColor: must be a hex colour (e.g. #1d4ed8) (or set BRAND_PRIMARY_COLOR)`);
  });

  it('a value of the wrong shape names its path', () => {
    const file = writeFile('gatehouse.json', { features: true, server: { port: { value: 1 } } });
    const problems = problemsOf({ CONFIG_FILE: file });
    expect(problems.find((p) => p.startsWith(`${file}: features: must be an object with keys among clientCredentials,`))).toBeTruthy();
    expect(problems).toContain(`${file}: server.port: must be a string, a number, true/false or a list of them`);
  });

  it('a bad value in the environment still wins and is reported under its variable, not the file', () => {
    const file = writeFile('gatehouse.json', { ttl: { accessToken: '1h' } });
    expect(problemsOf({ CONFIG_FILE: file, ACCESS_TOKEN_TTL: 'soon' })).toEqual(['ACCESS_TOKEN_TTL: must be a positive duration in seconds or with a unit s/m/h/d (e.g. 1h)']);
  });

  it('a missing file, a file that does not parse and an unknown extension are reported', () => {
    expect(problemsOf({ CONFIG_FILE: 'nowhere.json' })).toEqual([`CONFIG_FILE: ${join(cwd, 'nowhere.json')} does not exist (e.g. ./gatehouse.yaml)`]);
    const broken = writeFile('broken.json', '{ "ttl": ');
    expect(problemsOf({ CONFIG_FILE: broken })[0]).toMatch(new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is not valid JSON: `));
    const toml = writeFile('gatehouse.toml', 'port = 1');
    expect(problemsOf({ CONFIG_FILE: toml })).toEqual([`CONFIG_FILE: ${toml} must end in .json, .yaml or .yml (e.g. ./gatehouse.yaml)`]);
  });
});

describe('branding', () => {
  it('defaults to Gatehouse in its own colours, with no logo, support link, stylesheet or templates', () => {
    expect(load({}).branding).toStrictEqual({ productName: 'Gatehouse', logoUrl: undefined, logoFile: undefined, primaryColor: '#1d4ed8', supportUrl: undefined, cssFile: undefined, templatesDir: undefined });
  });

  it('refuses URLs a page could be tricked by, and files that are not there', () => {
    const problems = problemsOf({ BRAND_LOGO_URL: 'javascript:alert(1)', BRAND_SUPPORT_URL: 'ftp://help.example.com', BRAND_CSS_FILE: 'missing.css', BRAND_TEMPLATES_DIR: 'missing-views', BRAND_PRIMARY_COLOR: 'red;}' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['BRAND_CSS_FILE', 'BRAND_LOGO_URL', 'BRAND_PRIMARY_COLOR', 'BRAND_SUPPORT_URL', 'BRAND_TEMPLATES_DIR']);
    expect(problemsOf({ BRAND_LOGO_URL: '//evil.example.com/logo.png' })).toHaveLength(1);
  });

  it('accepts an https logo or a path on this server', () => {
    expect(load({ BRAND_LOGO_URL: 'https://cdn.example.com/logo.svg' }).branding.logoUrl).toBe('https://cdn.example.com/logo.svg');
    expect(load({ BRAND_LOGO_URL: '/assets/logo.svg' }).branding.logoUrl).toBe('/assets/logo.svg');
  });
});

describe('key rotation settings', () => {
  it('default to a 30 s refresh, a 1 h activation delay and no scheduled rotation', () => {
    expect(load({}).keys).toEqual({ refreshInterval: 30, activationDelay: 3600, rotationInterval: 0 });
  });

  it('in production, refuse a new key signing before every instance can have published it', () => {
    const production = { NODE_ENV: 'production', ISSUER: 'https://id.example.com', SECRETS: SECRET, TRUST_PROXY: '1' };
    expect(problemsOf({ ...production, KEY_REFRESH_INTERVAL: '5m', KEY_ACTIVATION_DELAY: '1m' })).toEqual([
      'KEY_ACTIVATION_DELAY: must be at least KEY_REFRESH_INTERVAL (300s) in production, so every instance publishes a new key before any signs with it (e.g. 1h)',
    ]);
    expect(loadConfig({ ...production, KEY_ACTIVATION_DELAY: '0', KEY_REFRESH_INTERVAL: '0' }).keys.activationDelay).toBe(0);
  });

  it('refuse a scheduled rotation that would replace each key before it ever signs', () => {
    expect(problemsOf({ KEY_ROTATION_INTERVAL: '30m', KEY_ACTIVATION_DELAY: '1h' })).toEqual([
      'KEY_ROTATION_INTERVAL: must be longer than KEY_ACTIVATION_DELAY (3600s), or each key would be replaced before it ever signs (e.g. 90d)',
    ]);
    expect(load({ KEY_ROTATION_INTERVAL: '90d' }).keys.rotationInterval).toBe(90 * 86400);
  });
});

describe('describeEffectiveConfig', () => {
  const env = () => ({
    CONFIG_FILE: writeFile('gatehouse.json', { ttl: { accessToken: '15m' }, branding: { productName: 'Acme ID' } }),
    SECRETS: `${SECRET},${SECRET.replace('file', 'older')}`,
    DATABASE_URL: `postgresql://gatehouse:${DB_PASSWORD}@db.internal:5432/gatehouse?sslmode=require`,
    ID_TOKEN_TTL: '10m',
  });

  it('lists every variable once, with its value in effect and where it came from', () => {
    const settings = describeEffectiveConfig(load(env()));
    expect(settings.map((s) => s.name)).toEqual(SETTING_ROWS.map((row) => row.setting.env));
    const byName = Object.fromEntries(settings.map((s) => [s.name, s]));
    expect(byName.ACCESS_TOKEN_TTL).toMatchObject({ value: '15m', source: 'file', fileKey: 'ttl.accessToken', masked: false });
    expect(byName.BRAND_NAME).toMatchObject({ value: 'Acme ID', source: 'file', fileKey: 'branding.productName' });
    expect(byName.ID_TOKEN_TTL).toMatchObject({ value: '10m', source: 'env' });
    expect(byName.REFRESH_TOKEN_TTL).toMatchObject({ value: '14d', source: 'default' });
    // A default worked out from other settings shows what it came to.
    expect(byName.ISSUER).toMatchObject({ value: 'http://localhost:3000', source: 'default' });
    expect(byName.SECRETS).toMatchObject({ value: '******** (2 secrets)', source: 'env', masked: true, fileKey: undefined });
    expect(byName.DATABASE_URL).toMatchObject({ value: 'postgresql://gatehouse:********@db.internal:5432/gatehouse?sslmode=require', masked: true });
  });

  it('never contains a secret or the database password, as data or as text', () => {
    const settings = describeEffectiveConfig(load(env()));
    for (const output of [JSON.stringify(settings), formatEffectiveConfig(settings)]) {
      expect(output).not.toContain(SECRET);
      expect(output).not.toContain(SECRET.slice(0, 20));
      expect(output).not.toContain(DB_PASSWORD);
    }
    expect(formatEffectiveConfig(settings)).toMatch(/^ACCESS_TOKEN_TTL\s+15m {2}\[file; file key ttl\.accessToken\]$/m);
  });

  it('masks the whole database URL when it cannot be parsed', () => {
    const settings = describeEffectiveConfig(load({ DATABASE_URL: `postgresql://gh:${DB_PASSWORD}@x@[db/gatehouse` }));
    expect(settings.find((s) => s.name === 'DATABASE_URL')).toMatchObject({ value: 'postgresql://********', masked: true });
  });

  it('masks a password given as a connection parameter too', () => {
    const settings = describeEffectiveConfig(load({ DATABASE_URL: `postgresql://db.internal/gatehouse?user=gh&password=${DB_PASSWORD}` }));
    const url = settings.find((s) => s.name === 'DATABASE_URL');
    expect(url?.value).not.toContain(DB_PASSWORD);
    expect(url?.masked).toBe(true);
  });
});
