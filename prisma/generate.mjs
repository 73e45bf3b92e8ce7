// Generates both Prisma clients (PostgreSQL and SQLite) into src/generated/.
// The Prisma CLI insists on a schema-engine binary it cannot download here; `generate`
// never executes it, so any existing file satisfies the check.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) {
  env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
}
const cli = require.resolve('prisma/build/index.js');
for (const flavour of ['postgresql', 'sqlite']) {
  execFileSync(process.execPath, [cli, 'generate', '--schema', `prisma/${flavour}/schema.prisma`], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
console.log('generated Prisma clients for postgresql and sqlite');
