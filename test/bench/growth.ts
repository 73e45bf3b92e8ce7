// `npm run bench:growth`: how the artifact table behaves as it grows. On each database it
// measures the adapter's lookups on a small table, fills OidcArtifact with many rows (mostly
// expired, some live) by bulk SQL, measures again, runs the sweeper (timing it, and timing
// lookups made while it runs), and reports the table's size before and after.
//   npm run bench:growth -- [--rows 1000000] [--databases sqlite,postgresql] [--json file]
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Adapter } from 'oidc-provider';
import { z } from 'zod';
import type { DatabaseFlavour } from '../../src/config/index.js';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { createDb, sqliteFilePath, type Db } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { createTestDatabase } from '../helpers/databases.js';
import { BENCH_SECRET } from './fixtures.js';

const OptionsSchema = z.object({
  rows: z.coerce.number({ message: '--rows: must be a number' }).int().min(1000, '--rows: at least 1000').max(20_000_000).default(1_000_000),
  'live-percent': z.coerce.number().min(0).max(100).default(10),
  samples: z.coerce.number().int().min(10).max(100_000).default(500),
  databases: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()))
    .pipe(z.array(z.enum(['sqlite', 'postgresql'], { message: '--databases: sqlite and/or postgresql' })).min(1))
    .default(['sqlite', 'postgresql']),
  json: z.string().min(1).default('tmp/bench/growth.json'),
});

const USAGE = `npm run bench:growth -- [options]
  --rows <n>            rows to add to OidcArtifact (1000000)
  --live-percent <n>    how many of them are live; the rest have expired (10)
  --samples <n>         lookups timed per measurement (500)
  --databases <list>    sqlite,postgresql
  --json <file>         where the results go as JSON (tmp/bench/growth.json)`;

