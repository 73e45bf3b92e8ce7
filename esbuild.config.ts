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
// The engine's own code is bundled as it is, but for one rewrite (engineErrorsWhenThrown): an
// assertion's error is built only when the assertion fails. Koa's and pg's checks for fetch's
// Response, and ES imports of node:http, are changed so as not to load Node's fetch in every
// process (withoutFetchUntilUsed).
// Two things keep a running process's heap smaller: Prisma's query compilers ship as .wasm files in
// dist/chunks/ rather than as base64 text (queryCompilerAsFile), and every file is ASCII, comments
// included (keepAscii), so V8 holds the source at one byte a character.
// dist/server.js runs main() when it is the file node was given (the end of src/server.ts): the
// CLI imports it only dynamically, so it stays an entry file of its own, never a shared chunk.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, transform, type BuildOptions, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

/** Not bundled: native addons, and pg's optional native binding. */
export const EXTERNAL = ['bcrypt', 'better-sqlite3', '@node-rs/argon2', 'pg-native'];

/** Where chunks go in `outdir` (esbuild's `chunkNames`), Prisma's query compilers too. */
const CHUNKS = 'chunks';

/**
 * Prisma's query compiler is WebAssembly, which each generated client imports from a module that
 * holds it as base64 text (2.2 MB). Once loaded, that module's source and its string stay on the
 * heap for as long as the process runs (4.4 MB), and the text is needed only once, to compile.
 * The bundle ships the bytes as a file in chunks/ instead, and the module the client imports
 * reads them from there: the same `wasm` export, as bytes (the client hands it to Buffer.from,
 * which copies bytes as they are and decodes only text from base64).
 */
function queryCompilerAsFile(outdir: string): Plugin {
  const namespace = 'query-compiler-file';
  return {
    name: namespace,
    setup(build) {
      build.onResolve({ filter: /^@prisma\/client\/runtime\/query_compiler_\w+\.(sqlite|postgresql)\.wasm-base64\.mjs$/ }, async (args) => {
        if (args.pluginData === namespace) return undefined;
        const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: namespace });
        return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path, namespace };
      });
      build.onLoad({ filter: /.*/, namespace }, async (args) => {
        const { wasm } = (await import(pathToFileURL(args.path).href)) as { wasm: unknown };
        if (typeof wasm !== 'string') throw new Error(`${args.path} no longer exports its WebAssembly as base64 text: check @prisma/client`);
        const file = basename(args.path).replace(/\.wasm-base64\.mjs$/, '.wasm');
        mkdirSync(join(outdir, CHUNKS), { recursive: true });
        writeFileSync(join(outdir, CHUNKS, file), Buffer.from(wasm, 'base64'));
        return { contents: `import { readFileSync } from 'node:fs';\nexport const wasm = readFileSync(new URL(${JSON.stringify(`./${file}`)}, import.meta.url));\n`, loader: 'js', resolveDir: ROOT };
      });
    },
  };
}

/** Where the engine's modules are, and the one form of its assertions engineErrorsWhenThrown rewrites. */
const ENGINE_MODULE = /[\\/]node_modules[\\/]oidc-provider[\\/]lib[\\/].*\.js$/;
const ENGINE_ASSERTION = /^(\s*)ctx\.assert\((.+), (new [A-Z]\w*\(.*\))\);$/gm;

/**
 * The engine checks a few things with Koa's `ctx.assert(value, new SomeError(...))`, which builds
 * the error before it knows whether it will throw it, and an error captures the stack where it is
 * made, twice for the engine's errors (its constructor and Error.captureStackTrace), async frames
 * included. Every /userinfo request makes three such errors it never throws (the access token,
 * its client and its account found): about a sixth of that request's CPU (README "Performance",
 * round 20). Each becomes `if (!(value)) throw new SomeError(...)`, which throws the same error in
 * the same case: Koa's assert, given an error, throws that error and sets its `status` and
 * `expose` to what the engine's errors already hold. The build fails if an assertion of that kind
 * is left in a form this does not know.
 */
