// The real server process (src/server.ts compiled, or `gatehouse serve`), for tests of what only a whole
// process shows: clustering, signals, exit codes. Its JSON log lines are parsed as they come.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from './compiled.js';
import { freePort } from './ports.js';
import { TEST_SECRET } from './gatehouse.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine {
  msg?: string;
  level?: number;
  pid?: number;
  worker?: number;
  request_id?: string;
  path?: string;
  exitCode?: number | null;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Parsed JSON log lines (a line that is not JSON is kept as `msg`). */
  readonly logs: LogLine[];
  readonly stderr: () => string;
  /** Its exit code and when it came. */
  readonly exited: Promise<{ code: number | null; at: number }>;
}

/** Starts the server (or `script` with `args`, e.g. src/cli.ts serve) with the test settings (TEST_SECRET, LOG_LEVEL=info, no demo) and `env`. */
export function spawnServer(env: Record<string, string>, script = 'src/server.ts', args: string[] = []): ServerProcess {
  const child = spawn(process.execPath, [...nodeArgsFor(script), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', HOST: '127.0.0.1', SECRETS: TEST_SECRET, LOG_LEVEL: 'info', DEMO: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
  return { child, logs, stderr: () => stderr, exited };
}

/** Resolves once discovery answers 200 on `port`; throws, with the server's stderr, if it exits first or takes longer than `timeoutMs`. */
export async function untilDiscoveryAnswers({ child, stderr }: ServerProcess, port: number, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before answering:\n${stderr()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`discovery did not answer within ${timeoutMs / 1000} s:\n${stderr()}`);
    await sleep(100);
  }
}

/**
 * One server at a time on a fresh SQLite file: `start` spawns it and resolves once discovery
 * answers; `cleanUp` (for afterEach) kills it if it still runs and removes its file.
 */
export function serverOnFreshSqlite(name: string) {
  let running: ServerProcess | undefined;
  let dir: string | undefined;
  return {
    async start(env: Record<string, string> = {}): Promise<ServerProcess & { port: number }> {
      dir = mkdtempSync(join(tmpdir(), `gatehouse-${name}-`));
      const port = await freePort();
      running = spawnServer({ PORT: String(port), DATABASE_URL: `file:${join(dir, 'gatehouse.db')}`, ...env });
      await untilDiscoveryAnswers(running, port);
      return { ...running, port };
    },
    cleanUp(): void {
      const child = running?.child;
      if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      running = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}
