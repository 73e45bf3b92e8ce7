// `npm run bench`: Gatehouse on SQLite and on PostgreSQL against two baselines, each server in
// its own process on 127.0.0.1:
// - "bare": the oidc-provider engine bare on node:http, with its in-memory adapter, static
//   clients and the minimal configuration (bare-engine-server.ts): what the engine costs alone;
// - "baseline": the same engine configured by Gatehouse's own createProvider() from the same
//   environment, keys and rows, with the in-memory adapter (baseline-server.ts): Gatehouse's
//   engine configuration without its storage, pipeline and hooks;
// - "authlib": a Flask + Authlib server on SQLite under gunicorn with 2 workers
//   (authlib_server.py, 4 threads each), the stack people most often hand-roll, against which Gatehouse also runs
//   with WEB_CONCURRENCY=2 on SQLite ("sqlite 2 workers"). Skipped, with one line saying why, when
//   /usr/bin/gunicorn or the Python packages are missing (authlib.ts).
// Per scenario: requests/s (median of the runs), p50/p99 latency, errors, and the ratio to each
// baseline; per server: peak RSS and cold start. Runs of the servers are interleaved (bare,
// baseline, sqlite, postgresql, bare, ...) so that noise from a shared machine falls on all of them
// alike. Each run also reads the server's own CPU time (/proc/<pid>/stat): "cpu ×" is a baseline's
// CPU per request over this server's, the throughput ratio they would have with a core each
// (PostgreSQL's own CPU is not counted), which stays meaningful when other work on the machine
// makes rates noisy. Not a test: nothing here asserts a timing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { BENCH_SECRET, seedBenchData } from './fixtures.js';
import { describeDrift, workloadMs } from './machine-speed.js';
import { FLOW_SCENARIOS, SCENARIO_TITLES, SCENARIOS, prepareScenario, type PreparedScenario, type RunResult, type ScenarioName } from './scenarios.js';
import { dropRequestLines, startServer, type RunningServer, type ServerSpec } from './servers.js';
import { authlibMissing, seedAuthlib } from './authlib.js';

const DATABASES = ['sqlite', 'postgresql'] as const;
/** The servers every other is compared with, in the order of the ratio columns (authlib only when it runs). */
const ALL_BASELINES = ['bare', 'baseline', 'authlib'] as const;
let BASELINES: readonly string[] = ALL_BASELINES;
/** Gatehouse on SQLite with WEB_CONCURRENCY=2, run beside the Authlib baseline. */
const TWO_WORKERS = 'sqlite 2 workers';
/**
 * The young generation the Dockerfile pins (Node 20's and 22's default): Node 24's default is
 * twice that, and beside the 128 MB heap limit it ran a full collection every 40 ms (README
 * "Performance").
 */
const IMAGE_YOUNG_GENERATION = '--max-semi-space-size=16';
const list = <T extends string>(allowed: readonly T[], name: string) =>
  z
    .string()
    .transform((value) => value.split(',').map((v) => v.trim()).filter(Boolean))
    .pipe(z.array(z.enum(allowed as unknown as [T, ...T[]], { message: `${name}: each must be one of ${allowed.join(', ')}` })).min(1, `${name}: name at least one`));
const count = (name: string, min: number, max: number) =>
  z.coerce.number({ message: `${name}: must be a number` }).int(`${name}: must be a whole number`).min(min, `${name}: at least ${min}`).max(max, `${name}: at most ${max}`);

