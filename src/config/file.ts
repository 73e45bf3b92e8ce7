// CONFIG_FILE: a JSON or YAML file that sets settings by their Config path (`ttl.accessToken`),
// each value then parsed by its row's own parser, so the file accepts exactly what the
// environment accepts (numbers and true/false may be written bare, lists as arrays). The keys
// the file used before it took Config's names still work, with a warning naming the new key.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Setting, SETTINGS, type SettingsTable } from './settings.js';

/** Old file key → its Config path. Each still works, with a warning. */
export const RENAMED_FILE_KEYS: Readonly<Record<string, string>> = {
  'server.issuer': 'issuer',
  'server.metricsHost': 'metrics.host',
  'server.metricsPort': 'metrics.port',
  'lifetimes.accessToken': 'ttl.accessToken',
  'lifetimes.idToken': 'ttl.idToken',
  'lifetimes.authorizationCode': 'ttl.authorizationCode',
  'lifetimes.refreshToken': 'ttl.refreshToken',
  'lifetimes.refreshTokenAbsolute': 'ttl.refreshTokenAbsolute',
  'lifetimes.session': 'ttl.session',
  'lifetimes.interaction': 'ttl.interaction',
  'lifetimes.grant': 'ttl.grant',
  'lifetimes.deviceCode': 'ttl.deviceCode',
};

/** A value from the file, as text for its row's parser, and the key it was written under. */
export interface FileValue {
  readonly value: string;
  readonly key: string;
}

export interface ConfigFileContents {
  /** By Config path. */
  readonly values: ReadonlyMap<string, FileValue>;
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
}

export const NO_CONFIG_FILE: ConfigFileContents = { values: new Map(), problems: [], warnings: [] };

const fileLeaf = z
  .union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))])
  .transform((value) => (Array.isArray(value) ? value.join(',') : String(value)));

/** The YAML parser, loaded only when CONFIG_FILE is a YAML file (loadConfig is synchronous, hence require). */
const loadYaml = () => (createRequire(import.meta.url)('yaml') as { parse: typeof parseYaml }).parse;

/** Reads CONFIG_FILE; every problem names the file and the key path as written. */
export function readConfigFile(file: string): ConfigFileContents {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`;
    return { ...NO_CONFIG_FILE, problems: [`CONFIG_FILE: ${file} ${reason} (e.g. ./gatehouse.yaml)`] };
  }
  const yamlFile = /\.ya?ml$/i.test(file);
  if (!yamlFile && !/\.json$/i.test(file)) return { ...NO_CONFIG_FILE, problems: [`CONFIG_FILE: ${file} must end in .json, .yaml or .yml (e.g. ./gatehouse.yaml)`] };
  let parsed: unknown;
  try {
    parsed = yamlFile ? (loadYaml()(text) ?? {}) : JSON.parse(text);
  } catch (error) {
    return { ...NO_CONFIG_FILE, problems: [`${file}: is not valid ${yamlFile ? 'YAML' : 'JSON'}: ${(error as Error).message.split('\n')[0]}`] };
  }
  const contents = { values: new Map<string, FileValue>(), problems: [] as string[], warnings: [] as string[] };
  readGroup(file, parsed, '', contents);
  return contents;
}

/** Walks one object of the file (`at` is its key path as written; '' for the top level). */
function readGroup(file: string, node: unknown, at: string, out: { values: Map<string, FileValue>; problems: string[]; warnings: string[] }): void {
  if (!isObject(node)) {
    out.problems.push(`${file}: ${at || '(top level)'}: must be an object with keys among ${keysKnownAt(at).join(', ')}`);
    return;
  }
  for (const [name, value] of Object.entries(node)) {
    const key = at ? `${at}.${name}` : name;
    const path = RENAMED_FILE_KEYS[key] ?? key;
    if (path !== key) out.warnings.push(`${file}: ${key} is now ${path}; rename it (the old key still works)`);
    const entry = entryAt(path);
    if (entry instanceof Setting) {
      const leaf = fileLeaf.safeParse(value);
      const earlier = out.values.get(path);
      if (!entry.inFile) out.problems.push(`${file}: ${key}: ${entry.environmentOnlyBecause}`);
      else if (!leaf.success) out.problems.push(`${file}: ${key}: must be a string, a number, true/false or a list of them`);
      else if (earlier) out.problems.push(`${file}: ${path}: is set twice, as ${earlier.key} and as ${key}; keep only ${path}`);
      else out.values.set(path, { value: leaf.data, key });
    } else if (entry || isOldGroup(key)) {
      readGroup(file, value, key, out);
    } else {
      out.problems.push(`${file}: ${key}: unknown setting (known here: ${keysKnownAt(at).join(', ')})`);
    }
  }
}

/** The row or group at a Config path. */
function entryAt(path: string): Setting | SettingsTable | undefined {
  let entry: Setting | SettingsTable = SETTINGS;
  for (const name of path.split('.')) {
    if (entry instanceof Setting || !Object.hasOwn(entry, name)) return undefined;
    entry = entry[name] as Setting | SettingsTable;
  }
  return entry;
}

/** A group only old files have (`lifetimes`). */
const isOldGroup = (key: string) => Object.keys(RENAMED_FILE_KEYS).some((old) => old.startsWith(`${key}.`)) && entryAt(key) === undefined;

/** The keys a file may write inside the object at `at`. */
function keysKnownAt(at: string): string[] {
  const group = at ? entryAt(at) : SETTINGS;
  if (group === undefined || group instanceof Setting) return Object.keys(RENAMED_FILE_KEYS).filter((old) => old.startsWith(`${at}.`)).map((old) => old.slice(at.length + 1));
  return Object.entries(group)
    .filter(([, entry]) => !(entry instanceof Setting) || entry.inFile)
    .map(([name]) => name);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
