// Prisma CLI configuration. The schema and migrations follow DATABASE_URL's flavour (file: is
// SQLite, anything else PostgreSQL; SQLite when unset). The URL falls back to the default
// rather than using env(), which makes even `prisma generate` fail when the variable is unset.
// Prisma 7 does not load .env: export the variables or use your shell's tooling.
import { defineConfig } from 'prisma/config';

const url = process.env.DATABASE_URL || 'file:./data/gatehouse.db';
const flavour = url.startsWith('file:') ? 'sqlite' : 'postgresql';

export default defineConfig({
  schema: `prisma/${flavour}/schema.prisma`,
  migrations: {
    path: `prisma/${flavour}/migrations`,
    seed: 'tsx prisma/seed.ts',
  },
  datasource: { url },
});
