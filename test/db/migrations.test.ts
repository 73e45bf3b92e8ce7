// The hand-written migrations and our runner, on each database: the migrated schema is the one
// Prisma would build from schema.prisma, `_prisma_migrations` is the table Prisma's engine keeps,
// and the runner is idempotent, refuses edited or unfinished history, rolls back a broken
// migration and survives two instances starting at once.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { get_dmmf } from '@prisma/prisma-schema-wasm';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DatabaseFlavour } from '../../src/config/index.js';
import { sqliteFilePath, type DbConfig } from '../../src/db/client.js';
import { migrate, MigrationError, migrationsDir, pendingMigrations } from '../../src/db/migrate.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';

const FLAVOURS = await flavours();

// ---------------------------------------------------------------------------------------------
// What the Prisma schema says (its DMMF, from Prisma's own schema parser)
// ---------------------------------------------------------------------------------------------

interface DmmfField {
  name: string;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUnique: boolean;
  isUpdatedAt: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType: [string, string[]] | null;
  dbName?: string | null;
}

interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
}

interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string | null;
  name?: string | null;
  fields: { name: string }[];
  /** A partial index's condition (`where: raw("…")`), which the DMMF leaves out: read from the schema's text. */
  where?: string;
}

interface Datamodel {
  models: DmmfModel[];
  indexes: DmmfIndex[];
}

const schemaFile = (flavour: DatabaseFlavour) => fileURLToPath(new URL(`../../prisma/${flavour}/schema.prisma`, import.meta.url));

function datamodel(flavour: DatabaseFlavour): Datamodel {
  const text = readFileSync(schemaFile(flavour), 'utf8');
  const model = (JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: [['schema.prisma', text]] }))) as { datamodel: Datamodel }).datamodel;
  const conditions = partialIndexConditions(text);
  for (const index of model.indexes) index.where = conditions.get(`${index.model}(${index.fields.map((field) => field.name).join(', ')})`);
  return model;
}

