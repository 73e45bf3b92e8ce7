// The processes tests start (the server, `gatehouse …`) run the bundle `npm run build` ships
// (esbuild.config.ts), not TypeScript through tsx's loader, which doubles each one's start.
// Before the suite (vitest's globalSetup) it is built into .test-dist/, laid out like dist/, with
// inline source maps so that stack traces name src/ lines.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../../esbuild.config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COMPILED_DIR = join(ROOT, '.test-dist');

/** The bundle's entry files, by the source each is built from. */
const ENTRIES: Record<string, string> = { 'src/server.ts': 'server.js', 'src/cli.ts': 'cli.js' };

/** Node's arguments for a script: src/server.ts and src/cli.ts as their bundled files; anything else (prisma/seed.ts) through tsx. */
export function nodeArgsFor(script: string): string[] {
  const entry = ENTRIES[script];
  return entry === undefined ? ['--import', 'tsx', script] : [join(COMPILED_DIR, entry)];
}

export default async function compileSources(): Promise<void> {
  await bundle({ outdir: COMPILED_DIR, sourcemap: 'inline' });
}
