// WEB_CONCURRENCY=2 with the real process (src/server.ts compiled, test/helpers/compiled.ts): the
// primary applies the migrations and starts two workers on one port; a sign-in whose requests
// land on both workers works; the primary runs SQLite's checkpoints for the workers; a worker
// that dies is restarted; SIGTERM stops everything with exit 0 and leaves no process behind;
// workers that cannot start make the primary give up with exit 1; an old configuration file key
// is logged once, by the primary.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type DatabaseFlavour } from '../../src/config/index.js';
import { createDb, sqliteFilePath } from '../../src/db/client.js';
import { createClientStore } from '../../src/clients/store.js';
import { Browser } from '../helpers/browser.js';
import { basicAuth, signInForCode } from '../helpers/code-flow.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { addUserTo, TEST_SECRET } from '../helpers/gatehouse.js';
import { loadedProbe, type LoadedProbe } from '../helpers/loaded-probe.js';
import { freePort } from '../helpers/ports.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';

interface Cluster extends ServerProcess {
  readonly url: string;
}

const started: Cluster[] = [];

function startCluster(database: TestDatabase, port: number, env: Record<string, string> = {}): Cluster {
  const url = `http://127.0.0.1:${port}`;
  const cluster = {
    url,
    ...spawnServer({ PORT: String(port), ISSUER: url, DATABASE_URL: database.config.url, DATABASE_POOL_SIZE: '3', BCRYPT_COST: '4', WEB_CONCURRENCY: '2', ...env }),
  };
  started.push(cluster);
  return cluster;
}