export function rewriteEngineAssertions(source: string, file: string): { contents: string; rewritten: number } {
  let rewritten = 0;
  const contents = source.replace(ENGINE_ASSERTION, (_line, indent: string, value: string, error: string) => {
    rewritten += 1;
    return `${indent}if (!(${value})) throw ${error};`;
  });
  const left = /\bctx\.assert\([^;]*?\bnew [A-Z]\w*\(/s.exec(contents);
  if (left) throw new Error(`${file}: an assertion that builds its error up front, in a form the build cannot rewrite: ${left[0].replace(/\s+/g, ' ')}`);
  return { contents, rewritten };
}

function engineErrorsWhenThrown(rewrites: Map<string, number>): Plugin {
  return {
    name: 'engine-errors-when-thrown',
    setup(build) {
      build.onLoad({ filter: ENGINE_MODULE }, (args) => {
        const { contents, rewritten } = rewriteEngineAssertions(readFileSync(args.path, 'utf8'), args.path);
        if (rewritten) rewrites.set(args.path.slice(args.path.lastIndexOf('oidc-provider')), rewritten);
        return { contents, loader: 'js' };
      });
    },
  };
}

/**
 * Node's fetch (its copy of undici) loads the first time anything reads one of the globals it
 * serves (`Response`, `Headers`, `fetch`, …) or, on Node 22 and 24, the lazy `WebSocket` export
 * of node:http, and compiles its HTTP parser's WebAssembly as it loads: 13, 15 and 18 MB more
 * resident in an empty process on Node 20, 22 and 24; in a started Gatehouse on Node 22, 2-4 MB
 * at rest, and on Node 20 50-100 ms of the first request that loaded it (README "Performance",
 * round 29).
 * Gatehouse fetches only for a client's `jwks_uri` or `sector_identifier_uri`, an upstream
 * provider or a back-channel logout, yet three things loaded it in every process; the bundle
 * changes each so that it asks only when the answer can matter (withoutFetchUntilUsed):
 * - Koa asks of every response body that is not a string or a Buffer (the engine's JSON answers)
 *   whether it is a fetch `Response`. Each `x instanceof Response` in Koa's modules becomes
 *   `(typeof x?.arrayBuffer === "function" && x instanceof Response)`: the same answer for every
 *   value (a Response has `arrayBuffer` from its prototype), the global read only for a value
 *   that could be one.
 * - pg, as it loads, asks whether it runs in a Cloudflare Worker: by `navigator.userAgent` where
 *   there is a `navigator` (Node 21 and later, Workers since 2022), else by making a `Response`.
 *   Only the first way is kept: where there is no `navigator` (Node 20), it is not a Worker.
 * - An ES module's `import … from 'node:http'` makes Node read every export of node:http to
 *   build the module's ES facade, `WebSocket` among them on Node 22 and 24. Every such import in
 *   the bundle gets a CommonJS module of the build's own that requires node:http (through the
 *   banner's `require`), whose exports are read one by one where they are used; `require()`
 *   calls stay as they are (httpThroughRequire).
 * The build fails if Koa's or pg's code is no longer in the form these rewrites know.
 */
const FETCH_PROBES: { module: RegExp; rewrite(source: string): { contents: string; rewritten: number } }[] = [
  { module: /[\\/]node_modules[\\/]koa[\\/]lib[\\/](response|application)\.js$/, rewrite: rewriteFetchResponseChecks },
  { module: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/, rewrite: rewriteWorkerProbe },
];

export function rewriteFetchResponseChecks(source: string): { contents: string; rewritten: number } {
  let rewritten = 0;
  const contents = source.replace(/\b([\w$]+) instanceof Response\b/g, (_check, value: string) => {
    rewritten += 1;
    return `(typeof ${value}?.arrayBuffer === "function" && ${value} instanceof Response)`;
  });
  return { contents, rewritten };
}

export function rewriteWorkerProbe(source: string): { contents: string; rewritten: number } {
  const probe = "if (typeof Response === 'function') {";
  const count = source.split(probe).length - 1;
  return { contents: source.replace(probe, "if (typeof navigator === 'object' && typeof Response === 'function') {"), rewritten: count };
}

function withoutFetchUntilUsed(rewrites: Map<string, number>): Plugin {
  return {
    name: 'without-fetch-until-used',
    setup(build) {
      for (const { module, rewrite } of FETCH_PROBES) {
        build.onLoad({ filter: module }, (args) => {
          const { contents, rewritten } = rewrite(readFileSync(args.path, 'utf8'));
          const name = /node_modules[\\/](.*)$/.exec(args.path)![1]!.replaceAll('\\', '/');
          if (rewritten !== 1) throw new Error(`${name}: ${rewritten} checks for fetch's Response where the build rewrites exactly one; see withoutFetchUntilUsed`);
          rewrites.set(name, rewritten);
          return { contents, loader: 'js' };
        });
      }
    },
  };
}

/** The third change above: every ES import of node:http becomes a `require` of it. */
function httpThroughRequire(): Plugin {
  const namespace = 'http-through-require';
  return {
    name: namespace,
    setup(build) {
      build.onResolve({ filter: /^(node:)?http$/ }, (args) => (args.kind === 'require-call' ? undefined : { path: 'node:http', namespace }));
      build.onLoad({ filter: /.*/, namespace }, () => ({ contents: "module.exports = require('node:http');", loader: 'js' }));
    },
  };
}

/**
 * Bundles into `outdir` (emptied first); `sourcemap`: esbuild's option ('linked' for dist/,
 * 'inline' for tests). Returns what test/server/container.test.ts checks: what the bundle imports
 * from outside itself (Node's built-ins and the packages it leaves to node_modules), and the
 * CommonJS packages it loads with import(), each a chunk with only a default export; how many
 * of the engine's assertions each of its modules had rewritten (engineErrorsWhenThrown), and
 * the checks for fetch's Response rewritten in each module (withoutFetchUntilUsed).
 */
export async function bundle({ outdir = join(ROOT, 'dist'), sourcemap = 'linked' }: { outdir?: string; sourcemap?: BuildOptions['sourcemap'] } = {}): Promise<{ externalImports: string[]; dynamicCommonJs: string[]; engineAssertions: Map<string, number>; fetchProbes: Map<string, number> }> {
  rmSync(outdir, { recursive: true, force: true });
  const engineAssertions = new Map<string, number>();
  const fetchProbes = new Map<string, number>();
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: { server: 'src/server.ts', cli: 'src/cli.ts' },
    outdir,
    chunkNames: `${CHUNKS}/[name]-[hash]`,
    plugins: [queryCompilerAsFile(outdir), engineErrorsWhenThrown(engineAssertions), withoutFetchUntilUsed(fetchProbes), httpThroughRequire()],
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
  // The query compilers' modules find their bytes beside themselves, in chunks/.
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (Object.keys(output.inputs).some((input) => input.startsWith('query-compiler-file:')) && basename(dirname(file)) !== CHUNKS) throw new Error(`${file} holds a query compiler's module, outside ${CHUNKS}/ where its WebAssembly is`);
  }
  for (const file of Object.keys(metafile.outputs)) if (file.endsWith('.js')) await keepAscii(join(ROOT, file));
  const outputs = Object.values(metafile.outputs);
  const externalImports = outputs.flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path));
  const dynamicCommonJs = outputs
    .filter((output) => output.entryPoint?.includes('node_modules/') && output.exports.join() === 'default')
    .map((output) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(output.entryPoint!)![1]!);
  return { externalImports: [...new Set(externalImports)].sort(), dynamicCommonJs: [...new Set(dynamicCommonJs)].sort(), engineAssertions, fetchProbes };
}

/**
 * esbuild writes every character past ASCII in strings, regular expressions and names as an
 * escape (its default `charset: 'ascii'`) but keeps comments as they were written. One character
 * past Latin-1 in a comment (the Korean messages' notes, a dependency's "—") makes V8 hold that
 * chunk's whole source text, which it keeps for as long as the process runs, at two bytes a
 * character: 2 MB more of heap for the two chunks a server loads today. So each such character
 * becomes "?", one per UTF-16 unit so that columns (and the source maps) stay right, and the
 * build fails unless the file then differs from esbuild's only in comments (the same code once
 * both are minified).
 */
export async function keepAscii(file: string): Promise<void> {
  const written = readFileSync(file, 'utf8');
  const ascii = written.replace(/[\u0080-\uffff]/g, '?');
  if (ascii === written) return;
  const code = async (text: string) => (await transform(text, { loader: 'js', minifyWhitespace: true, logLevel: 'silent' })).code;
  if ((await code(ascii)) !== (await code(written))) throw new Error(`${file}: a character past ASCII outside a comment (esbuild escapes those); the bundle is left as esbuild wrote it`);
  writeFileSync(file, ascii);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