const OptionsSchema = z.object({
  duration: count('--duration (seconds per run)', 1, 600).default(3),
  warmup: count('--warmup (seconds)', 0, 600).default(1),
  runs: count('--runs', 1, 50).default(3),
  connections: count('--connections', 1, 1024).default(16),
  scenarios: list(SCENARIOS, '--scenarios').default([...SCENARIOS]),
  databases: list(DATABASES, '--databases').default([...DATABASES]),
  'cold-starts': count('--cold-starts', 1, 20).default(3),
  'bcrypt-cost': count('--bcrypt-cost', 4, 15).default(4),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  json: z.string().min(1).default('tmp/bench/latest.json'),
  profile: z.string().min(1).optional(),
  variant: z.array(z.string().regex(/^[A-Z][A-Z0-9_]*=[^,]*(,[A-Z][A-Z0-9_]*=[^,]*)*$/, '--variant: KEY=VALUE[,KEY=VALUE] (e.g. CLIENT_CACHE_TTL=0)')).default([]),
  source: z.boolean().default(false),
  compare: z.string().min(1).optional(),
  'skip-authlib': z.boolean().default(false),
  heap: count('--heap (MB)', 0, 65536).default(128),
  'node-flags': z
    .string()
    .regex(/^\s*--[\w-]+(=\S+)?(\s+--[\w-]+(=\S+)?)*\s*$/, '--node-flags: Node or V8 flags, space-separated, given with = (e.g. --node-flags="--trace-gc --max-semi-space-size=8")')
    .transform((flags) => flags.trim().split(/\s+/))
    .default([]),
  help: z.boolean().default(false),
});
type Options = z.output<typeof OptionsSchema>;

const USAGE = `npm run bench -- [options]
  --duration <s>        seconds per measured run (3)
  --warmup <s>          seconds of warm-up per scenario and server (1)
  --runs <n>            measured runs per scenario and server; the median is reported (3)
  --connections <n>     concurrent connections (and sign-in workers) (16)
  --scenarios <list>    ${SCENARIOS.join(',')}
  --databases <list>    sqlite,postgresql (both baselines always run)
  --cold-starts <n>     measured starts per server, after one unmeasured first start (3)
  --bcrypt-cost <n>     bcrypt cost of the people who sign in (4)
  --log-level <level>   LOG_LEVEL of the servers (info, as the image ships: a line per request;
                        between scenarios the bench drops those lines from the servers' logs)
  --json <file>         where the results go as JSON (tmp/bench/latest.json)
  --profile <dir>       run the Gatehouse servers with node --cpu-prof, profiles in <dir>
  --source              run Gatehouse from src/ under tsx instead of dist/ (npm run bench builds dist/ first)
  --heap <MB>           Gatehouse's --max-old-space-size, as the Dockerfile sets it (128; 0: Node's default),
                        with the Dockerfile's young generation (${IMAGE_YOUNG_GENERATION}) unless 0
  --node-flags="<flags>"
                        Node or V8 flags for every Node server here (both baselines and Gatehouse), e.g.
                        "--trace-gc" (in each server's log; the logs are then kept) or
                        "--max-semi-space-size=8"; NODE_OPTIONS refuses some flags, and
                        --variant NODE_OPTIONS=... would replace the heap limit and young generation
  --compare <dir>       also run Gatehouse compiled in <dir>/dist (another build, e.g. of main) on each
                        database, as "<database> compared", for same-run before/after figures
  --skip-authlib        leave out Flask + Authlib and Gatehouse with WEB_CONCURRENCY=2 (both run by default)
  --variant <K=V,...>   also run each database's Gatehouse with these variables (repeatable),
                        e.g. --variant CLIENT_CACHE_TTL=0 to see what the client cache saves; with
                        --compare, the build compared with runs each variant too`;

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      runs: { type: 'string' },
      connections: { type: 'string' },
      scenarios: { type: 'string' },
      databases: { type: 'string' },
      'cold-starts': { type: 'string' },
      'bcrypt-cost': { type: 'string' },
      'log-level': { type: 'string' },
      json: { type: 'string' },
      profile: { type: 'string' },
      variant: { type: 'string', multiple: true },
      source: { type: 'boolean' },
      'skip-authlib': { type: 'boolean' },
      compare: { type: 'string' },
      heap: { type: 'string' },
      'node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  const parsed = OptionsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(`${parsed.error.issues.map((i) => i.message).join('\n')}\n\n${USAGE}`);
    process.exit(2);
  }
  return parsed.data;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const mb = (bytes: number) => bytes / 1024 / 1024;