async function until(condition: () => boolean, what: string, cluster: Cluster, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${cluster.logs.map((l) => JSON.stringify(l)).join('\n')}\n${cluster.stderr()}`);
    await sleep(50);
  }
}

/** The pids the primary reported as listening workers, in order. */
const listeningWorkers = (cluster: Cluster) => cluster.logs.filter((line) => line.msg === 'worker is listening').map((line) => line.pid as number);

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The parent of `pid`, from /proc. */
const parentOf = (pid: number) => Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

/** A browser that opens a new connection for every request (so each may reach another worker) and names each request. */
class NewConnectionBrowser extends Browser {
  readonly requestIds: string[] = [];

  override async request(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    const id = randomUUID();
    this.requestIds.push(id);
    return super.request(url, { ...init, headers: { connection: 'close', 'x-request-id': id, ...init.headers } });
  }
}

afterAll(() => {
  // Only if a test failed half-way: the processes this file started, by pid.
  for (const cluster of started) {
    const pids = [...listeningWorkers(cluster), cluster.child.pid].filter((pid): pid is number => pid !== undefined);
    for (const pid of pids) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
});

describe('WEB_CONCURRENCY', () => {
  const load = (value?: string) => loadConfig({ NODE_ENV: 'test', SECRETS: TEST_SECRET, ...(value === undefined ? {} : { WEB_CONCURRENCY: value }) });

  it('is 1 (one process, no workers) unless set', () => {
    expect(load().server.workers).toBe(1);
  });

  it('takes a number of workers, or auto for one per CPU', () => {
    expect(load('4').server.workers).toBe(4);
    expect(load(' AUTO ').server.workers).toBe(Math.min(availableParallelism(), 64));
  });

  it.each(['0', '-2', '1.5', 'many', '65'])('refuses %s, naming the variable', (value) => {
    expect(() => load(value)).toThrow(ConfigError);
    expect(() => load(value)).toThrow('WEB_CONCURRENCY: must be auto (one per CPU) or a whole number from 1 to 64 (e.g. 4)');
  });
});

describe.each(await flavours())('WEB_CONCURRENCY=2 on %s', (flavour: DatabaseFlavour) => {
  let database: TestDatabase;
  let cluster: Cluster;
  let metricsPort: number;
  let configDir: string;
  let loaded: LoadedProbe;

  beforeAll(async () => {
    database = await createTestDatabase(flavour);
    metricsPort = await freePort();
    // METRICS_HOST from a configuration file, under its old key.
    configDir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'));
    writeFileSync(join(configDir, 'gatehouse.yaml'), 'server: { metricsHost: 127.0.0.1 }\n');
    loaded = loadedProbe(configDir);
    cluster = startCluster(database, await freePort(), { METRICS_PORT: String(metricsPort), CONFIG_FILE: join(configDir, 'gatehouse.yaml'), NODE_OPTIONS: loaded.nodeOptions() });
    await until(() => cluster.logs.some((line) => line.msg === 'all 2 workers are listening'), 'both workers to listen', cluster);
  }, 120_000);
  afterAll(async () => {
    if (cluster.child.exitCode === null && cluster.child.signalCode === null) cluster.child.kill('SIGKILL');
    await database?.drop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('logs an old configuration file key once, in the primary, naming the new key', () => {
    const warnings = cluster.logs.filter((line) => line.msg?.includes('server.metricsHost is now metrics.host'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40 });
    expect(warnings[0]!.pid).toBeUndefined();
  });

  it('migrates once in the primary, then runs two workers that are its children', () => {
    const primaryPid = cluster.child.pid as number;
    const workers = listeningWorkers(cluster);
    expect(new Set(workers).size).toBe(2);
    for (const pid of workers) {
      expect(pid).not.toBe(primaryPid);
      expect(parentOf(pid)).toBe(primaryPid);
    }
    const migrated = cluster.logs.filter((line) => line.msg === 'applied database migrations');
    expect(migrated).toHaveLength(1);
    expect(migrated[0]!.pid).toBeUndefined(); // the primary's line; worker lines carry their pid
  });

  it('signs a person in across both workers', async () => {
    const db = await createDb(database.config);
    try {
      await createClientStore(db).save(webApp());
      await addUserTo(db, ALICE);
    } finally {
      await db.close();
    }

    const browser = new NewConnectionBrowser(cluster.url);
    const { code, verifier } = await signInForCode(browser, cluster.url, WEB_APP, ALICE);
    const token = await browser.request(`${cluster.url}/token`, {
      form: { grant_type: 'authorization_code', code, redirect_uri: WEB_APP.redirectUri, code_verifier: verifier },
      headers: { authorization: basicAuth(WEB_APP), accept: 'application/json' },
    });
    expect(token.status, await token.clone().text()).toBe(200);
    expect(await token.json()).toMatchObject({ token_type: 'Bearer', id_token: expect.any(String) });

    // Each request's log line names the worker that served it: both did.
    const servedBy = () => cluster.logs.filter((line) => line.msg === 'request' && browser.requestIds.includes(line.request_id as string)).map((line) => line.pid);
    await until(() => servedBy().length === browser.requestIds.length, 'a log line for every request', cluster, 10_000);
    expect(new Set(servedBy())).toStrictEqual(new Set(listeningWorkers(cluster)));
  });

  it.runIf(flavour === 'sqlite')("leaves SQLite's checkpoints to the primary's thread: what the workers write reaches the database file within a moment", async () => {
    // The workers' own connections would checkpoint only at the backstop's 10,000 pages of log.
    const file = sqliteFilePath(database.config.url);
    const before = statSync(file).mtimeMs;
    await signInForCode(new NewConnectionBrowser(cluster.url), cluster.url, WEB_APP, ALICE);
    const deadline = Date.now() + 5000;
    while (statSync(file).mtimeMs === before && Date.now() < deadline) await sleep(25);
    expect(statSync(file).mtimeMs).not.toBe(before);
  });

  it("adds up every worker's metrics on METRICS_PORT, and serves none on the public port", async () => {
    const jwksServed = async () => {
      const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(response.status).toBe(200);
      const line = (await response.text()).split('\n').find((l) => l.startsWith('gatehouse_http_requests_total{') && l.includes('route="jwks"') && l.includes('status="200"'));
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const before = await jwksServed();
    const browser = new NewConnectionBrowser(cluster.url);
    for (let i = 0; i < 12; i++) expect((await browser.request(`${cluster.url}/jwks`)).status).toBe(200);
    // Both workers answered some of them, and the figure is their sum.
    const servedBy = () => cluster.logs.filter((line) => line.msg === 'request' && line.path === '/jwks').map((line) => line.pid);
    await until(() => servedBy().length === 12, 'a log line for every request', cluster, 10_000);
    expect(new Set(servedBy()).size).toBe(2);
    expect(await jwksServed()).toBe(before + 12);
    expect((await fetch(`${cluster.url}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/jwks`)).status).toBe(404);
  });

  it('restarts a worker that dies', async () => {
    const [victim, survivor] = listeningWorkers(cluster) as [number, number];
    process.kill(victim, 'SIGKILL');
    await until(() => cluster.logs.some((line) => line.msg === 'worker exited unexpectedly: restarting it'), 'the primary to notice', cluster);
    // Metrics go on being served while the replacement starts: from the workers that listen.
    const scrapeStarted = Date.now();
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    expect(Date.now() - scrapeStarted).toBeLessThan(2000);
    await until(() => listeningWorkers(cluster).length === 3, 'a new worker to listen', cluster);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    const replacement = listeningWorkers(cluster)[2] as number;
    expect([victim, survivor]).not.toContain(replacement);
    expect(parentOf(replacement)).toBe(cluster.child.pid);
    expect(isRunning(survivor)).toBe(true);
    const discovery = await fetch(`${cluster.url}/.well-known/openid-configuration`, { headers: { connection: 'close' } });
    expect(discovery.status).toBe(200);
  }, 120_000);

  it('stops on SIGTERM: every worker drains, the primary exits 0, no process is left', async () => {
    const pids = listeningWorkers(cluster);
    cluster.child.kill('SIGTERM');
    expect((await cluster.exited).code).toBe(0);
    const stopped = cluster.logs.filter((line) => line.msg === 'worker stopped');
    expect(stopped.map((line) => line.exitCode)).toStrictEqual([0, 0]);
    // Workers log their own drain before they exit; their pids are gone once the primary exits.
    expect(cluster.logs.filter((line) => line.msg === 'shut down' && line.pid !== undefined)).toHaveLength(2);
    for (const pid of pids) expect(isRunning(pid), `worker ${pid}`).toBe(false);
    // Neither the primary nor a worker, after sign-ins, tokens and metrics, loaded Node's fetch or
    // compiled WebAssembly: on Node 22 and 24 an ES import of node:http loads the first (through its
    // lazy WebSocket export), which the bundle avoids (README "Performance", round 29).
    const exits = loaded.all();
    // The primary and the two workers it stopped (the one killed earlier wrote nothing).
    expect(exits.has(cluster.child.pid!)).toBe(true);
    expect(exits.size).toBe(3);
    for (const [pid, what] of exits) expect(what, `process ${pid}`).toEqual({ webAssembly: 0, fetch: false });
  }, 60_000);
});

describe('workers that cannot start', () => {
  let blocker: Server | undefined;
  let database: TestDatabase | undefined;
  afterAll(async () => {
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    await database?.drop();
  });

  it('make the primary give up with exit 1 instead of restarting them forever', async () => {
    // The port is taken, so every worker fails at listen(); the primary itself never listens.
    blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve((blocker!.address() as AddressInfo).port)));
    database = await createTestDatabase('sqlite');
    const cluster = startCluster(database, port);
    expect((await cluster.exited).code).toBe(1);
    expect(cluster.logs.some((line) => line.msg === 'workers keep failing at start-up: giving up' && line.level === 50)).toBe(true);
    expect(cluster.logs.filter((line) => line.msg === 'worker exited unexpectedly: restarting it').length).toBeGreaterThanOrEqual(2);
    expect(cluster.stderr()).toMatch(/EADDRINUSE/);
  }, 240_000);
});
