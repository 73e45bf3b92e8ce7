// The schema files and migration folders agree with each other: the SQLite schema is exactly
// what the derive script makes of the PostgreSQL one, and each flavour's migrations folder is
// locked to its own provider. These are file checks, so they run for both flavours whether
// or not a PostgreSQL server is reachable.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DatabaseFlavour } from '../../src/config/index.js';
import { migrationsDir } from '../../src/db/migrate.js';

interface DeriveModule {
  deriveSqliteSchema(source: string): string;
  postgresSchemaPath: string;
  sqliteSchemaPath: string;
}

// A plain .mjs script without type declarations: import it by URL and state its shape here.
const deriveScriptUrl = new URL('../../prisma/derive-sqlite-schema.mjs', import.meta.url);
const { deriveSqliteSchema, postgresSchemaPath, sqliteSchemaPath } = (await import(deriveScriptUrl.href)) as DeriveModule;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const schemaPath: Record<DatabaseFlavour, string> = { postgresql: postgresSchemaPath, sqlite: sqliteSchemaPath };
const FLAVOURS: DatabaseFlavour[] = ['sqlite', 'postgresql'];

/** The `provider = "…"` values of the TOML text, top-level or inside a block. */
function providers(text: string): string[] {
  return [...text.matchAll(/^\s*provider\s*=\s*"([^"]*)"/gm)].map((match) => match[1] ?? '');
}

/** The text of one top-level block such as `datasource db { … }`. */
function block(schema: string, header: RegExp): string {
  const match = new RegExp(`^${header.source}\\s*\\{([^}]*)\\}`, 'm').exec(schema);
  if (!match?.[1]) throw new Error(`no block matching ${header.source}`);
  return match[1];
}

function migrationNames(flavour: DatabaseFlavour): string[] {
  const dir = migrationsDir(flavour);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

describe('the SQLite schema is derived from the PostgreSQL schema', () => {
  it('prisma/sqlite/schema.prisma is exactly what the derive script produces', () => {
    const derived = deriveSqliteSchema(readFileSync(postgresSchemaPath, 'utf8'));
    const committed = readFileSync(sqliteSchemaPath, 'utf8');
    expect(
      committed,
      'prisma/sqlite/schema.prisma is out of date with prisma/postgresql/schema.prisma: run `npm run prisma:derive` and commit the result',
    ).toBe(derived);
  });

  it('the derived schema keeps no PostgreSQL-only syntax', () => {
    const derived = deriveSqliteSchema(readFileSync(postgresSchemaPath, 'utf8'));
    expect(derived).not.toMatch(/@db\./);
    expect(derived).not.toMatch(/"postgresql"/);
    expect(derived).not.toMatch(/src\/generated\/postgresql/);
  });

  it('`npm run prisma:derive` runs the derive script', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts?: Record<string, string> };
    const script = pkg.scripts?.['prisma:derive'] ?? '';
    const target = /^node\s+(\S+)/.exec(script)?.[1];
    expect(target, `package.json "prisma:derive" should be "node <script>", is ${JSON.stringify(script)}`).toBeDefined();
    const scriptPath = resolve(repoRoot, target ?? '');
    expect(existsSync(scriptPath), `package.json "prisma:derive" runs ${target}, which does not exist`).toBe(true);
    expect(scriptPath).toBe(fileURLToPath(deriveScriptUrl));
  });
});

describe.each(FLAVOURS)('%s schema and migrations folder', (flavour) => {
  it(`migration_lock.toml names the ${flavour} provider, once`, () => {
    const lock = readFileSync(`${migrationsDir(flavour)}/migration_lock.toml`, 'utf8');
    expect(providers(lock)).toEqual([flavour]);
  });

  it(`schema.prisma's datasource uses the ${flavour} provider`, () => {
    const datasource = block(readFileSync(schemaPath[flavour], 'utf8'), /datasource\s+\w+/);
    expect(providers(datasource)).toEqual([flavour]);
  });

  it(`schema.prisma generates the client into src/generated/${flavour}`, () => {
    const generator = block(readFileSync(schemaPath[flavour], 'utf8'), /generator\s+client/);
    expect(generator).toMatch(new RegExp(`^\\s*output\\s*=\\s*"\\.\\./\\.\\./src/generated/${flavour}"`, 'm'));
  });

  it('every migration folder is named <14-digit timestamp>_<name> and holds a migration.sql', () => {
    const dir = migrationsDir(flavour);
    const misnamed = migrationNames(flavour).filter((name) => !/^\d{14}_\w+$/.test(name));
    expect(misnamed, 'migration folders not named like Prisma\'s').toEqual([]);
    const missing = migrationNames(flavour).filter((name) => !existsSync(`${dir}/${name}/migration.sql`));
    expect(missing, 'migration folders without migration.sql').toEqual([]);
    expect(migrationNames(flavour).length).toBeGreaterThan(0);
  });
});

describe('the two flavours share one migration history', () => {
  it('sqlite and postgresql have the same migration folder names', () => {
    expect(migrationNames('sqlite')).toEqual(migrationNames('postgresql'));
  });
});
