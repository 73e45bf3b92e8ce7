// How `npm run build` makes dist/: src/server.ts and src/cli.ts bundled by esbuild into
// dist/server.js and dist/cli.js, with the code that only some paths load (the database
// drivers' Prisma clients, most commands) in dist/chunks/. One bundle starts about a third
// faster than the same code as ~860 separate modules, which Node's ESM loader finds, reads and
// links one by one (README "Performance"). test/helpers/compiled.ts builds the same bundle for
// the processes tests start. `tsc` type-checks src/ first (package.json "build"); this file
// runs under tsx.
//
// Left outside the bundle, loaded from node_modules at run time: the native addons, pg's optional
// native binding (pg-native, loaded only through pg.native, which Gatehouse does not use), and
// the few modules our code loads through createRequire (yaml, rate-limiter-flexible's Prisma
// limiter, @simplewebauthn/browser's script file). Paths to views/, prisma/ and package.json are
// found by walking up to package.json (src/config/package-root.ts), so chunks may sit at any depth.
// A CommonJS package imported with import() has only a default export in the bundle (esbuild
// cannot see its names), while Node's own loader also offers its named exports: take `default`
// (src/people/mfa.ts, src/cli/context.ts; the container test holds every such import to that).
// dist/server.js runs main() when it is the file node was given (the end of src/server.ts): the
// CLI imports it only dynamically, so it stays an entry file of its own, never a shared chunk.
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

/** Not bundled: native addons, and pg's optional native binding. */
export const EXTERNAL = ['bcrypt', 'better-sqlite3', '@node-rs/argon2', 'pg-native'];

/**
 * Bundles into `outdir` (emptied first); `sourcemap`: esbuild's option ('linked' for dist/,
 * 'inline' for tests). Returns what test/server/container.test.ts checks: what the bundle imports
 * from outside itself (Node's built-ins and the packages it leaves to node_modules), and the
 * CommonJS packages it loads with import(), each a chunk with only a default export.
 */
export async function bundle({ outdir = join(ROOT, 'dist'), sourcemap = 'linked' }: { outdir?: string; sourcemap?: BuildOptions['sourcemap'] } = {}): Promise<{ externalImports: string[]; dynamicCommonJs: string[] }> {
  rmSync(outdir, { recursive: true, force: true });
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: { server: 'src/server.ts', cli: 'src/cli.ts' },
    outdir,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // Bundled CommonJS packages call require(); an ES module has none of its own.
    banner: { js: "import { createRequire as __gatehouseCreateRequire } from 'node:module'; const require = __gatehouseCreateRequire(import.meta.url);" },
    // No keepNames: it wraps every function made, closures in hot paths too, in a call that sets
    // its name (about 6% more CPU per token request). esbuild renames a top-level name only when
    // two bundled modules both use it (today none of ours or the engine's classes).
    sourcemap,
    logLevel: 'warning',
    metafile: true,
  });
  chmodSync(join(outdir, 'cli.js'), 0o755);
  const outputs = Object.values(metafile.outputs);
  const externalImports = outputs.flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path));
  const dynamicCommonJs = outputs
    .filter((output) => output.entryPoint?.includes('node_modules/') && output.exports.join() === 'default')
    .map((output) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(output.entryPoint!)![1]!);
  return { externalImports: [...new Set(externalImports)].sort(), dynamicCommonJs: [...new Set(dynamicCommonJs)].sort() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
