// The processes tests start (the server, `gatehouse …`) run compiled JavaScript, as they ship, not
// TypeScript through tsx's loader, which doubles each one's start. Before the suite (vitest's
// globalSetup), every file under src/ is compiled on its own, the way tsx does it, into
// .test-dist/, laid out like dist/: views, migrations and package.json are found the same way.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COMPILED_DIR = join(ROOT, '.test-dist');

/** Node's arguments for a script: `src/….ts` as its compiled file; anything else (prisma/seed.ts) through tsx. */
export function nodeArgsFor(script: string): string[] {
  const source = /^src\/(.+)\.ts$/.exec(script)?.[1];
  return source === undefined ? ['--import', 'tsx', script] : [join(COMPILED_DIR, `${source}.js`)];
}

export default async function compileSources(): Promise<void> {
  const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
  rmSync(COMPILED_DIR, { recursive: true, force: true });
  await build({
    entryPoints: sources.map((file) => join(ROOT, 'src', file)),
    outbase: join(ROOT, 'src'),
    outdir: COMPILED_DIR,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}
