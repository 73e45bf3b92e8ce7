// loadConfig(): the only reader of process.env (and of the CONFIG_FILE it names). Every row of the
// settings table is parsed once, from the environment, else the file, else its default; then the
// settings that depend on others are worked out (resolve.ts); every problem is reported at once,
// by name, and the result is a deeply frozen Config.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NO_CONFIG_FILE, readConfigFile, type ConfigFileContents } from './file.js';
import { flavourOf, type DatabaseFlavour } from './parsers.js';
import { checkKeyLifecycle, checkMetrics, checkProxy, checkSecrets, resolveBranding, resolveDemo, resolveIssuer, resolvePasskeyRpId, type Parsed } from './resolve.js';
import { Setting, SETTINGS, type Config, type ParsedValues, type SettingSource, type SettingsTable, type VariableName } from './settings.js';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
type Sources = Record<VariableName, { value: string | undefined; source: SettingSource }>;

/** Validates the environment (and CONFIG_FILE). Throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env, options: { cwd?: string } = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const configFile = env.CONFIG_FILE?.trim() ? resolve(cwd, env.CONFIG_FILE.trim()) : undefined;
  const file = configFile ? readConfigFile(configFile) : NO_CONFIG_FILE;
  const problems = [...file.problems];
  const sources = {} as Sources;
  const parsed = parseTable(SETTINGS, '', { env, file, configFile, sources, problems }) as Parsed;

  /** Relative paths in the file are relative to the file; in the environment, to the working directory. */
  const pathOf = (name: VariableName, value: string) => resolve(sources[name].source === 'file' && configFile ? dirname(configFile) : cwd, value);
  const production = parsed.nodeEnv === 'production' || (env.NODE_ENV ?? '').trim() === 'production';
  const issuer = resolveIssuer(parsed, production, problems);
  const passkeyRpId = resolvePasskeyRpId(parsed, issuer, problems);
  checkMetrics(parsed, problems);
  checkSecrets(parsed, production, problems);
  checkProxy(parsed, issuer, production, problems);
  const demo = resolveDemo(parsed, production, problems);
  checkKeyLifecycle(parsed, production, problems);
  const brandingFiles = resolveBranding(parsed, production, pathOf, problems);
  if (problems.length) throw new ConfigError(problems);

  // No problems: every row parsed.
  const settled = parsed as ParsedValues;
  const secretsFile = resolve(cwd, settled.secretsFile);
  // Only now that everything is valid, so a refused start leaves no file behind.
  const generatedSecretFile = settled.secrets.length === 0 ? secretsFile : undefined;
  const secrets = generatedSecretFile ? [readOrCreateDevSecret(generatedSecretFile)] : settled.secrets;
  // Outside production, only this machine can reach a server nobody configured to be reachable.
  const host = settled.server.host ?? (production ? '0.0.0.0' : '127.0.0.1');
  return deepFreeze({
    ...settled,
    server: { ...settled.server, host, authorizationPost: settled.server.authorizationPost ?? issuer.startsWith('https:') },
    metrics: { ...settled.metrics, host: settled.metrics.host ?? host },
    issuer,
    passkeys: { rpId: passkeyRpId },
    database: { ...settled.database, flavour: flavourOf(settled.database.url) as DatabaseFlavour },
    secrets,
    secretsFile,
    generatedSecretFile,
    backchannelLogout: { ...settled.backchannelLogout, allowPrivateNetworks: settled.backchannelLogout.allowPrivateNetworks ?? !production },
    demo,
    seedFile: pathOf('SEED_FILE', settled.seedFile),
    configFile,
    branding: { ...settled.branding, ...brandingFiles },
    sources,
    warnings: file.warnings,
  });
}

interface ParseContext {
  readonly env: Env;
  readonly file: ConfigFileContents;
  readonly configFile: string | undefined;
  readonly sources: Sources;
  readonly problems: string[];
}

/** Each row's value, group by group; a value that does not parse is left undefined and its problem reported. */
function parseTable(table: SettingsTable, prefix: string, context: ParseContext): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(table).map(([name, entry]) => [name, entry instanceof Setting ? parseRow(`${prefix}${name}`, entry, context) : parseTable(entry, `${prefix}${name}.`, context)]),
  );
}

/** One row: the environment wins over the file, the file over the default (an empty variable counts as unset). */
function parseRow(key: string, setting: Setting, { env, file, configFile, sources, problems }: ParseContext): unknown {
  const given = env[setting.env];
  const fromFile = file.values.get(key);
  const source: SettingSource = given !== undefined && given !== '' ? 'env' : fromFile ? 'file' : 'default';
  const value = source === 'env' ? given : source === 'file' ? fromFile?.value : setting.fallback;
  sources[setting.env as VariableName] = { value, source };
  const result = setting.schema.safeParse(value);
  if (result.success) return result.data;
  for (const { message } of result.error.issues) problems.push(source === 'file' ? `${configFile}: ${fromFile?.key}: ${message} (or set ${setting.env})` : `${setting.env}: ${message}`);
  return undefined;
}

/** Development only: one random secret, generated on first start and kept in a file. */
function readOrCreateDevSecret(file: string): string {
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret.length >= 32) return secret;
  }
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
