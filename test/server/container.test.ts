// What can be checked of the container without a Docker engine: every COPY source exists and
// survives .dockerignore, the runtime stage's layout (rebuilt from its COPY lines, with a fresh
// bundle from esbuild.config.ts as dist/) starts with `node dist/server.js` in production mode, answers
// discovery and its HEALTHCHECK command, and stops on SIGTERM with exit 0; nothing the built
// code imports is a dev dependency; compose.yaml wires Gatehouse to a healthy PostgreSQL 16.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { bundle, EXTERNAL, keepAscii, rewriteEngineAssertions, rewriteFetchResponseChecks, rewriteWorkerProbe } from '../../esbuild.config.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';
import { loadedProbe } from '../helpers/loaded-probe.js';
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile → stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw) && !current) continue;
    if (/^\s*#/.test(raw)) continue; // comment inside a continuation
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/s.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
    }
    stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly destination: string;
}

function parseCopy(args: string): Copy {
  const words = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.trim().split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  const paths = words.filter((word) => !word.startsWith('--'));
  return {
    from: flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length),
    sources: paths.slice(0, -1),
    destination: paths.at(-1)!,
  };
}

/** .dockerignore semantics: patterns relative to the context root, `*` within a segment, `**` across, `!` re-includes, last match wins, a match on a directory covers what is inside. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .split('')
        .map((c, i, all) => {
          if (c === '*' && all[i + 1] === '*') return '';
          if (c === '*' && all[i - 1] === '*') return all[i + 1] === '/' ? '(?:.*/)?' : '.*';
          if (c === '/' && all[i - 1] === '*' && all[i - 2] === '*') return '';
          if (c === '*') return '[^/]*';
          if (c === '?') return '[^/]';
          return c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('')}$`,
    );
  const segments = path.split('/');
  const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const regExp = toRegExp(negated ? pattern.slice(1) : pattern);
    if (prefixes.some((prefix) => regExp.test(prefix))) ignored = !negated;
  }
  return ignored;
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.at(-1)!;
const ignorePatterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split(/\r?\n/)
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));
const contextCopies = dockerfile.flatMap((stage) => stage.instructions.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args))).filter((copy) => !copy.from);

/** The runtime stage's environment (`ENV NAME=value …`), name → value. */
const runtimeEnv = new Map(runtime.instructions.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)].map((m) => [m[1]!, m[2] ?? m[3]!] as const)));

describe('Dockerfile', () => {
  it('copies only paths that exist in the repository', () => {
    const sources = contextCopies.flatMap((copy) => copy.sources);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
  });

  it('copies nothing that .dockerignore leaves out of the build context', () => {
    for (const source of contextCopies.flatMap((copy) => copy.sources)) {
      expect(dockerIgnored(ignorePatterns, source), `COPY ${source} is excluded by .dockerignore`).toBe(false);
      // Every tracked file under a copied directory reaches the image (migrations, views, sources).
      const tracked = execFileSync('git', ['ls-files', '--', source], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
      expect(tracked.length, `git ls-files ${source}`).toBeGreaterThan(0);
      for (const file of tracked) expect(dockerIgnored(ignorePatterns, file), `${file} (under COPY ${source}) is excluded by .dockerignore`).toBe(false);
    }
    // …while what must be made inside the image, or never leave the host, stays out.
    for (const path of ['node_modules/express/package.json', 'dist/server.js', 'src/generated/sqlite/client.ts', '.env', 'data/gatehouse.db', '.git/HEAD']) {
      expect(dockerIgnored(ignorePatterns, path), path).toBe(true);
    }
  });

  it("gives `npm run start:dist` the image's Node options (heap limit, young generation) and malloc arenas, which NODE_OPTIONS and MALLOC_ARENA_MAX override as they do there", () => {
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:dist']!;
    expect(script).toMatch(/(^| )(exec )?node dist\/server\.js$/);
    const imageOptions = runtimeEnv.get('NODE_OPTIONS')?.split(' ') ?? [];
    expect(imageOptions).toContainEqual(expect.stringMatching(/^--max-old-space-size=\d+$/));
    expect(imageOptions).toContainEqual(expect.stringMatching(/^--max-semi-space-size=\d+$/));
    // The script as npm runs it (sh -c), a probe in the server's place reporting what it was started with.
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-start-dist-'));
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, "process.stdout.write(JSON.stringify({ options: process.env.NODE_OPTIONS.split(' ').filter(Boolean), heapLimit: require('node:v8').getHeapStatistics().heap_size_limit, arenas: process.env.MALLOC_ARENA_MAX }))");
    const { NODE_OPTIONS: _options, MALLOC_ARENA_MAX: _arenas, ...unset } = process.env;
    const started = (env: Record<string, string>) => JSON.parse(execFileSync('sh', ['-c', script.replace('dist/server.js', `'${probe}'`)], { env: { ...unset, ...env }, encoding: 'utf8' })) as unknown;
    const heapLimitWith = (flags: string[]) => Number(execFileSync('node', [...flags, '-p', "require('node:v8').getHeapStatistics().heap_size_limit"], { env: unset, encoding: 'utf8' }));
    try {
      expect(started({})).toStrictEqual({ options: imageOptions, heapLimit: heapLimitWith(imageOptions), arenas: runtimeEnv.get('MALLOC_ARENA_MAX') });
      // The later of two equal flags wins.
      const raised = [...imageOptions, '--max-old-space-size=256'];
      expect(started({ NODE_OPTIONS: '--max-old-space-size=256', MALLOC_ARENA_MAX: '4' })).toStrictEqual({ options: raised, heapLimit: heapLimitWith(raised), arenas: '4' });
      expect(heapLimitWith(raised)).toBeGreaterThan(heapLimitWith(imageOptions));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs as a non-root user with a data volume, a health check and the compiled server', () => {
    const keywords = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    expect(keywords(runtime, 'USER').at(-1)).toMatch(/^(node|\d*[1-9]\d*)(:|$)/);
    expect(keywords(runtime, 'VOLUME').join(' ')).toContain('/data');
    expect(keywords(runtime, 'ENV').join(' ')).toMatch(/DATABASE_URL=file:\/data\//);
    expect(keywords(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
    // As the bench runs Gatehouse (test/bench/bench.ts: --heap's default, IMAGE_YOUNG_GENERATION, MALLOC_ARENA_MAX).
    expect(runtimeEnv.get('MALLOC_ARENA_MAX')).toBe('2');
    expect(runtimeEnv.get('NODE_OPTIONS')).toBe('--max-old-space-size=128 --max-semi-space-size=16');
    expect(keywords(runtime, 'HEALTHCHECK')).toHaveLength(1);
    expect(JSON.parse(keywords(runtime, 'CMD').at(-1)!)).toStrictEqual(['node', 'dist/server.js']);
    // The build stage builds; dev dependencies never reach the runtime stage.
    const runs = dockerfile.slice(0, -1).flatMap((stage) => keywords(stage, 'RUN')).join('\n');
    expect(runs).toContain('npm ci');
    expect(runs).toContain('npm run build');
    expect(runs).toContain('npm prune --omit=dev');
    const nodeModules = keywords(runtime, 'COPY').map(parseCopy).find((copy) => copy.destination.replace(/\/$/, '').endsWith('node_modules'));
    const pruned = dockerfile.find((stage) => stage.name === nodeModules?.from);
    expect(pruned && keywords(pruned, 'RUN').join('\n'), 'node_modules comes from the stage that prunes dev dependencies').toContain('npm prune --omit=dev');
  });
});


/** The text of every hand-written TypeScript file under src/. */
function sources(): string[] {
  return filesUnder(join(ROOT, 'src'))
    .filter((file) => file.endsWith('.ts') && !file.includes(`${sep}generated${sep}`))
    .map((file) => readFileSync(file, 'utf8'));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]));
}

describe('the runtime stage, rebuilt from its COPY lines in a temporary directory', () => {
  let work: string;
  let app: string;
  let child: ChildProcess | undefined;
  let bundled: Awaited<ReturnType<typeof bundle>>;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'gatehouse-container-'));
    app = join(work, 'app');
    mkdirSync(app);
    // `npm run build`'s bundle, into a directory of our own (`npm test` type-checks).
    bundled = await bundle({ outdir: join(work, 'build/dist') });
    const workdir = runtime.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)!.args.replace(/\/$/, '');
    for (const instruction of runtime.instructions.filter((i) => i.keyword === 'COPY')) {
      const copy = parseCopy(instruction.args);
      const destination = join(app, posix.relative(workdir, posix.resolve(workdir, copy.destination)));
      for (const source of copy.sources) {
        const name = posix.relative(workdir, source);
        if (copy.from && name === 'node_modules') {
          // The project's own node_modules (with dev dependencies: the import check below covers those).
          mkdirSync(dirname(destination), { recursive: true });
          symlinkSync(join(ROOT, 'node_modules'), destination, 'dir');
        } else if (copy.from && name === 'dist') {
          cpSync(join(work, 'build/dist'), destination, { recursive: true });
        } else if (copy.from) {
          throw new Error(`the runtime stage copies ${source} from ${copy.from}: teach this test where that comes from`);
        } else {
          const target = copy.destination.endsWith('/') && !source.endsWith('/') ? join(destination, posix.basename(source)) : destination;
          cpSync(join(ROOT, source), target, { recursive: true });
        }
      }
    }
  }, 180_000);

  afterAll(() => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('imports only production dependencies and Node built-ins at run time', () => {
    const { dependencies = {} } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const builtins = new Set(builtinModules);
    const packageOf = (specifier: string) => (specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    // What the bundle leaves to node_modules (esbuild's own record of it), and what our code
    // loads there through createRequire, which no bundler follows.
    const external = bundled.externalImports.filter((specifier) => !specifier.startsWith('node:') && !builtins.has(specifier.split('/')[0]!)).map(packageOf);
    const required = sources()
      .flatMap((source) => [...source.matchAll(/createRequire\(import\.meta\.url\)(?:\.resolve)?\(\s*'([^']+)'/g)].map(([, specifier = '']) => packageOf(specifier)));
    expect(new Set(external), 'the bundle leaves out exactly its externals').toStrictEqual(new Set(EXTERNAL));
    expect(required.length).toBeGreaterThan(1);
    // pg-native is pg's optional binding, loaded only through pg.native, which Gatehouse never reads.
    for (const name of new Set([...external.filter((name) => name !== 'pg-native'), ...required])) expect(dependencies, `dist/ imports ${name}`).toHaveProperty([name]);
  });

  it('takes the default export of every CommonJS package the code loads with import(), the one export such a package has in the bundle', () => {
    expect(bundled.dynamicCommonJs).toContain('qrcode');
    const dynamicImports = sources().flatMap((source) => [...source.matchAll(/(.{0,80})import\('([^'.][^']*)'\)(.{0,40})/g)]);
    for (const name of bundled.dynamicCommonJs) {
      const uses = dynamicImports.filter(([, , specifier]) => specifier === name);
      expect(uses.length, `import('${name}') in src/`).toBeGreaterThan(0);
      for (const [text, before = '', , after = ''] of uses) expect(/\{ default: \w+ \}/.test(before) || /^\.then\(\(\{ default: \w+ \}\)/.test(after), `${text.trim()}: take { default }`).toBe(true);
    }
  });

  it("writes its code as ASCII, comments too, so that V8 holds each chunk's source at one byte a character", () => {
    const files = readdirSync(join(work, 'build/dist'), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.js'));
    expect(files.length).toBeGreaterThan(10);
    // src/http/messages/ko-mail.ts has comments in Korean.
    expect(readFileSync(join(ROOT, 'src/http/messages/ko-mail.ts'), 'utf8')).toMatch(/[\u0100-\uffff]/);
    for (const name of files) expect(/[\u0080-\uffff]/.exec(readFileSync(join(work, 'build/dist', name), 'utf8'))?.[0], name).toBeUndefined();
  });

  it("ships Prisma's query compilers as WebAssembly files beside the chunks, not as base64 text a process would keep on its heap", () => {
    const dist = join(work, 'build/dist');
    for (const flavour of ['sqlite', 'postgresql']) {
      const wasm = readFileSync(join(dist, `chunks/query_compiler_small_bg.${flavour}.wasm`));
      expect(wasm.subarray(0, 4).toString('latin1'), flavour).toBe('\0asm');
    }
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.js'));
    // "\0asm" in base64, as every WebAssembly module held as base64 text begins.
    for (const name of files) expect(readFileSync(join(dist, name), 'utf8').includes('"AGFzbQ'), name).toBe(false);
  });

  it('turns only comments into ASCII, and refuses to touch code that holds a character past ASCII', async () => {
    const file = join(work, 'ascii-check.js');
    writeFileSync(file, 'export const a = "\\u2014"; // a note — in Korean: 메일\n/* … */ export const b = 1;\n');
    await keepAscii(file);
    expect(readFileSync(file, 'utf8')).toBe('export const a = "\\u2014"; // a note ? in Korean: ??\n/* ? */ export const b = 1;\n');
    // String.raw keeps what it is given: esbuild cannot escape it, and "?" would change it.
    writeFileSync(file, 'export const c = String.raw`—`;\n');
    await expect(keepAscii(file)).rejects.toThrow('a character past ASCII outside a comment');
    expect(readFileSync(file, 'utf8')).toBe('export const c = String.raw`—`;\n');
  });

  it("builds the engine's assertion errors only when an assertion fails, in the form the engine throws them", () => {
    // Every /userinfo request asserts these three (access token, client and account found).
    expect(bundled.engineAssertions.get('oidc-provider/lib/shared/access_token.js')).toBe(3);
    const files = readdirSync(join(work, 'build/dist'), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.js'));
    const engine = files.map((name) => readFileSync(join(work, 'build/dist', name), 'utf8')).find((text) => text.includes('associated account not found'));
    expect(engine).toMatch(/if \(!account\d*\) throw new InvalidToken\("associated account not found"\);/);
    expect(engine).not.toMatch(/ctx\.assert\(/);

    const { contents, rewritten } = rewriteEngineAssertions(
      "  ctx.assert(ctx.oidc.body.client_id === client.clientId, new InvalidRequest('the client\\'s id (a, b)'));\n  ctx.assert(ok, 400);\n",
      'engine.js',
    );
    expect(rewritten).toBe(1);
    expect(contents).toBe("  if (!(ctx.oidc.body.client_id === client.clientId)) throw new InvalidRequest('the client\\'s id (a, b)');\n  ctx.assert(ok, 400);\n");
    // An assertion spread over lines is a form it does not know: the build stops rather than leave it.
    expect(() => rewriteEngineAssertions("ctx.assert(found,\n  new InvalidToken('gone'));\n", 'engine.js')).toThrow('engine.js: an assertion that builds its error up front');
  });

  it("asks whether something is fetch's Response, which loads Node's fetch, only where the answer can matter", () => {
    // Koa's body setter and its answer to the request, and pg's check for a Cloudflare Worker as it loads.
    expect(Object.fromEntries(bundled.fetchProbes)).toEqual({ 'koa/lib/response.js': 1, 'koa/lib/application.js': 1, 'pg/lib/stream.js': 1 });
    const { contents, rewritten } = rewriteFetchResponseChecks('val instanceof Response');
    expect(rewritten).toBe(1);
    const ask = (val: unknown) => {
      let reads = 0;
      const globals = {
        val,
        get Response() {
          reads++;
          return Response;
        },
      };
      return { answer: runInNewContext(contents, globals) as boolean, reads };
    };
    // The engine's JSON answers, and every other value without an arrayBuffer method, never read the global.
    for (const val of [{ issuer: 'x' }, null, undefined, 7, 'text', ['a']]) expect(ask(val)).toEqual({ answer: false, reads: 0 });
    // A value that has one is asked as before.
    expect(ask(new Request('http://127.0.0.1/'))).toEqual({ answer: false, reads: 1 });
    expect(ask(new Response('body'))).toEqual({ answer: true, reads: 1 });
    // pg's check is made by navigator alone, and a module not in the form the build knows stops it.
    expect(rewriteWorkerProbe("if (typeof Response === 'function') {\n").contents).toBe("if (typeof navigator === 'object' && typeof Response === 'function') {\n");
    expect(rewriteWorkerProbe('if (globalThis.Response) {').rewritten).toBe(0);
  });

  it('starts `node dist/server.js` in production mode, answers discovery and the HEALTHCHECK, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const imageEnv: Record<string, string> = Object.fromEntries(runtimeEnv);
    // What the server's process loaded that it should not need, written as it exits (below).
    const loaded = loadedProbe(work);
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...imageEnv,
      NODE_OPTIONS: loaded.nodeOptions(imageEnv.NODE_OPTIONS),
      HOST: '127.0.0.1',
      PORT: String(port),
      ISSUER: 'https://id.example.test',
      SECRETS: TEST_SECRET,
      TRUST_PROXY: '1',
      DATABASE_URL: `file:${join(work, 'data/gatehouse.db')}`,
      LOG_LEVEL: 'info',
      // The background jobs every serving process runs (the sweeps, the signing keys' retirement,
      // the key poll), every second here instead of every 10 minutes and 30 seconds.
      SWEEP_INTERVAL: '1s',
      KEY_REFRESH_INTERVAL: '1s',
    };
    expect(env.NODE_ENV).toBe('production');
    // Outside production the default is 127.0.0.1; the image listens on every interface on purpose.
    expect(imageEnv.HOST).toBe('0.0.0.0');
    const cmd = JSON.parse(runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)!.args) as string[];
    child = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    let discovery: { issuer?: string; token_endpoint?: string } | undefined;
    const deadline = Date.now() + 30_000;
    while (!discovery) {
      if (child.exitCode !== null) throw new Error(`node dist/server.js exited with ${child.exitCode}:\n${output}`);
      try {
        const response = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`, { headers: { 'X-Forwarded-Proto': 'https' } });
        if (response.ok) discovery = (await response.json()) as typeof discovery;
      } catch {
        // not listening yet
      }
      if (discovery) break;
      if (Date.now() > deadline) throw new Error(`discovery did not answer within 30 s:\n${output}`);
      await sleep(100);
    }
    expect(discovery).toMatchObject({ issuer: 'https://id.example.test' });
    expect(discovery?.token_endpoint).toMatch(/^https:\/\//);
    expect(output).toMatch(/applied database migrations/);
    // The engine's rewritten assertion (above) refuses an unknown access token as the engine does.
    const userinfo = await fetch(`http://127.0.0.1:${port}/userinfo`, { headers: { authorization: 'Bearer not-a-token', 'X-Forwarded-Proto': 'https' } });
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);

    // The image's HEALTHCHECK command, run as Docker would (exec form) with the container's env.
    const [healthKind, ...health] = JSON.parse(/\bCMD\s+(\[.*\])\s*$/s.exec(runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK')!.args)![1]!) as string[];
    expect(healthKind).toBe('node');
    expect(health.join(' ')).toContain('/healthz');
    await expect(promisify(execFile)(process.execPath, health, { env, timeout: 5000 })).resolves.toBeDefined();
    // Long enough for two rounds of the background jobs.
    await sleep(2500);

    child.kill('SIGTERM');
    expect(await exited, output).toBe(0);
    expect(output).toContain('shutting down');
    // Its first start on a new database, discovery, a refused token, the health checks and the
    // background jobs compiled no WebAssembly: neither Prisma's query compiler (8-30 MB) nor Node's
    // fetch with its HTTP parser, neither of which serving needs (README "Performance", rounds 29 and 30).
    expect(loaded.of(child.pid!)).toEqual({ webAssembly: 0, fetch: false });
  }, 45_000);

  it('has the `gatehouse` command line compiled in, as the package\'s bin, and it runs there', async () => {
    const { bin, scripts } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(bin).toStrictEqual({ gatehouse: 'dist/cli.js' });
    expect(readFileSync(join(app, bin.gatehouse!), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    expect(scripts.build).toContain('esbuild.config.ts');
    expect(statSync(join(app, bin.gatehouse!)).mode & 0o111, 'dist/cli.js is executable').toBe(0o111);
    const env = { PATH: process.env.PATH, NODE_ENV: 'production', ISSUER: 'https://id.example.test', SECRETS: TEST_SECRET, TRUST_PROXY: '1', DATABASE_URL: `file:${join(work, 'data/cli.db')}` };
    const { stdout } = await promisify(execFile)(process.execPath, [bin.gatehouse!, 'migrate', '--json'], { cwd: app, env });
    expect((JSON.parse(stdout) as { applied: string[] }).applied.length).toBeGreaterThan(0);
    const { stdout: version } = await promisify(execFile)(process.execPath, [bin.gatehouse!, '--version'], { cwd: app, env });
    expect(version.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  }, 30_000);
});

describe('compose.yaml', () => {
  const compose = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8')) as {
    services: Record<string, Record<string, unknown> & { environment?: Record<string, string>; depends_on?: Record<string, { condition?: string }> }>;
    volumes?: Record<string, unknown>;
  };

  it('runs Gatehouse from the Dockerfile next to PostgreSQL 16 with a named volume and a pg_isready health check', () => {
    const { gatehouse, postgres } = compose.services;
    expect(gatehouse).toBeDefined();
    expect(postgres).toBeDefined();
    expect(postgres!.image).toMatch(/^postgres:16(\b|$)/);
    const healthcheck = postgres!.healthcheck as { test: string[] | string };
    expect(JSON.stringify(healthcheck.test)).toContain('pg_isready');
    const volumes = postgres!.volumes as string[];
    const named = volumes.map((v) => v.split(':')[0]!).find((source) => Object.keys(compose.volumes ?? {}).includes(source));
    expect(named, 'PostgreSQL keeps its data in a named volume').toBeDefined();
    expect(volumes.find((v) => v.startsWith(`${named}:`))).toMatch(/:\/var\/lib\/postgresql\/data$/);

    const build = gatehouse!.build as string | { context?: string; dockerfile?: string };
    expect(typeof build === 'string' ? build : build.context).toBe('.');
    expect(gatehouse!.depends_on?.postgres?.condition).toBe('service_healthy');
  });

  it('points Gatehouse at that PostgreSQL and asks for ISSUER, SECRETS and TRUST_PROXY', () => {
    const env = compose.services.gatehouse!.environment!;
    expect(env.NODE_ENV).toBe('production');
    expect(env.DATABASE_URL).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\//);
    for (const name of ['ISSUER', 'SECRETS', 'TRUST_PROXY']) expect(env, name).toHaveProperty([name]);
    expect(env.SECRETS).toMatch(/^\$\{SECRETS:\?/); // no default secret: compose refuses to start without one
  });
});
