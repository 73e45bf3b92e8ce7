// The benchmarked servers, each in its own child process (so its RSS and start-up time are its
// own, and the load generator does not share its event loop): Gatehouse compiled (dist/) or from
// src/ under tsx, the in-memory baseline (baseline-server.ts), the bare engine
// (bare-engine-server.ts) and Flask + Authlib under gunicorn (authlib.ts). A server may be several
// processes (gunicorn's workers, Gatehouse's with WEB_CONCURRENCY): its CPU time is the whole
// process tree's, its peak RSS the largest of any one process.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/ports.js';
import { AUTHLIB_DIR, GUNICORN } from './authlib.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRIES = {
  gatehouse: fileURLToPath(new URL('../../src/server.ts', import.meta.url)),
  baseline: fileURLToPath(new URL('./baseline-server.ts', import.meta.url)),
  bare: fileURLToPath(new URL('./bare-engine-server.ts', import.meta.url)),
  /** `npm run build` output, run by plain node as the container runs it. */
  'gatehouse-dist': fileURLToPath(new URL('../../dist/server.js', import.meta.url)),
  /** Flask + Authlib, started by gunicorn with 2 workers. */
  authlib: GUNICORN,
};

export type ServerKind = keyof typeof ENTRIES;

export interface ServerSpec {
  /** Shown in tables: baseline, sqlite, postgresql. */
  name: string;
  kind: ServerKind;
  databaseUrl: string;
  env: Record<string, string>;
  /** Where the child's output goes. */
  logFile: string;
  /** Another build's server.js to run instead of this one's (bench --compare). */
  entry?: string;
  /** Uses a database another server's spec seeds (a variant, the 2-worker server, a compared build). */
  sharesDatabase?: boolean;
  /** Directory for --cpu-prof output; absent: no profiling. */
  profileDir?: string;
  /** Node or V8 flags given before the script (bench --node-flags); not for Authlib. */
  nodeFlags?: readonly string[];
}

export interface RunningServer {
  readonly spec: ServerSpec;
  readonly url: string;
  readonly pid: number;
  /** VmHWM: the highest resident set size the process has had, in bytes. */
  peakRss(): number;
  /** CPU time (user + system) the process has used so far, in milliseconds. */
  cpuMs(): number;
  /**
   * The part of cpuMs() spent on the processes' main threads, where Node runs JavaScript; the rest
   * is libuv's pool (bcrypt, WebCrypto's RSA), V8's own threads (optimising compiles, garbage
   * collection) and SQLite's checkpoint thread. Undefined for a server that is not Node.
   */
  mainThreadCpuMs(): number | undefined;
  stop(): Promise<void>;
}

/** The fields of /proc/<pid>/stat after the command name, or undefined once the process is gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and every live process below it. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    if (parent) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** The highest VmHWM (resident set size) of any process of the server, in bytes. */
function readPeakRss(pid: number): number {
  let peak = 0;
  for (const member of processTree(pid)) {
    try {
      const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${member}/status`, 'utf8'))?.[1];
      peak = Math.max(peak, Number(kb ?? 0) * 1024);
    } catch {
      // exited meanwhile
    }
  }
  if (!peak) throw new Error(`no VmHWM for ${pid} or its children`);
  return peak;
}

/**
 * utime + stime of the server's processes from /proc/<pid>/stat (clock ticks; 100 per second on
 * Linux), or of their main threads alone (/proc/<pid>/task/<pid>/stat).
 */
function readCpuMs(pid: number, { mainThreads = false } = {}): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    const fields = statFields(mainThreads ? `${member}/task/${member}` : member);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / 100;
}

/** The program and arguments that start a server of `kind` on `port`. */
function command(spec: ServerSpec, port: number): { file: string; args: string[] } {
  // gthread workers keep connections alive; gunicorn's default sync workers close each one after its
  // answer, and under autocannon's kept-alive connections they queue for seconds and drop some.
  if (spec.kind === 'authlib') return { file: GUNICORN, args: ['--workers', '2', '--worker-class', 'gthread', '--threads', '4', '--bind', `127.0.0.1:${port}`, '--chdir', AUTHLIB_DIR, 'authlib_server:app'] };
  const flags = [...(spec.kind === 'gatehouse-dist' ? [] : ['--import', 'tsx']), ...(spec.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${spec.profileDir}`] : [])];
  return { file: process.execPath, args: [...flags, ...(spec.nodeFlags ?? []), spec.entry ?? ENTRIES[spec.kind]] };
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Drops the request lines (`"msg":"request"`, one per request at LOG_LEVEL=info, as the image
 * ships) from a server's log and keeps every other line. The bench calls it between scenarios,
 * when no load runs and the servers have written their batched lines (within 100 ms), so that a
 * full run's logs stay small instead of growing by a gigabyte; the server keeps appending to the
 * same file (it opened it to append). A file that grew while it was read is left for next time.
 */
export function dropRequestLines(file: string): void {
  if (!existsSync(file)) return;
  const content = readFileSync(file);
  const text = content.toString('utf8');
  if (!text.includes('"msg":"request"')) return;
  const kept = text.split('\n').filter((line) => !line.includes('"msg":"request"')).join('\n');
  if (statSync(file).size !== content.length) return;
  writeFileSync(file, kept);
}

/** Starts the server and resolves once discovery answers 200; `coldStartMs` is spawn → that answer. */
export async function startServer(spec: ServerSpec): Promise<RunningServer & { coldStartMs: number }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const out = openSync(spec.logFile, 'a');
  if (!existsSync(spec.entry ?? ENTRIES[spec.kind])) throw new Error(`${spec.entry ?? ENTRIES[spec.kind]} does not exist (npm run build makes dist/)`);
  const { file, args } = command(spec, port);
  const started = performance.now();
  const child = spawn(file, args, {
    cwd: ROOT,
    env: { ...process.env, ...spec.env, DATABASE_URL: spec.databaseUrl, PORT: String(port), HOST: '127.0.0.1', ISSUER: url },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  const discovery = `${url}/.well-known/openid-configuration`;
  for (;;) {
    if (exited) throw new Error(`${spec.name} ${exited} before answering; see ${spec.logFile}`);
    if (performance.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`${spec.name} did not answer discovery within 60 s; see ${spec.logFile}`);
    }
    try {
      const response = await fetch(discovery);
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  const coldStartMs = performance.now() - started;
  const pid = child.pid as number;
  return {
    spec,
    url,
    pid,
    coldStartMs,
    peakRss: () => readPeakRss(pid),
    cpuMs: () => readCpuMs(pid),
    mainThreadCpuMs: () => (spec.kind === 'authlib' ? undefined : readCpuMs(pid, { mainThreads: true })),
    async stop() {
      child.kill('SIGTERM');
      await waitForExit(child, 15_000);
    },
  };
}