/** Each `@@index([fields], where: raw("…"))` of the schema's text, by `Model(field, field)`. */
function partialIndexConditions(text: string): Map<string, string> {
  const conditions = new Map<string, string>();
  for (const [, name, body = ''] of text.matchAll(/^model (\w+) \{\n([\s\S]*?)^\}/gm)) {
    for (const [, fields = '', raw = ''] of body.matchAll(/@@index\(\[([^\]]*)\],\s*where:\s*raw\("((?:[^"\\]|\\.)*)"\)\)/g)) {
      conditions.set(`${name}(${fields.split(',').map((field) => field.trim()).join(', ')})`, raw.replace(/\\"/g, '"'));
    }
  }
  return conditions;
}

/** A condition as either database or the schema spells it, compared loosely: no quotes, outer parentheses, case or extra spaces. */
const sameCondition = (a: string, b: string) => {
  const plain = (condition: string) => condition.replace(/"/g, '').replace(/\s+/g, ' ').trim().replace(/^\((.*)\)$/, '$1').toLowerCase();
  return plain(a) === plain(b);
};

const tableName = (model: DmmfModel) => model.dbName ?? model.name;
const columnName = (field: DmmfField) => field.dbName ?? field.name;

/** The fields that are columns (relation fields are not). */
function columnFields(model: DmmfModel): DmmfField[] {
  return model.fields.filter((field) => field.kind !== 'object');
}

/** Prisma's default constraint name: `Table_col1_col2_key` / `_idx` / `_pkey`. */
function prismaIndexName(model: DmmfModel, columns: string[], suffix: 'key' | 'idx'): string {
  return [tableName(model), ...columns, suffix].join('_');
}

// ---------------------------------------------------------------------------------------------
// What the database has (introspection, per flavour)
// ---------------------------------------------------------------------------------------------

interface ColumnInfo {
  name: string;
  /** SQLite: the declared type; PostgreSQL: information_schema's data_type. */
  type: string;
  nullable: boolean;
  /** The default expression, or null when there is none. */
  default: string | null;
  /** PostgreSQL only. */
  datetimePrecision?: number | null;
  characterMaximumLength?: number | null;
}

interface IndexInfo {
  name: string;
  unique: boolean;
  primary: boolean;
  /** A partial index's condition, as the database reports it; null for a full index. */
  condition: string | null;
  columns: string[];
}

interface TableInfo {
  columns: ColumnInfo[];
  /** Primary key columns in key order. */
  primaryKey: string[];
  /** PostgreSQL: the primary key constraint's name; SQLite has none. */
  primaryKeyName: string | null;
  indexes: IndexInfo[];
}

interface Inspector {
  tables(): Promise<string[]>;
  table(name: string): Promise<TableInfo>;
  /** Parameters are written `?`; PostgreSQL gets them renumbered. */
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

async function inspect(config: DbConfig): Promise<Inspector> {
  return config.flavour === 'sqlite' ? inspectSqlite(config) : inspectPostgres(config);
}

function inspectSqlite(config: DbConfig): Inspector {
  const db = new Database(sqliteFilePath(config.url), { timeout: 5000 });
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  /** SQLite keeps an index's CREATE statement; its condition is what follows WHERE. */
  const conditionOf = (index: string) => {
    const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(index) as { sql: string };
    return /\bWHERE\b([\s\S]*)$/i.exec(sql)?.[1]?.trim() ?? sql;
  };
  return {
    tables: async () =>
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map(
        (row) => row.name,
      ),
    table: async (name) => {
      const columns = db.pragma(`table_info(${quote(name)})`) as { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }[];
      const list = db.pragma(`index_list(${quote(name)})`) as { name: string; unique: number; origin: string; partial: number }[];
      return {
        columns: columns.map((column) => ({
          name: column.name,
          type: column.type.toUpperCase(),
          // A column that is part of the primary key but not declared NOT NULL still accepts NULL in SQLite.
          nullable: column.notnull === 0,
          default: column.dflt_value,
        })),
        primaryKey: columns
          .filter((column) => column.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((column) => column.name),
        primaryKeyName: null,
        indexes: list.map((index) => ({
          name: index.name,
          unique: index.unique === 1,
          primary: index.origin === 'pk',
          condition: index.partial === 1 ? conditionOf(index.name) : null,
          columns: (db.pragma(`index_info(${quote(index.name)})`) as { seqno: number; name: string }[])
            .sort((a, b) => a.seqno - b.seqno)
            .map((column) => column.name),
        })),
      };
    },
    query: async <T>(sql: string, params: unknown[] = []) => {
      const statement = db.prepare(sql);
      if (statement.reader) return statement.all(...params) as T[];
      statement.run(...params);
      return [];
    },
    close: async () => {
      db.close();
    },
  };
}

async function inspectPostgres(config: DbConfig): Promise<Inspector> {
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    let n = 0;
    return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as T[];
  };
  return {
    tables: async () =>
      (
        await query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
      ).map((row) => row.name),
    table: async (name) => {
      const columns = await query<{
        name: string;
        type: string;
        nullable: 'YES' | 'NO';
        default: string | null;
        precision: number | null;
        length: number | null;
      }>(
        `SELECT column_name AS name, data_type AS type, is_nullable AS nullable, column_default AS default,
                datetime_precision AS precision, character_maximum_length AS length
           FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = ?
          ORDER BY ordinal_position`,
        [name],
      );
      const indexes = await query<IndexInfo>(
        `SELECT i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary, pg_get_expr(x.indpred, x.indrelid) AS condition,
                array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                       ORDER BY k.ord)::text[] AS columns
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE n.nspname = current_schema() AND t.relname = ?
          ORDER BY i.relname`,
        [name],
      );
      const primary = indexes.find((index) => index.primary);
      return {
        columns: columns.map((column) => ({
          name: column.name,
          type: column.type,
          nullable: column.nullable === 'YES',
          default: column.default,
          datetimePrecision: column.precision,
          characterMaximumLength: column.length,
        })),
        primaryKey: primary?.columns ?? [],
        primaryKeyName: primary?.name ?? null,
        indexes,
      };
    },
    query,
    close: () => client.end(),
  };
}

// ---------------------------------------------------------------------------------------------
// Comparing the two; every discrepancy is one line naming the model, column or index
// ---------------------------------------------------------------------------------------------

interface ExpectedType {
  type: string;
  datetimePrecision?: number;
}

/** The column type Prisma's migrate creates for a field (no native types in our schema, so only the defaults). */
function expectedType(flavour: DatabaseFlavour, field: DmmfField): ExpectedType | string {
  if (field.kind !== 'scalar') return `${field.kind} fields are not handled by this test yet`;
  if (field.isList) return 'list fields are not handled by this test yet';
  if (field.nativeType) return `native type @db.${field.nativeType[0]} is not handled by this test yet`;
  // Prisma type: [PostgreSQL column type, SQLite column type]
  const types: Record<string, [ExpectedType, ExpectedType]> = {
    String: [{ type: 'text' }, { type: 'TEXT' }],
    Int: [{ type: 'integer' }, { type: 'INTEGER' }],
    BigInt: [{ type: 'bigint' }, { type: 'BIGINT' }],
    Float: [{ type: 'double precision' }, { type: 'REAL' }],
    Decimal: [{ type: 'numeric' }, { type: 'DECIMAL' }],
    Boolean: [{ type: 'boolean' }, { type: 'BOOLEAN' }],
    DateTime: [{ type: 'timestamp without time zone', datetimePrecision: 3 }, { type: 'DATETIME' }],
    Json: [{ type: 'jsonb' }, { type: 'JSONB' }],
    Bytes: [{ type: 'bytea' }, { type: 'BLOB' }],
  };
  return types[field.type]?.[flavour === 'postgresql' ? 0 : 1] ?? `Prisma type ${field.type} is not handled by this test yet`;
}

/**
 * The database default Prisma's migrate creates for a field: an exact expression, or
 * `undefined` for none. `@updatedAt` and client-side generators (uuid(), cuid(), …) have none.
 */
function expectedDefault(flavour: DatabaseFlavour, field: DmmfField): string | RegExp | undefined {
  if (!field.hasDefaultValue || field.isUpdatedAt) return undefined;
  const value = field.default;
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') return flavour === 'postgresql' ? `'${value.replace(/'/g, "''")}'::text` : `'${value.replace(/'/g, "''")}'`;
  const generator = (value as { name?: string } | undefined)?.name;
  if (generator === 'now') return 'CURRENT_TIMESTAMP';
  if (generator === 'autoincrement') return flavour === 'postgresql' ? /^nextval\(/ : undefined;
  if (generator && ['uuid', 'cuid', 'nanoid', 'ulid'].includes(generator)) return undefined;
  return /.*/; // some other default: only require that one exists
}

function compareColumns(flavour: DatabaseFlavour, model: DmmfModel, table: TableInfo): string[] {
  const problems: string[] = [];
  const where = (field: DmmfField) => `${model.name}.${field.name}`;
  const fields = columnFields(model);
  const expectedNames = new Set(fields.map(columnName));
  for (const column of table.columns) {
    if (!expectedNames.has(column.name)) problems.push(`${model.name}: column "${column.name}" is not in the Prisma schema`);
  }
  for (const field of fields) {
    const column = table.columns.find((c) => c.name === columnName(field));
    if (!column) {
      problems.push(`${where(field)}: no column "${columnName(field)}" in table "${tableName(model)}"`);
      continue;
    }
    if (column.nullable === field.isRequired) {
      problems.push(`${where(field)}: column is ${column.nullable ? 'nullable' : 'NOT NULL'} but the field is ${field.isRequired ? 'required' : 'optional'}`);
    }
    const type = expectedType(flavour, field);
    if (typeof type === 'string') {
      problems.push(`${where(field)}: ${type}`);
    } else {
      if (column.type !== type.type) problems.push(`${where(field)}: column type is ${column.type}, Prisma's ${field.type} is ${type.type}`);
      if (type.datetimePrecision !== undefined && column.datetimePrecision !== type.datetimePrecision) {
        problems.push(`${where(field)}: datetime precision is ${column.datetimePrecision}, Prisma uses ${type.datetimePrecision}`);
      }
    }
    const fieldDefault = expectedDefault(flavour, field);
    if (fieldDefault === undefined && column.default !== null) {
      problems.push(`${where(field)}: column has default ${column.default}, the field has no database default`);
    } else if (fieldDefault !== undefined && column.default === null) {
      problems.push(`${where(field)}: column has no default, the field has @default`);
    } else if (fieldDefault !== undefined && column.default !== null) {
      const matches = typeof fieldDefault === 'string' ? column.default.toUpperCase() === fieldDefault.toUpperCase() : fieldDefault.test(column.default);
      if (!matches) problems.push(`${where(field)}: column default is ${column.default}, expected ${String(fieldDefault)}`);
    }
  }
  return problems;
}

function comparePrimaryKey(flavour: DatabaseFlavour, model: DmmfModel, indexes: DmmfIndex[], table: TableInfo): string[] {
  const idIndex = indexes.find((index) => index.type === 'id');
  const fieldId = model.fields.filter((field) => field.isId).map(columnName);
  const expected = idIndex ? idIndex.fields.map((f) => columnName(model.fields.find((field) => field.name === f.name) ?? ({ name: f.name } as DmmfField))) : fieldId;
  const problems: string[] = [];
  if (expected.length === 0) problems.push(`${model.name}: the model has no @id or @@id (this test expects one)`);
  if (JSON.stringify(table.primaryKey) !== JSON.stringify(expected)) {
    problems.push(`${model.name}: primary key is (${table.primaryKey.join(', ')}), the schema's id is (${expected.join(', ')})`);
  }
  if (flavour === 'postgresql' && table.primaryKeyName !== `${tableName(model)}_pkey`) {
    problems.push(`${model.name}: primary key constraint is named ${table.primaryKeyName}, Prisma names it ${tableName(model)}_pkey`);
  }
  return problems;
}

function compareIndexes(model: DmmfModel, indexes: DmmfIndex[], table: TableInfo): string[] {
  const problems: string[] = [];
  const expected = indexes
    .filter((index) => index.type === 'unique' || index.type === 'normal')
    .map((index) => {
      const columns = index.fields.map((f) => columnName(model.fields.find((field) => field.name === f.name) ?? ({ name: f.name } as DmmfField)));
      const unique = index.type === 'unique';
      return { name: index.dbName ?? prismaIndexName(model, columns, unique ? 'key' : 'idx'), unique, columns, condition: index.where ?? null };
    });
  const actual = table.indexes.filter((index) => !index.primary);
  for (const want of expected) {
    const have = actual.find((index) => index.name === want.name);
    const kind = want.unique ? 'unique index' : 'index';
    if (!have) {
      problems.push(`${model.name}: missing ${kind} ${want.name} on (${want.columns.join(', ')})`);
      continue;
    }
    if (have.unique !== want.unique) problems.push(`${model.name}: index ${want.name} is ${have.unique ? '' : 'not '}unique, the schema's is ${want.unique ? '' : 'not '}unique`);
    if (JSON.stringify(have.columns) !== JSON.stringify(want.columns)) {
      problems.push(`${model.name}: index ${want.name} is on (${have.columns.join(', ')}), the schema's is on (${want.columns.join(', ')})`);
    }
    if (have.condition !== null && want.condition === null) problems.push(`${model.name}: index ${want.name} is partial (WHERE ${have.condition}), the schema's is not`);
    if (have.condition === null && want.condition !== null) problems.push(`${model.name}: index ${want.name} is not partial, the schema's is (WHERE ${want.condition})`);
    if (have.condition !== null && want.condition !== null && !sameCondition(have.condition, want.condition)) {
      problems.push(`${model.name}: index ${want.name} holds rows WHERE ${have.condition}, the schema's WHERE ${want.condition}`);
    }
  }
  for (const have of actual) {
    if (!expected.some((want) => want.name === have.name)) {
      problems.push(`${model.name}: extra ${have.unique ? 'unique index' : 'index'} ${have.name} on (${have.columns.join(', ')}) is not in the Prisma schema`);
    }
  }
  return problems;
}

/** Every way the database differs from the flavour's Prisma schema; empty when they agree. */
async function schemaDifferences(flavour: DatabaseFlavour, inspector: Inspector): Promise<string[]> {
  const { models, indexes } = datamodel(flavour);
  const problems: string[] = [];
  const tables = (await inspector.tables()).filter((name) => name !== '_prisma_migrations');
  const modelTables = models.map(tableName);
  for (const table of tables) if (!modelTables.includes(table)) problems.push(`table "${table}" has no model in schema.prisma`);
  for (const model of models) {
    if (!tables.includes(tableName(model))) {
      problems.push(`${model.name}: no table "${tableName(model)}"`);
      continue;
    }
    const table = await inspector.table(tableName(model));
    const own = indexes.filter((index) => index.model === model.name);
    problems.push(...compareColumns(flavour, model, table), ...comparePrimaryKey(flavour, model, own, table), ...compareIndexes(model, own, table));
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Migration folders on disk, read independently of the runner
// ---------------------------------------------------------------------------------------------

interface MigrationFile {
  name: string;
  checksum: string;
}

/** Names and SHA-256 of the migration.sql bytes, as `sha256sum` prints them. */
function migrationFiles(dir: string): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({ name, checksum: createHash('sha256').update(readFileSync(join(dir, name, 'migration.sql'))).digest('hex') }));
}

interface MigrationRecord {
  id: string;
  checksum: string;
  migration_name: string;
  logs: string | null;
  started_at: unknown;
  finished_at: unknown;
  rolled_back_at: unknown;
  applied_steps_count: number;
}

async function migrationRows(inspector: Inspector): Promise<MigrationRecord[]> {
  if (!(await inspector.tables()).includes('_prisma_migrations')) return [];
  return inspector.query<MigrationRecord>('SELECT * FROM "_prisma_migrations" ORDER BY migration_name, started_at');
}

/** Tables and migration rows: what "the database is unchanged" compares. */
async function snapshot(inspector: Inspector): Promise<{ tables: string[]; rows: MigrationRecord[] }> {
  return { tables: await inspector.tables(), rows: await migrationRows(inspector) };
}

/** A copy of the flavour's migrations folder that a test may edit. */
function copyMigrations(flavour: DatabaseFlavour): { dir: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-migrations-'));
  const dir = join(root, 'migrations');
  cpSync(migrationsDir(flavour), dir, { recursive: true });
  return { dir, remove: () => rmSync(root, { recursive: true, force: true }) };
}

function addMigration(dir: string, name: string, sql: string): void {
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, 'migration.sql'), sql);
}

/** Runs migrate() in a separate Node process, as a second server instance would. */
async function migrateInChildProcess(config: DbConfig): Promise<{ applied: string[]; alreadyApplied: string[] }> {
  const migrateModule = new URL('../../src/db/migrate.ts', import.meta.url).href;
  const script = `
    const { migrate } = await import(${JSON.stringify(migrateModule)});
    process.stdout.write(JSON.stringify(await migrate(JSON.parse(process.env.GATEHOUSE_TEST_DB))));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, GATEHOUSE_TEST_DB: JSON.stringify(config) },
  });
  return JSON.parse(stdout) as { applied: string[]; alreadyApplied: string[] };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------------------------

describe.each(FLAVOURS)('migrations on %s', (flavour) => {
  let database: TestDatabase;
  let inspector: Inspector | undefined;
  const copies: { remove(): void }[] = [];
  const files = migrationFiles(migrationsDir(flavour));
  const names = files.map((file) => file.name);

  beforeEach(async () => {
    database = await createTestDatabase(flavour);
  });

  afterEach(async () => {
    await inspector?.close();
    inspector = undefined;
    for (const copy of copies.splice(0)) copy.remove();
    await database.drop();
  });

  /** Opened after the runner has created the database file / schema. */
  async function db(): Promise<Inspector> {
    inspector ??= await inspect(database.config);
    return inspector;
  }

  function copy(): string {
    const made = copyMigrations(flavour);
    copies.push(made);
    return made.dir;
  }

  describe('the migrated schema matches schema.prisma', () => {
    it('tables, columns, types, nullability, defaults, primary keys and indexes', async () => {
      await migrate(database.config);
      expect(await schemaDifferences(flavour, await db())).toEqual([]);
    });

    it('the comparison reports a drifted migration (so the check above can fail)', async () => {
      const dir = copy();
      // User's lines are edited where the table is last created: a later migration may rebuild it
      // (SQLite redefines User to make a column optional), and the earlier text then no longer counts.
      const edit = (name: string | undefined, replace: (sql: string) => string) => {
        const sqlFile = join(dir, name ?? '', 'migration.sql');
        const sql = readFileSync(sqlFile, 'utf8');
        expect(replace(sql), `${name} no longer contains the lines this test edits`).not.toBe(sql);
        writeFileSync(sqlFile, replace(sql));
      };
      const createsUser = (name: string) => /CREATE TABLE "(new_)?User"/.test(readFileSync(join(dir, name, 'migration.sql'), 'utf8'));
      edit([...names].reverse().find(createsUser), (sql) =>
        sql
          .replace('"locale" TEXT,', '"locale" INTEGER,')
          .replace('"name" TEXT,', '"name" TEXT NOT NULL,')
          .replace('"emailVerified" BOOLEAN NOT NULL DEFAULT false,', '"emailVerified" BOOLEAN NOT NULL,'),
      );
      // OidcArtifact's indexes likewise, where they are last made (partial, with their conditions).
      const createsIndexes = (name: string) => readFileSync(join(dir, name, 'migration.sql'), 'utf8').includes('CREATE INDEX "OidcArtifact_grantId_idx"');
      edit([...names].reverse().find(createsIndexes), (sql) =>
        sql
          .replace('CREATE INDEX "OidcArtifact_grantId_idx" ON "OidcArtifact"("grantId") WHERE "grantId" IS NOT NULL;', 'CREATE INDEX "OidcArtifact_consumedAt_idx" ON "OidcArtifact"("consumedAt");')
          .replace('("model", "uid") WHERE "uid" IS NOT NULL;', '("model", "uid") WHERE "userCode" IS NOT NULL;')
          .replace('("clientId") WHERE "clientId" IS NOT NULL;', '("clientId");'),
      );
      await migrate(database.config, dir);
      const problems = await schemaDifferences(flavour, await db());
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^User\.locale: column type is INTEGER, Prisma's String is TEXT$/i),
          'User.name: column is NOT NULL but the field is optional',
          'User.emailVerified: column has no default, the field has @default',
          'OidcArtifact: missing index OidcArtifact_grantId_idx on (grantId)',
          'OidcArtifact: extra index OidcArtifact_consumedAt_idx on (consumedAt) is not in the Prisma schema',
          expect.stringMatching(/^OidcArtifact: index OidcArtifact_model_uid_idx holds rows WHERE \(?"?userCode"? IS NOT NULL\)?, the schema's WHERE "uid" IS NOT NULL$/),
          'OidcArtifact: index OidcArtifact_clientId_idx is not partial, the schema\'s is (WHERE "clientId" IS NOT NULL)',
        ]),
      );
      expect(problems).toHaveLength(7);
    });
  });

  it("_prisma_migrations has Prisma's layout and one finished row per migration", async () => {
    const before = Date.now();
    await migrate(database.config);
    const after = Date.now();
    const inspector = await db();

    const table = await inspector.table('_prisma_migrations');
    const layout = table.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, hasDefault: c.default !== null }));
    // Column, its type on PostgreSQL and on SQLite, nullable, has a default. (On SQLite the id is
    // the primary key, so NOT NULL matters: SQLite would otherwise allow NULL keys.)
    const columns: [string, string, string, boolean, boolean][] = [
      ['id', 'character varying', 'TEXT', false, false],
      ['checksum', 'character varying', 'TEXT', false, false],
      ['finished_at', 'timestamp with time zone', 'DATETIME', true, false],
      ['migration_name', 'character varying', 'TEXT', false, false],
      ['logs', 'text', 'TEXT', true, false],
      ['rolled_back_at', 'timestamp with time zone', 'DATETIME', true, false],
      ['started_at', 'timestamp with time zone', 'DATETIME', false, true],
      ['applied_steps_count', 'integer', 'INTEGER UNSIGNED', false, true],
    ];
    const prismaLayout = columns.map(([name, postgresql, sqlite, nullable, hasDefault]) => ({ name, type: flavour === 'postgresql' ? postgresql : sqlite, nullable, hasDefault }));
    expect(layout).toEqual(prismaLayout);
    expect(table.primaryKey).toEqual(['id']);
    if (flavour === 'postgresql') {
      expect(Object.fromEntries(table.columns.filter((c) => c.characterMaximumLength !== null).map((c) => [c.name, c.characterMaximumLength]))).toEqual({
        id: 36,
        checksum: 64,
        migration_name: 255,
      });
    }
    expect(table.columns.find((c) => c.name === 'applied_steps_count')?.default).toBe('0');

    const rows = await migrationRows(inspector);
    expect(rows.map((row) => ({ name: row.migration_name, checksum: row.checksum }))).toEqual(files.map((f) => ({ name: f.name, checksum: f.checksum })));
    for (const row of rows) {
      expect(row.id, `${row.migration_name}: id`).toMatch(UUID);
      expect(row.applied_steps_count, `${row.migration_name}: applied_steps_count`).toBe(1);
      expect(row.rolled_back_at, `${row.migration_name}: rolled_back_at`).toBeNull();
      expect(row.logs, `${row.migration_name}: logs`).toBeNull();
      expect(row.finished_at, `${row.migration_name}: finished_at`).not.toBeNull();
    }

    const times =
      flavour === 'sqlite'
        ? await inspector.query<{ name: string; started: unknown; finished: unknown; startedType: string; finishedType: string }>(
            'SELECT migration_name AS name, started_at AS started, finished_at AS finished, typeof(started_at) AS startedType, typeof(finished_at) AS finishedType FROM "_prisma_migrations"',
          )
        : (await migrationRows(inspector)).map((row) => ({ name: row.migration_name, started: row.started_at, finished: row.finished_at }));
    for (const time of times) {
      if (flavour === 'sqlite') {
        // Prisma's engine writes SQLite dates as epoch milliseconds; ISO text would break its ordering and parsing.
        expect(time, `${time.name}: dates stored as integers`).toMatchObject({ startedType: 'integer', finishedType: 'integer' });
      }
      const started = time.started instanceof Date ? time.started.getTime() : Number(time.started);
      const finished = time.finished instanceof Date ? time.finished.getTime() : Number(time.finished);
      // PostgreSQL's clock is this machine's, but allow for rounding and a little skew.
      expect(started, `${time.name}: started_at`).toBeGreaterThanOrEqual(before - 1000);
      expect(finished, `${time.name}: finished_at`).toBeLessThanOrEqual(after + 1000);
      expect(finished, `${time.name}: finished_at ≥ started_at`).toBeGreaterThanOrEqual(started);
    }
  });

  it('running migrate twice applies nothing the second time and keeps one row per migration', async () => {
    const first = await migrate(database.config);
    expect(first).toEqual({ applied: names, alreadyApplied: [], unknown: [] });
    const rowsAfterFirst = await migrationRows(await db());

    const second = await migrate(database.config);
    expect(second).toEqual({ applied: [], alreadyApplied: names, unknown: [] });
    expect(await migrationRows(await db())).toEqual(rowsAfterFirst);
    expect(rowsAfterFirst.map((row) => row.migration_name)).toEqual(names);
  });

  describe('an applied migration that was edited', () => {
    it('makes migrate fail, naming the migration, and changes nothing', async () => {
      const dir = copy();
      const edited = names.at(-1) ?? '';
      await migrate(database.config, dir);
      // A pending migration too: it must not run when the history is wrong.
      addMigration(dir, '20990101000000_later', 'CREATE TABLE "LaterProbe" ("id" TEXT NOT NULL);\n');
      appendFileSync(join(dir, edited, 'migration.sql'), '\n-- an edit after the fact\n');
      const before = await snapshot(await db());

      const error = await migrate(database.config, dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toContain(edited);
      expect((error as Error).message).toMatch(/modified/);
      expect(await snapshot(await db())).toEqual(before);
      expect(before.tables).not.toContain('LaterProbe');
    });

    it('is still accepted when only its line endings changed (as Prisma accepts it)', async () => {
      const dir = copy();
      await migrate(database.config, dir);
      for (const name of names) {
        const file = join(dir, name, 'migration.sql');
        writeFileSync(file, readFileSync(file, 'utf8').replace(/\r?\n/g, '\r\n'));
      }
      await expect(migrate(database.config, dir)).resolves.toEqual({ applied: [], alreadyApplied: names, unknown: [] });
    });
  });

  it('a broken new migration is rolled back whole and not recorded', async () => {
    const dir = copy();
    const broken = '20990101000000_broken';
    // The second statement fails when it runs, not when it is parsed: PostgreSQL parses a whole
    // multi-statement string before running any of it, so a syntax error would prove nothing.
    addMigration(dir, broken, 'CREATE TABLE "BrokenProbe" ("id" TEXT NOT NULL);\n\nINSERT INTO "NoSuchTable" ("id") VALUES (\'x\');\n');

    const error = await migrate(database.config, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain(broken);

    const inspector = await db();
    expect(await inspector.tables()).not.toContain('BrokenProbe');
    const rows = await migrationRows(inspector);
    expect(rows.map((row) => row.migration_name)).toEqual(names);
    expect(rows.every((row) => row.finished_at !== null && row.rolled_back_at === null)).toBe(true);
    expect(await pendingMigrations(database.config, dir)).toEqual([broken]);

    // Once fixed, it applies normally.
    writeFileSync(join(dir, broken, 'migration.sql'), 'CREATE TABLE "BrokenProbe" ("id" TEXT NOT NULL);\n');
    await expect(migrate(database.config, dir)).resolves.toMatchObject({ applied: [broken], alreadyApplied: names });
    expect(await inspector.tables()).toContain('BrokenProbe');
  });

  describe('two instances starting at once', () => {
    it('in one process: both resolve and each migration is recorded once', async () => {
      const results = await Promise.all([migrate(database.config), migrate(database.config)]);
      for (const result of results) expect([...result.applied, ...result.alreadyApplied].sort()).toEqual(names);
      expect((await migrationRows(await db())).map((row) => row.migration_name)).toEqual(names);
      expect(await schemaDifferences(flavour, await db())).toEqual([]);
    });

    it('in two processes: both succeed and each migration is recorded once', async () => {
      const results = await Promise.all([migrateInChildProcess(database.config), migrateInChildProcess(database.config)]);
      for (const result of results) expect([...result.applied, ...result.alreadyApplied].sort()).toEqual(names);
      expect((await migrationRows(await db())).map((row) => row.migration_name)).toEqual(names);
    });

    it('each migration is reported as applied by exactly one of them', async () => {
      const results = await Promise.all([migrate(database.config), migrate(database.config)]);
      for (const name of names) {
        expect(results.filter((result) => result.applied.includes(name)), `${name} reported as applied by`).toHaveLength(1);
      }
    });
  });

  describe('rows left by an interrupted run', () => {
    const interrupted = '20990101000000_interrupted';

    async function recordRow(finished: boolean, rolledBack: boolean): Promise<void> {
      const now = flavour === 'sqlite' ? Date.now() : new Date();
      await (await db()).query(
        'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, ?, 0)',
        ['00000000-0000-4000-8000-000000000000', '0'.repeat(64), interrupted, now, finished ? now : null, rolledBack ? now : null],
      );
    }

    it('an unfinished row makes migrate refuse and point at `prisma migrate resolve`', async () => {
      const dir = copy();
      await migrate(database.config, dir);
      addMigration(dir, interrupted, 'CREATE TABLE "InterruptedProbe" ("id" TEXT NOT NULL);\n');
      await recordRow(false, false);

      const error = await migrate(database.config, dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toContain(interrupted);
      expect((error as Error).message).toContain('prisma migrate resolve');
      expect(await (await db()).tables()).not.toContain('InterruptedProbe');
    });

    it('a row marked rolled back no longer blocks, and the migration is applied again', async () => {
      const dir = copy();
      await migrate(database.config, dir);
      addMigration(dir, interrupted, 'CREATE TABLE "InterruptedProbe" ("id" TEXT NOT NULL);\n');
      await recordRow(false, true);
      expect(await pendingMigrations(database.config, dir)).toEqual([interrupted]);

      await expect(migrate(database.config, dir)).resolves.toMatchObject({ applied: [interrupted] });
      expect(await (await db()).tables()).toContain('InterruptedProbe');
    });

    it('a finished row with no folder on disk is reported as unknown', async () => {
      await migrate(database.config);
      await recordRow(true, false);
      await expect(migrate(database.config)).resolves.toEqual({ applied: [], alreadyApplied: names, unknown: [interrupted] });
    });
  });

  it('pendingMigrations lists every migration on a fresh database, creates nothing, and lists none after migrate', async () => {
    expect(await pendingMigrations(database.config)).toEqual(names);
    expect(await (await db()).tables()).toEqual([]);
    await migrate(database.config);
    expect(await pendingMigrations(database.config)).toEqual([]);
  });
});
