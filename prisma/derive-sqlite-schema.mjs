// Derives prisma/sqlite/schema.prisma from prisma/postgresql/schema.prisma, the one source
// of truth: swaps the provider and the output folder and drops PostgreSQL native types.
// Run with `npm run prisma:derive` after editing the PostgreSQL schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const postgresSchemaPath = fileURLToPath(new URL('./postgresql/schema.prisma', import.meta.url));
export const sqliteSchemaPath = fileURLToPath(new URL('./sqlite/schema.prisma', import.meta.url));

/** @param {string} source the PostgreSQL schema text */
export function deriveSqliteSchema(source) {
  const body = source
    .replace(/^\/\/ The one source of truth[^\n]*\n(\/\/[^\n]*\n)*/m, '')
    .replace(/provider\s*=\s*"postgresql"/, 'provider = "sqlite"')
    .replace(/output(\s*)=(\s*)"\.\.\/\.\.\/src\/generated\/postgresql"/, 'output$1=$2"../../src/generated/sqlite"')
    .replace(/[ \t]+@db\.\w+(\([^)]*\))?/g, '');
  return '// GENERATED from prisma/postgresql/schema.prisma by `npm run prisma:derive`: do not edit.\n' + body;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(sqliteSchemaPath, deriveSqliteSchema(readFileSync(postgresSchemaPath, 'utf8')));
  console.log(`wrote ${sqliteSchemaPath}`);
}