const { values: { help, ...values } } = parseArgs({ options: { rows: { type: 'string' }, 'live-percent': { type: 'string' }, samples: { type: 'string' }, databases: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
if (help) {
  console.log(USAGE);
  process.exit(0);
}
const parsedOptions = OptionsSchema.safeParse(values);
if (!parsedOptions.success) {
  console.error(parsedOptions.error.issues.map((i) => i.message).join('\n'));
  process.exit(2);
}
const options = parsedOptions.data;

interface Latency {
  p50: number;
  p99: number;
  max: number;
}

function summarize(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}

async function time(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await call();
  return performance.now() - started;
}

/** The adapter's calls on the rows seedLive() wrote; revokeByGrantId ends a fresh grant each time. */
async function measureLookups(adapters: (model: string) => Adapter, samples: number, round: string): Promise<Record<string, Latency>> {
  const tokens = adapters('AccessToken');
  const sessions = adapters('Session');
  const result: Record<string, number[]> = { 'find by id': [], 'find (missing id)': [], 'findByUid': [], upsert: [], 'revokeByGrantId (3 rows)': [] };
  for (let i = 0; i < samples; i++) {
    const n = i % 1000;
    result['find by id']!.push(await time(() => tokens.find(`live-at-${n}`)));
    result['find (missing id)']!.push(await time(() => tokens.find(`missing-${randomBytes(8).toString('hex')}`)));
    result.findByUid!.push(await time(() => sessions.findByUid(`live-uid-${n}`)));
    const grantId = `revoke-${round}-${i}`;
    for (let t = 0; t < 3; t++) {
      const ms = await time(() => tokens.upsert(`${grantId}-${t}`, { jti: `${grantId}-${t}`, kind: 'AccessToken', grantId, accountId: 'acc', clientId: 'client' }, 3600));
      if (t === 0) result.upsert!.push(ms);
    }
    result['revokeByGrantId (3 rows)']!.push(await time(() => tokens.revokeByGrantId(grantId)));
  }
  return Object.fromEntries(Object.entries(result).map(([name, ms]) => [name, summarize(ms)]));
}

async function seedLive(adapters: (model: string) => Adapter): Promise<void> {
  for (let n = 0; n < 1000; n++) {
    await adapters('AccessToken').upsert(`live-at-${n}`, { jti: `live-at-${n}`, kind: 'AccessToken', grantId: `live-grant-${n % 100}`, accountId: 'acc', clientId: 'client' }, 3600);
    await adapters('Session').upsert(`live-session-${n}`, { jti: `live-session-${n}`, kind: 'Session', uid: `live-uid-${n}`, accountId: 'acc' }, 3600);
  }
}

/** Bulk rows: AccessToken, RefreshToken, Session and Grant rows with realistic lookup columns. */
async function grow(db: Db, rows: number, livePercent: number): Promise<void> {
  const nowMs = Date.now();
  const payload = JSON.stringify({ kind: 'AccessToken', accountId: 'acc', clientId: 'client', scope: 'openid email', iat: Math.floor(nowMs / 1000), exp: Math.floor(nowMs / 1000) + 3600, jti: 'x'.repeat(43) });
  const chunk = 100_000;
  for (let from = 0; from < rows; from += chunk) {
    const to = Math.min(rows, from + chunk) - 1;
    if (db.flavour === 'sqlite') {
      // Dates as the adapter writes them on SQLite: epoch milliseconds.
      await db.prisma.$executeRawUnsafe(
        `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
         INSERT INTO "OidcArtifact" ("model", "id", "payload", "grantId", "uid", "accountId", "clientId", "expiresAt", "createdAt")
         SELECT CASE i % 4 WHEN 0 THEN 'AccessToken' WHEN 1 THEN 'RefreshToken' WHEN 2 THEN 'Session' ELSE 'Grant' END,
                printf('grown-%d', i), ?, printf('grown-grant-%d', i / 3),
                CASE WHEN i % 4 = 2 THEN printf('grown-uid-%d', i) END, printf('acc-%d', i % 5000), 'client',
                CASE WHEN i % 100 < ${livePercent} THEN ${nowMs} + 86400000 ELSE ${nowMs} - 60000 - i END, ${nowMs} - 86400000
         FROM n`,
        payload,
      );
    } else {
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "OidcArtifact" ("model", "id", "payload", "grantId", "uid", "accountId", "clientId", "expiresAt", "createdAt")
         SELECT CASE i % 4 WHEN 0 THEN 'AccessToken' WHEN 1 THEN 'RefreshToken' WHEN 2 THEN 'Session' ELSE 'Grant' END,
                'grown-' || i, $1::jsonb, 'grown-grant-' || (i / 3),
                CASE WHEN i % 4 = 2 THEN 'grown-uid-' || i END, 'acc-' || (i % 5000), 'client',
                CASE WHEN i % 100 < ${livePercent} THEN now() + interval '1 day' ELSE now() - interval '1 minute' - i * interval '1 millisecond' END,
                now() - interval '1 day'
         FROM generate_series(${from}, ${to}) AS i`,
        payload,
      );
    }
  }
  if (db.flavour === 'postgresql') await db.prisma.$executeRawUnsafe('ANALYZE "OidcArtifact"');
}

async function size(db: Db): Promise<{ rows: number; bytes: number; note: string }> {
  const rows = await db.prisma.oidcArtifact.count();
  if (db.flavour === 'sqlite') {
    const file = sqliteFilePath(db.url);
    const bytes = [file, `${file}-wal`].reduce((sum, f) => sum + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
    const [pages] = await db.prisma.$queryRawUnsafe<{ used: bigint | number }[]>('SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()) AS used');
    const [pageSize] = await db.prisma.$queryRawUnsafe<{ page_size: bigint | number }[]>('SELECT page_size FROM pragma_page_size()');
    return { rows, bytes, note: `file + WAL; pages in use ${((Number(pages?.used) * Number(pageSize?.page_size)) / 2 ** 20).toFixed(1)} MB` };
  }
  const [total] = await db.prisma.$queryRawUnsafe<{ bytes: bigint | number }[]>(`SELECT pg_total_relation_size('"OidcArtifact"') AS bytes`);
  return { rows, bytes: Number(total?.bytes), note: 'table + indexes (pg_total_relation_size)' };
}

/** Runs the sweeper's deletion while a loop of lookups measures how long each waits. */
async function sweepUnderLoad(db: Db, adapters: (model: string) => Adapter): Promise<{ deleted: number; seconds: number; lookupsDuringSweep: Latency & { count: number } }> {
  const artifacts = createArtifactStore(db);
  let sweeping = true;
  const during: number[] = [];
  const probe = (async () => {
    for (let n = 0; sweeping; n++) during.push(await time(() => adapters('AccessToken').find(`live-at-${n % 1000}`)));
  })();
  const started = performance.now();
  const deleted = await artifacts.deleteExpired(new Date());
  const seconds = (performance.now() - started) / 1000;
  sweeping = false;
  await probe;
  return { deleted, seconds, lookupsDuringSweep: { ...summarize(during.length ? during : [0]), count: during.length } };
}

const fmt = (l: Latency) => `p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(1)} ms`;
const mbText = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

const report: Record<string, unknown> = { date: new Date().toISOString(), options };
for (const flavour of options.databases as DatabaseFlavour[]) {
  const work = flavour === 'sqlite' ? mkdtempSync(join(tmpdir(), 'gatehouse-growth-')) : undefined;
  const pg = flavour === 'postgresql' ? await createTestDatabase('postgresql') : undefined;
  const config = work ? { flavour, url: `file:${join(work, 'growth.db')}`, poolSize: 5 } : pg!.config;
  await migrate(config);
  const db = await createDb(config);
  try {
    const adapters = createAdapterFactory(db, [BENCH_SECRET]);
    await seedLive(adapters);
    console.log(`\n${flavour}: ${options.rows.toLocaleString('en')} rows to add (${options['live-percent']}% live), ${options.samples} samples per lookup`);
    const small = await measureLookups(adapters, options.samples, 'small');
    const sizeSmall = await size(db);
    const growStarted = performance.now();
    await grow(db, options.rows, options['live-percent']);
    const growSeconds = (performance.now() - growStarted) / 1000;
    const sizeGrown = await size(db);
    const grown = await measureLookups(adapters, options.samples, 'grown');
    const sweep = await sweepUnderLoad(db, adapters);
    if (db.flavour === 'postgresql') await db.prisma.$executeRawUnsafe('VACUUM ANALYZE "OidcArtifact"');
    const sizeSwept = await size(db);
    const swept = await measureLookups(adapters, options.samples, 'swept');
    console.log(`  inserted in ${growSeconds.toFixed(1)} s`);
    for (const [label, s] of [['small', sizeSmall], ['grown', sizeGrown], ['swept', sizeSwept]] as const) console.log(`  size ${label.padEnd(6)} ${s.rows.toLocaleString('en').padStart(10)} rows, ${mbText(s.bytes)} (${s.note})`);
    console.log(`  sweeper deleted ${sweep.deleted.toLocaleString('en')} rows in ${sweep.seconds.toFixed(2)} s; ${sweep.lookupsDuringSweep.count} lookups meanwhile: ${fmt(sweep.lookupsDuringSweep)}`);
    for (const name of Object.keys(small)) {
      console.log(`  ${name.padEnd(26)} small: ${fmt(small[name]!)} | grown: ${fmt(grown[name]!)} | swept: ${fmt(swept[name]!)}`);
    }
    report[flavour] = { growSeconds, sizes: { small: sizeSmall, grown: sizeGrown, swept: sizeSwept }, sweep, lookups: { small, grown, swept } };
  } finally {
    await db.close();
    await pg?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  }
}
const file = resolve(options.json);
mkdirSync(resolve(file, '..'), { recursive: true });
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nJSON: ${file}`);
