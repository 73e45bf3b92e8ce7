// The one table of settings: each row's key is where its value lands in Config and its key in
// a configuration file (derived from the table, so a row that breaks this fails here), old file
// keys still work and warn naming the new one, the README lists exactly the file keys, and
// Config is the type inferred from the table.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigError, describeEffectiveConfig, loadConfig, RENAMED_FILE_KEYS, SETTING_ROWS, type Config, type SettingRow, type VariableName } from '../../src/config/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-table-'));
  writeFileSync(join(dir, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  mkdirSync(join(dir, 'views'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Settings another one needs to be valid at all. */
const COMPANIONS: Partial<Record<VariableName, Record<string, string>>> = { METRICS_HOST: { METRICS_PORT: '9464' }, PASSKEY_RP_ID: { ISSUER: 'http://id.example.com' } };

function load(env: Record<string, string>, file?: object): Config {
  const given = { NODE_ENV: 'test', ...env };
  if (!file) return loadConfig(given, { cwd: dir });
  writeFileSync(join(dir, 'gatehouse.json'), JSON.stringify(file));
  return loadConfig({ ...given, CONFIG_FILE: 'gatehouse.json' }, { cwd: dir });
}

/** { a: { b: value } } for the key "a.b". */
function fileWith(key: string, value: string): object {
  return key
    .split('.')
    .reverse()
    .reduce<unknown>((inner, name) => ({ [name]: inner }), value) as object;
}

/** The value at a dotted path; fails the test when the path is not there. */
function valueAt(config: Config, key: string): unknown {
  return key.split('.').reduce<unknown>((node, name) => {
    expect(node !== null && typeof node === 'object' && name in node, `Config has no ${key}`).toBe(true);
    return (node as Record<string, unknown>)[name];
  }, config);
}

const CANDIDATES = ['7', '9', '1500', '90d', 'true', 'false', 'warn', 'ko', '#abcdef', 'http://localhost:4000', 'mailto:help@example.com', 'logo.svg', 'views', 'example.com', 'invite'];

/** A value for the row, set through its variable, that loads and changes what Config holds at the row's key. */
function sampleFor({ key, setting }: SettingRow): string {
  const companions = COMPANIONS[setting.env as VariableName] ?? {};
  const byDefault = JSON.stringify(valueAt(load(companions), key));
  for (const candidate of CANDIDATES) {
    try {
      if (JSON.stringify(valueAt(load({ ...companions, [setting.env]: candidate }), key)) !== byDefault) return candidate;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
  }
  return expect.fail(`no sample value for ${setting.env}: add one to CANDIDATES`);
}

const fileRows = SETTING_ROWS.filter((row) => row.setting.inFile);

describe('the settings table', () => {
  it('names each variable once and each key once', () => {
    const variables = SETTING_ROWS.map((row) => row.setting.env);
    expect(new Set(variables).size).toBe(variables.length);
    const keys = SETTING_ROWS.map((row) => row.key);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('puts every value at its key in Config', () => {
    const config = load({});
    for (const { key } of SETTING_ROWS) valueAt(config, key);
  });

  it.each(fileRows.map((row) => [row.key, row] as const))('file key %s sets the Config value at that path, as its variable does', (key, row) => {
    const value = sampleFor(row);
    const companions = COMPANIONS[row.setting.env as VariableName] ?? {};
    const fromFile = load(companions, fileWith(key, value));
    expect(fromFile.sources[row.setting.env as VariableName]).toEqual({ value, source: 'file' });
    expect(valueAt(fromFile, key)).toEqual(valueAt(load({ ...companions, [row.setting.env]: value }), key));
    expect(describeEffectiveConfig(fromFile).find((s) => s.name === row.setting.env)?.fileKey).toBe(key);
    expect(fromFile.warnings).toEqual([]);
  });

  it('refuses the environment-only settings in a file, naming the variable', () => {
    const envOnly = SETTING_ROWS.filter((row) => !row.setting.inFile);
    expect(envOnly.map((row) => row.setting.env).sort()).toEqual(['CONFIG_FILE', 'DATABASE_URL', 'NODE_ENV', 'SECRETS', 'SECRETS_FILE', 'SMTP_URL']);
    for (const { key, setting } of envOnly) {
      let problems: readonly string[] = [];
      try {
        load({}, fileWith(key, 'x'));
      } catch (error) {
        problems = (error as ConfigError).problems;
      }
      expect(problems).toEqual([`${join(dir, 'gatehouse.json')}: ${key}: ${setting.environmentOnlyBecause}`]);
      expect(setting.environmentOnlyBecause).toContain(`set ${setting.env} in the environment`);
    }
  });
});

describe('old configuration file keys', () => {
  const renamed = Object.entries(RENAMED_FILE_KEYS);

  it('each name a setting the file may set', () => {
    expect(renamed.length).toBeGreaterThan(0);
    for (const [, key] of renamed) expect(fileRows.map((row) => row.key)).toContain(key);
  });

  it.each(renamed)('%s still sets %s, with a warning naming the new key', (old, key) => {
    const row = SETTING_ROWS.find((r) => r.key === key) as SettingRow;
    const value = sampleFor(row);
    const companions = COMPANIONS[row.setting.env as VariableName] ?? {};
    const config = load(companions, fileWith(old, value));
    expect(valueAt(config, key)).toEqual(valueAt(load(companions, fileWith(key, value)), key));
    expect(config.sources[row.setting.env as VariableName]).toEqual({ value, source: 'file' });
    expect(config.warnings).toEqual([`${join(dir, 'gatehouse.json')}: ${old} is now ${key}; rename it (the old key still works)`]);
  });

  it('set together with the new key is refused, naming both', () => {
    const file = join(dir, 'gatehouse.json');
    expect(() => load({}, { ttl: { accessToken: '15m' }, lifetimes: { accessToken: '10m' } })).toThrow(
      `${file}: ttl.accessToken: is set twice, as ttl.accessToken and as lifetimes.accessToken; keep only ttl.accessToken`,
    );
  });

  it('a bad value under an old key is reported under the key as written', () => {
    expect(() => load({}, { lifetimes: { accessToken: 'soon' } })).toThrow(`${join(dir, 'gatehouse.json')}: lifetimes.accessToken: must be a positive duration`);
  });

  it('an unknown key in an old group lists the keys known there', () => {
    expect(() => load({}, { lifetimes: { acessToken: '1h' } })).toThrow('lifetimes.acessToken: unknown setting (known here: accessToken, idToken,');
  });
});

describe('the README', () => {
  it('lists every configuration file key, with the variable it sets, and nothing else', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const section = /\| Group \| Keys \(and the variable each one sets\) \|\n\| --- \| --- \|\n((?:\|.*\|\n)+)/.exec(readme)?.[1];
    expect(section, 'README.md has the key table under "Configuration file"').toBeTruthy();
    const documented = (section as string)
      .trim()
      .split('\n')
      .flatMap((line) => {
        const [, group, keys] = line.split('|').map((cell) => cell.trim());
        const prefix = group === 'top level' ? '' : `${group?.replaceAll('`', '')}.`;
        return [...(keys ?? '').matchAll(/`(\w+)` \(`([A-Z0-9_]+)`\)/g)].map((m) => `${prefix}${m[1]} ${m[2]}`);
      });
    expect(documented.sort()).toEqual(fileRows.map((row) => `${row.key} ${row.setting.env}`).sort());
  });
});

describe('the Config type', () => {
  it('is inferred from the table (checked by tsc)', () => {
    expectTypeOf<Config['server']['port']>().toEqualTypeOf<number>();
    expectTypeOf<Config['server']['workers']>().toEqualTypeOf<number>();
    expectTypeOf<Config['server']['trustProxy']>().toEqualTypeOf<string | number | boolean>();
    expectTypeOf<Config['server']['authorizationPost']>().toEqualTypeOf<boolean>();
    expectTypeOf<Config['issuer']>().toEqualTypeOf<string>();
    expectTypeOf<Config['metrics']>().toEqualTypeOf<{ readonly port: number | undefined; readonly host: string }>();
    expectTypeOf<Config['ttl']['accessToken']>().toEqualTypeOf<number>();
    expectTypeOf<Config['backchannelLogout']['retryDelaysMs']>().toEqualTypeOf<readonly number[]>();
    expectTypeOf<Config['secrets']>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<Config['logLevel']>().toEqualTypeOf<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>();
    expectTypeOf<Config['defaultLanguage']>().toEqualTypeOf<'en' | 'ko'>();
    expectTypeOf<Config['database']['flavour']>().toEqualTypeOf<'sqlite' | 'postgresql'>();
    expectTypeOf<Config['branding']['logoFile']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<'ACCESS_TOKEN_TTL' | 'WEB_CONCURRENCY'>().toExtend<VariableName>();
    expectTypeOf<'webConcurrency'>().not.toExtend<VariableName>();
    // @ts-expect-error the old, hand-written names are gone
    expectTypeOf<Config['webConcurrency']>().toBeNever();
    const config = load({});
    expect(config.server.workers).toBe(1);
  });
});
