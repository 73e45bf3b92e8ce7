// The server's log output (src/core/logger.ts batchedStdout): lines are written in batches, yet
// a line logged alone still arrives soon, nothing logged before an exit or a fatal line is lost,
// and every line arrives whole and in order.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const LOGGER = fileURLToPath(new URL('../../src/core/logger.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-batched-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  /** Each complete line of standard output, parsed, with the time since the start that it arrived. */
  lines: { line: Record<string, unknown>; afterMs: number }[];
  /** Output after the last newline: a line cut short. */
  rest: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A script that runs `body` with `logger` (batchedStdout, at info) in scope. */
function scriptWithLogger(name: string, body: string): string {
  const script = join(dir, `${name}.ts`);
  writeFileSync(script, `import { batchedStdout, createLogger } from ${JSON.stringify(LOGGER)};\nconst logger = createLogger({ logLevel: 'info' }, batchedStdout());\n${body}\n`);
  return script;
}

/** Runs `body` in a child process with `logger` in scope (or, with `copies`, that many processes sharing one pipe); `onLine` sees each line as it arrives. */
function runWithLogger(name: string, body: string, onLine: (line: Record<string, unknown>, kill: (signal: NodeJS.Signals) => void) => void = () => {}, copies = 1): Promise<Run> {
  const script = scriptWithLogger(name, body);
  const node = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}`;
  const child =
    copies === 1
      ? spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      : // The pipe's reader starts late, so that the pipe fills and the writers wait on it, as behind a slow log collector.
        spawn('sh', ['-c', `(${Array.from({ length: copies }, (_, i) => `COPY=${i} ${node} &`).join(' ')} wait) | (sleep 1; cat)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = Date.now();
  const lines: Run['lines'] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    for (const text of complete) {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push({ line, afterMs: Date.now() - started });
      onLine(line, (signal) => child.kill(signal));
    }
  });
  // A child that outlives its test (an output that never writes) does not outlive the suite.
  const deadline = setTimeout(() => child.kill('SIGKILL'), 8_000);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(deadline);
      resolve({ lines, rest: buffered, code, signal });
    }),
  );
}

describe('the batched log output', () => {
  it('writes a line logged alone within a moment, while the process runs on', async () => {
    const run = await runWithLogger(
      'alone',
      `logger.info({ n: 1 }, 'alone');
       setTimeout(() => logger.info({ n: 2 }, 'later'), 600);
       setTimeout(() => {}, 60_000);`,
      (line, kill) => line.msg === 'later' && kill('SIGKILL'),
    );
    expect(run.lines.map(({ line }) => line.msg)).toEqual(['alone', 'later']);
    // 'later' was logged 600 ms after 'alone', and both arrived before the process was killed.
    const [alone, later] = run.lines;
    expect(later!.afterMs - alone!.afterMs).toBeGreaterThan(400);
    expect(run.signal).toBe('SIGKILL');
  });

  it('loses nothing logged just before process.exit, and every line arrives whole and in order', async () => {
    const run = await runWithLogger(
      'exit',
      `for (let n = 0; n < 5000; n++) logger.info({ n, note: n % 7 === 0 ? 'ü'.repeat(n % 300) : 'x' }, 'numbered');
       process.exit(3);`,
    );
    expect(run.code).toBe(3);
    expect(run.rest).toBe('');
    expect(run.lines.map(({ line }) => line.n)).toEqual(Array.from({ length: 5000 }, (_, n) => n));
  });

  it('keeps the lines of processes sharing one pipe whole, each process\'s in order', async () => {
    const run = await runWithLogger(
      'shared',
      `const copy = Number(process.env.COPY);
       for (let n = 0; n < 4000; n++) logger.info({ copy, n, padding: 'p'.repeat((n * 37) % 900) }, 'shared');`,
      () => {},
      2,
    );
    expect(run.rest).toBe('');
    for (const copy of [0, 1]) {
      expect(run.lines.filter(({ line }) => line.copy === copy).map(({ line }) => line.n)).toEqual(Array.from({ length: 4000 }, (_, n) => n));
    }
  });

  it("writes what waits at exit and on logger.flush() even while libuv's pool, where the output's own writes run, is busy", async () => {
    const run = await runWithLogger(
      'busy-pool',
      `import { pbkdf2 } from 'node:crypto';
       // Every thread of the pool (4) busy for a second or two: a write handed to it would still wait when the process exits.
       for (let i = 0; i < 4; i++) pbkdf2('password', 'salt', 4_000_000, 32, 'sha256', () => {});
       logger.info('flushed');
       logger.flush();
       logger.info('at exit');
       process.exit(0);`,
    );
    expect(run.lines.map(({ line }) => line.msg)).toEqual(['flushed', 'at exit']);
  });

  it("writes what waits when asked to (logger.flush()), before the process's next direct write to standard output", async () => {
    const run = await runWithLogger(
      'flushed',
      `logger.info('logged');
       logger.flush();
       console.log(JSON.stringify({ msg: 'printed' }));
       logger.info('logged after');`,
    );
    expect(run.lines.map(({ line }) => line.msg)).toEqual(['logged', 'printed', 'logged after']);
  });

  it('writes a fatal line and everything before it at once, so that a process killed right after keeps them', async () => {
    const run = await runWithLogger(
      'fatal',
      `logger.info('before');
       logger.fatal('fatal');
       process.kill(process.pid, 'SIGKILL');`,
    );
    expect(run.signal).toBe('SIGKILL');
    expect(run.lines.map(({ line }) => line.msg)).toEqual(['before', 'fatal']);
  });

  it('writes the lines waiting when the process ends on its own, its event loop empty', async () => {
    const run = await runWithLogger('natural', `logger.info('first'); logger.warn('last');`);
    expect(run.code).toBe(0);
    expect(run.lines.map(({ line }) => line.msg)).toEqual(['first', 'last']);
  });
});
