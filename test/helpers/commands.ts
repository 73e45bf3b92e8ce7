// The command line and the seed entry point, run as real processes the way an operator runs
// them (the command compiled, see compiled.ts): exit code and output, whatever the outcome.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from './compiled.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node <script> …args` (compiled.ts) with only PATH, HOME, NODE_ENV=test, LOG_LEVEL=silent
 * and `env` in its environment; `input` is written to its stdin (which is otherwise closed at once).
 */
export function runScript(script: string, args: string[], env: Record<string, string> = {}, input = ''): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgsFor(script), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** The `gatehouse` command. */
export const runCli = (args: string[], env: Record<string, string> = {}, input = '') => runScript('src/cli.ts', args, env, input);

/** `prisma db seed`'s entry point (prisma/seed.ts), which reads SEED_FILE. */
export const runSeedScript = (env: Record<string, string>) => runScript('prisma/seed.ts', [], env);
