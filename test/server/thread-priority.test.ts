// HELPER_THREAD_NICE in the real process (src/thread-priority.ts): every thread but the event
// loop's runs at that nice value, threads started after the first look included; 0 leaves them all
// at the event loop's. Read from /proc, as the kernel schedules them.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { serverOnFreshSqlite } from '../helpers/server-process.js';
import { RESCAN_INTERVAL_MS } from '../../src/thread-priority.js';

const MODULE = new URL('../../src/thread-priority.ts', import.meta.url).href;

/**
 * In a process of its own (the nice values would stay on the test runner's threads): lowers the
 * helpers to 5, rescanning every 100 ms, then starts a worker thread; its nice value when it
 * started and 400 ms later.
 */
const LATE_THREAD = `
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { lowerHelperThreads } from '${MODULE}';
const nice = (tid) => { const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]); };
const before = new Set(readdirSync('/proc/self/task'));
lowerHelperThreads(5, { onRefused: (error) => { throw error; }, rescanIntervalMs: 100 });
const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
await new Promise((resolve) => worker.once('online', resolve));
const late = readdirSync('/proc/self/task').filter((tid) => !before.has(tid));
const atStart = late.map(nice);
await new Promise((resolve) => setTimeout(resolve, 400));
console.log(JSON.stringify({ late: late.length, atStart, after: late.map(nice), eventLoop: nice(process.pid) }));
process.exit(0);
`;

const server = serverOnFreshSqlite('threads');

afterEach(() => server.cleanUp());

async function startServer(env: Record<string, string>) {
  const { child, port } = await server.start(env);
  return { pid: child.pid as number, port };
}

/** Each thread's nice value (field 19 of /proc/<pid>/task/<tid>/stat), by thread id. */
function niceValues(pid: number): Map<number, number> {
  const values = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      values.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // ended meanwhile
    }
  }
  return values;
}

const helpersOf = (pid: number, values: Map<number, number>) => [...values].filter(([tid]) => tid !== pid).map(([, nice]) => nice);

describe.skipIf(process.platform !== 'linux')('helper threads below the event loop', () => {
  it('HELPER_THREAD_NICE=7: every thread but the event loop at 7', async () => {
    const { pid, port } = await startServer({ HELPER_THREAD_NICE: '7' });
    // A request served first, so that threads started to serve one exist before the look.
    await fetch(`http://127.0.0.1:${port}/jwks`);

    let values = niceValues(pid);
    const deadline = Date.now() + RESCAN_INTERVAL_MS + 5_000;
    while (helpersOf(pid, values).some((nice) => nice !== 7) && Date.now() < deadline) {
      await sleep(200);
      values = niceValues(pid);
    }

    expect(values.get(pid)).toBe(0);
    // V8's platform threads, libuv's pool and SQLite's checkpoint worker at least.
    expect(helpersOf(pid, values).length).toBeGreaterThanOrEqual(5);
    expect(new Set(helpersOf(pid, values))).toStrictEqual(new Set([7]));
  });

  it('HELPER_THREAD_NICE=0: every thread stays at the event loop’s priority', async () => {
    const { pid } = await startServer({ HELPER_THREAD_NICE: '0' });
    await sleep(1_000);

    const values = niceValues(pid);
    expect(helpersOf(pid, values).length).toBeGreaterThanOrEqual(5);
    expect(new Set(values.values())).toStrictEqual(new Set([0]));
  });

  it('a thread started after the first look is lowered at the next one', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', LATE_THREAD], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const seen = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as { late: number; atStart: number[]; after: number[]; eventLoop: number };

    expect(seen.late).toBeGreaterThanOrEqual(1);
    expect(seen.atStart).toContain(0);
    expect(new Set(seen.after)).toStrictEqual(new Set([5]));
    expect(seen.eventLoop).toBe(0);
  });
});
