// Where Gatehouse's own files are (package.json, views/, prisma/*/migrations/): the nearest folder
// above this module that holds a package.json. Found by walking up rather than by a fixed `../..`
// because the same code runs at different depths: from src/config/ under tsx, and bundled into
// dist/ or dist/chunks/ (esbuild.config.ts).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}: Gatehouse's files (views/, prisma/) are found beside it`);
  }
}

/** The absolute path of `segments` inside Gatehouse's package folder. */
export function packagePath(...segments: string[]): string {
  root ??= findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  return join(root, ...segments);
}
