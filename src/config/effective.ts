// The configuration in effect, one entry per variable, with where each value came from, for
// `gatehouse config check`. SECRETS never appears (only how many there are) and a database
// password is masked.
import { SETTING_ROWS, type Config, type SettingSource, type VariableName } from './settings.js';

/** One line of `gatehouse config check`. */
export interface EffectiveSetting {
  /** The environment variable. */
  readonly name: VariableName;
  /** Its key in a configuration file (its Config path); undefined when it is environment-only. */
  readonly fileKey: string | undefined;
  /** The value in effect, as text; secrets masked. */
  readonly value: string;
  readonly source: SettingSource;
  readonly masked: boolean;
}

const MASK = '********';

/** postgresql://user:pass@host/db → postgresql://user:********@host/db (and a password= parameter); SMTP_URL alike. */
function maskDatabaseUrl(url: string): { value: string; masked: boolean } {
  if (url.startsWith('file:')) return { value: url, masked: false };
  // Not a URL the parser accepts (an unencoded @ in the password, say): mask all it might hide.
  if (!URL.canParse(url)) return { value: `${url.split(':')[0]}://${MASK}`, masked: true };
  const parsed = new URL(url);
  let masked = false;
  if (parsed.password) {
    parsed.password = MASK;
    masked = true;
  }
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass|secret|key/i.test(key)) {
      parsed.searchParams.set(key, MASK);
      masked = true;
    }
  }
  return { value: parsed.href, masked };
}

/** The value in Config at a dotted path, as text; undefined when there is none. */
function valueAt(config: Config, key: string): string | undefined {
  const value = key.split('.').reduce<unknown>((node, name) => (node as Record<string, unknown> | undefined)?.[name], config);
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/**
 * The configuration in effect, one entry per variable in table order. A setting given no value
 * and without a default of its own (ISSUER, DEMO, METRICS_HOST, …) shows what it came to.
 */
export function describeEffectiveConfig(config: Config): EffectiveSetting[] {
  return SETTING_ROWS.map(({ key, setting }) => {
    const name = setting.env as VariableName;
    const { value: given, source } = config.sources[name];
    const fileKey = setting.inFile ? key : undefined;
    if (name === 'SECRETS') {
      const count = config.secrets.length;
      if (source === 'default') return { name, fileKey, value: count ? `(generated, in ${config.generatedSecretFile})` : '(unset)', source, masked: false };
      return { name, fileKey, value: `${MASK} (${count} secret${count === 1 ? '' : 's'})`, source, masked: true };
    }
    const value = given === undefined || given === '' ? (valueAt(config, key) ?? '(unset)') : given;
    if (name === 'DATABASE_URL' || name === 'SMTP_URL') return { name, fileKey, ...maskDatabaseUrl(value), source };
    return { name, fileKey, value, source, masked: false };
  });
}

/** describeEffectiveConfig as aligned text: name, value, source (and file key). */
export function formatEffectiveConfig(settings: readonly EffectiveSetting[]): string {
  const width = Math.max(...settings.map((s) => s.name.length));
  return settings.map((s) => `${s.name.padEnd(width)}  ${s.value}  [${s.source}${s.fileKey ? `; file key ${s.fileKey}` : ''}]`).join('\n');
}