interface ServerReport {
  name: string;
  coldStartsMs: number[];
  coldStartMedianMs: number;
  peakRssMb: number;
}

interface ScenarioReport {
  scenario: ScenarioName;
  title: string;
  unit: 'req/s' | 'flows/s';
  /** ratio and cpuRatio: to each baseline, by its name. */
  servers: Record<string, { runs: RunResult[]; rate: number; p50: number; p99: number; errors: number; ratio: Record<string, number>; cpuPerRequestMs: number; mainThreadCpuPerRequestMs: number; cpuRatio: Record<string, number> }>;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options.help) return console.log(USAGE);
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const env: Record<string, string> = {
    NODE_ENV: 'development',
    DEMO: 'false',
    SECRETS: BENCH_SECRET,
    BCRYPT_COST: String(options['bcrypt-cost']),
    LOG_LEVEL: options['log-level'],
  };
  // Gatehouse runs as it ships (Dockerfile): compiled, with the same heap limit, young generation and malloc arenas.
  // The baseline keeps Node's defaults (its in-memory adapter holds every token it issues).
  const imageEnv = { ...env, MALLOC_ARENA_MAX: '2' };
  const gatehouseEnv = options.heap ? { ...imageEnv, NODE_OPTIONS: `--max-old-space-size=${options.heap} ${IMAGE_YOUNG_GENERATION}` } : imageEnv;
  const kind = options.source ? 'gatehouse' : 'gatehouse-dist';
  const users = options.connections;
  const specs: ServerSpec[] = [
    { name: 'bare', kind: 'bare', databaseUrl: '', env: { ...env, BENCH_USERS: String(users) }, logFile: join(work, 'bare.log') },
    { name: 'baseline', kind: 'baseline', databaseUrl: `file:${join(work, 'baseline.db')}`, env, logFile: join(work, 'baseline.log') },
  ];
  const authlibSkipped = options['skip-authlib'] ? 'left out (--skip-authlib)' : authlibMissing();
  if (!authlibSkipped) specs.push({ name: 'authlib', kind: 'authlib', databaseUrl: `file:${join(work, 'authlib.db')}`, env: { SECRETS: BENCH_SECRET, PYTHONDONTWRITEBYTECODE: '1' }, logFile: join(work, 'authlib.log') });
  BASELINES = ALL_BASELINES.filter((name) => name !== 'authlib' || !authlibSkipped);
  let postgres: TestDatabase | undefined;
  /** The other build's server (--compare), run beside this one's, and with each variant. */
  const comparedEntry = options.compare && resolve(options.compare, 'dist/server.js');
  for (const database of options.databases) {
    let url = `file:${join(work, 'gatehouse.db')}`;
    if (database === 'postgresql') {
      postgres = await createTestDatabase('postgresql');
      url = postgres.config.url;
    }
    specs.push({ name: database, kind, databaseUrl: url, env: gatehouseEnv, logFile: join(work, `${database}.log`), profileDir: options.profile && resolve(options.profile) });
    // Beside Authlib's 2 workers: Gatehouse's 2 workers, on the same database as the plain server.
    if (database === 'sqlite' && !authlibSkipped) specs.push({ name: TWO_WORKERS, kind, databaseUrl: url, env: { ...gatehouseEnv, WEB_CONCURRENCY: '2' }, logFile: join(work, 'sqlite-2-workers.log'), sharesDatabase: true });
    // Variants, the build compared with and the 2-worker server share the database (and its data) with the plain server.
    if (comparedEntry) specs.push({ name: `${database} compared`, kind: 'gatehouse-dist', entry: comparedEntry, databaseUrl: url, env: gatehouseEnv, logFile: join(work, `${database}-compared.log`), sharesDatabase: true });
    options.variant.forEach((variant, i) => {
      const extra = Object.fromEntries(variant.split(',').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
      specs.push({ name: `${database} ${variant}`, kind, databaseUrl: url, env: { ...gatehouseEnv, ...extra }, logFile: join(work, `${database}-variant-${i}.log`), sharesDatabase: true });
      // The build compared with runs each variant too, so that a change is measured in it as well (e.g. WEB_CONCURRENCY=2).
      if (comparedEntry) specs.push({ name: `${database} compared ${variant}`, kind: 'gatehouse-dist', entry: comparedEntry, databaseUrl: url, env: { ...gatehouseEnv, ...extra }, logFile: join(work, `${database}-compared-variant-${i}.log`), sharesDatabase: true });
    });
  }
  for (const spec of specs) if (spec.kind !== 'authlib') spec.nodeFlags = options['node-flags'];
  const running: RunningServer[] = [];
  const cleanUp = async () => {
    await Promise.all(running.map((s) => s.stop()));
    await postgres?.drop();
  };
  process.once('SIGINT', () => void cleanUp().finally(() => process.exit(130)));

  try {
    console.log(`Gatehouse benchmark, ${new Date().toISOString()}: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${Math.round(mb(totalmem()))} MB, Node ${process.version}`);
    console.log(
      `${options.connections} connections, ${options.runs} runs of ${options.duration} s after ${options.warmup} s warm-up; bcrypt cost ${options['bcrypt-cost']}; LOG_LEVEL=${options['log-level']}; Gatehouse ${options.source ? 'from src/ under tsx' : 'from dist/ (node)'}${options.heap ? ` with --max-old-space-size=${options.heap} ${IMAGE_YOUNG_GENERATION}` : ''}, MALLOC_ARENA_MAX=${imageEnv.MALLOC_ARENA_MAX}${options['node-flags'].length ? `; Node flags ${options['node-flags'].join(' ')}` : ''}; logs in ${work}`,
    );
    if (authlibSkipped) console.log(`Flask + Authlib baseline and Gatehouse on 2 workers skipped: ${authlibSkipped}`);
    // Before anything of ours runs; read again at the end (machine-speed.ts).
    const workloadAtStartMs = workloadMs();
    for (const spec of specs) {
      if (spec.sharesDatabase || spec.kind === 'bare') continue; // seeded with the plain server's; bare: no database

      if (spec.kind === 'authlib') {
        seedAuthlib(spec.databaseUrl, { users, bcryptCost: options['bcrypt-cost'] });
        continue;
      }
      const flavour = spec.databaseUrl.startsWith('file:') ? 'sqlite' : 'postgresql';
      await seedBenchData({ url: spec.databaseUrl, flavour, poolSize: 2 }, { users, bcryptCost: options['bcrypt-cost'] });
    }

    // Cold start: spawn → discovery answers 200. The first start (signing keys generated) is not counted.
    const servers: { server: RunningServer; report: ServerReport }[] = [];
    for (const spec of specs) {
      let server = await startServer(spec);
      const coldStartsMs: number[] = [];
      for (let i = 0; i < options['cold-starts']; i++) {
        await server.stop();
        server = await startServer(spec);
        coldStartsMs.push(server.coldStartMs);
      }
      running.push(server);
      servers.push({ server, report: { name: spec.name, coldStartsMs, coldStartMedianMs: median(coldStartsMs), peakRssMb: 0 } });
      console.log(`started ${spec.name.padEnd(16)} pid ${server.pid}, cold start ${coldStartsMs.map((ms) => Math.round(ms)).join(', ')} ms`);
    }

    const scenarios: ScenarioReport[] = [];
    for (const scenario of options.scenarios) {
      const prepared: PreparedScenario[] = [];
      for (const { server } of servers) prepared.push(await prepareScenario(scenario, server.url, users));
      const load = { connections: options.connections, durationSeconds: options.duration };
      if (options.warmup) {
        for (const p of prepared) {
          await p.beforeRun?.(load);
          await p.run({ ...load, durationSeconds: options.warmup });
        }
      }
      const runs: RunResult[][] = servers.map(() => []);
      for (let r = 0; r < options.runs; r++) {
        for (const [i, p] of prepared.entries()) {
          const { server } = servers[i]!;
          await p.beforeRun?.(load);
          const cpuBefore = server.cpuMs();
          const mainBefore = server.mainThreadCpuMs();
          const result = await p.run(load);
          const mainAfter = server.mainThreadCpuMs();
          const perRequest = (ms: number) => ms / Math.max(result.total, 1);
          runs[i]!.push({ ...result, cpuPerRequestMs: perRequest(server.cpuMs() - cpuBefore), mainThreadCpuPerRequestMs: mainBefore === undefined || mainAfter === undefined ? undefined : perRequest(mainAfter - mainBefore) });
        }
      }
      const report: ScenarioReport = { scenario, title: SCENARIO_TITLES[scenario], unit: FLOW_SCENARIOS.includes(scenario) ? 'flows/s' : 'req/s', servers: {} };
      const rates = runs.map((mine) => median(mine.map((r) => r.rate)));
      const cpus = runs.map((mine) => median(mine.map((r) => r.cpuPerRequestMs ?? NaN)));
      const baselines = BASELINES.map((name) => servers.findIndex((s) => s.report.name === name));
      servers.forEach(({ report: { name } }, i) => {
        const mine = runs[i]!;
        report.servers[name] = {
          runs: mine,
          rate: rates[i]!,
          p50: median(mine.map((r) => r.p50)),
          p99: median(mine.map((r) => r.p99)),
          errors: mine.reduce((sum, r) => sum + r.errors, 0),
          ratio: Object.fromEntries(BASELINES.map((b, k) => [b, rates[i]! / rates[baselines[k]!]!])),
          cpuPerRequestMs: cpus[i]!,
          mainThreadCpuPerRequestMs: median(mine.map((r) => r.mainThreadCpuPerRequestMs ?? NaN)),
          cpuRatio: Object.fromEntries(BASELINES.map((b, k) => [b, cpus[baselines[k]!]! / cpus[i]!])),
        };
      });
      scenarios.push(report);
      printScenario(report);
      // The servers write their log in batches, within 100 ms.
      await sleep(250);
      for (const { server } of servers) dropRequestLines(server.spec.logFile);
    }
    for (const { server, report } of servers) report.peakRssMb = mb(server.peakRss());
    printServers(servers.map((s) => s.report));
    const workloadAtEndMs = workloadMs();
    console.log(`\n${describeDrift(workloadAtStartMs, workloadAtEndMs)}`);
    const targets = checkTargets(scenarios, servers.map((s) => s.report), options.connections);
    const output = { date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryMb: Math.round(mb(totalmem())), node: process.version, workloadMs: { start: workloadAtStartMs, end: workloadAtEndMs } }, options, servers: servers.map((s) => s.report), scenarios, targets };
    const file = resolve(options.json);
    mkdirSync(resolve(file, '..'), { recursive: true });
    writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
    console.log(`\nJSON: ${file}`);
  } finally {
    await cleanUp();
    // Kept when profiles or the output of --node-flags (--trace-gc, say) are in it.
    if (!options.profile && !options['node-flags'].length) rmSync(work, { recursive: true, force: true });
  }
}

function printScenario(report: ScenarioReport): void {
  const f = (n: number | undefined, digits = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-');
  const rows = [['', report.unit, 'p50 ms', 'p99 ms', 'errors', ...BASELINES.map((b) => `× ${b}`), 'cpu ms/req', 'main thread', ...BASELINES.map((b) => `cpu × ${b}`)]];
  for (const [name, s] of Object.entries(report.servers)) {
    rows.push([name, f(s.rate), f(s.p50), f(s.p99), String(s.errors), ...BASELINES.map((b) => f(s.ratio[b], 2)), f(s.cpuPerRequestMs, 2), f(s.mainThreadCpuPerRequestMs, 2), ...BASELINES.map((b) => f(s.cpuRatio[b], 2))]);
  }
  console.log(`\n${report.scenario}: ${report.title}\n${table(rows)}`);
}

function printServers(reports: ServerReport[]): void {
  const rows = [['', 'cold start ms (median)', 'peak RSS MB']];
  for (const r of reports) rows.push([r.name, r.coldStartMedianMs.toFixed(0), r.peakRssMb.toFixed(1)]);
  console.log(`\nservers\n${table(rows)}`);
}

/**
 * Issue 18's targets, each met or missed, from this run's figures (throughput against the bare
 * engine). The issue's code flow is an authorization with a session plus the code exchange
 * (session-flow); the flow with a sign-in each time (code-flow) is held to the same figures.
 */
const TARGETS: Record<string, Partial<Record<ScenarioName, number>>> = {
  sqlite: { discovery: 0.5, jwks: 0.5, 'cc-opaque': 0.4, 'cc-jwt': 0.4, userinfo: 0.45, refresh: 0.35, 'code-flow': 0.55, 'session-flow': 0.55 },
  postgresql: { 'cc-opaque': 0.3, 'cc-jwt': 0.3, userinfo: 0.3, refresh: 0.3, 'code-flow': 0.4, 'session-flow': 0.4 },
};
/** Gatehouse on 2 workers against Flask + Authlib on 2: ahead everywhere, and by this much on tokens, userinfo and the code flows. */
const AHEAD_OF_AUTHLIB: Partial<Record<ScenarioName, number>> = { 'cc-opaque': 1.5, 'cc-jwt': 1.5, userinfo: 1.5, 'code-flow': 1.5, 'session-flow': 1.5 };

function checkTargets(scenarios: ScenarioReport[], servers: ServerReport[], connections: number) {
  const results: { target: string; value: string; met: boolean }[] = [];
  for (const report of scenarios) {
    const pair = report.servers[TWO_WORKERS];
    const authlib = pair?.ratio.authlib;
    if (authlib !== undefined) {
      const minimum = AHEAD_OF_AUTHLIB[report.scenario];
      const target = minimum === undefined ? `${TWO_WORKERS} ${report.scenario} ahead of authlib (2 workers)` : `${TWO_WORKERS} ${report.scenario} ≥ ${minimum}× authlib (2 workers)`;
      results.push({ target, value: `${authlib.toFixed(2)}×`, met: minimum === undefined ? authlib > 1 : authlib >= minimum });
    }
    for (const [name, s] of Object.entries(report.servers)) {
      if (!(name in TARGETS)) continue;
      const minimum = TARGETS[name]![report.scenario];
      const ratio = s.ratio.bare!;
      if (minimum !== undefined) results.push({ target: `${name} ${report.scenario} ≥ ${minimum}× bare engine`, value: `${ratio.toFixed(2)}×`, met: ratio >= minimum });
      if (['cc-opaque', 'cc-jwt', 'userinfo', 'refresh'].includes(report.scenario)) {
        results.push({ target: `${name} ${report.scenario} p99 < 50 ms at ${connections} connections`, value: `${s.p99.toFixed(1)} ms`, met: s.p99 < 50 });
      }
      results.push({ target: `${name} ${report.scenario} no errors`, value: String(s.errors), met: s.errors === 0 });
    }
  }
  for (const server of servers) {
    // 200 MB holds for every process (the 2-worker server's figure is its largest); cold start is one process's.
    if (server.name in TARGETS || server.name === TWO_WORKERS) results.push({ target: `${server.name} peak RSS < 200 MB`, value: `${server.peakRssMb.toFixed(1)} MB`, met: server.peakRssMb < 200 });
    if (server.name in TARGETS) results.push({ target: `${server.name} cold start < 1 s`, value: `${server.coldStartMedianMs.toFixed(0)} ms`, met: server.coldStartMedianMs < 1000 });
  }
  console.log(`\ntargets\n${table([['', 'value', ''], ...results.map((r) => [r.target, r.value, r.met ? 'met' : 'MISSED'])])}`);
  return results;
}

await main();
