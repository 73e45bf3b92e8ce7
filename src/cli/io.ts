// What every command shares: the errors that choose an exit code, option parsers that turn bad
// arguments into usage errors, and the two output shapes (a table for people, one JSON
// document for scripts). Data goes to stdout; notes and errors go to stderr.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';

/** Exit codes: 0 done, 1 the operation failed or was refused, 2 the command line was wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** The operation could not be done (not found, refused, invalid input data): exit 1. */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/** The command line itself is wrong in a way commander cannot see: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const DURATION = /^(\d+)([smhd])?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "3600", "90s", "15m", "12h", "7d" → seconds; undefined when it is not one. */
export function durationSeconds(value: string): number | undefined {
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * (UNIT_SECONDS[match[2] ?? 's'] ?? 1);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** commander argument parser for a positive duration. */
export function parseDuration(value: string): number {
  const seconds = durationSeconds(value);
  if (seconds === undefined) throw new InvalidArgumentError('Expected a positive duration: seconds or with a unit s/m/h/d, e.g. 3600, 15m, 12h or 7d.');
  return seconds;
}

/** commander argument parser for a whole number in [min, max]. */
export function parseWholeNumber(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    return Number(value);
  };
}

/** Prints one JSON document (dates as ISO strings), for `--json`. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  return [header, ...rows].map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** Notes for people (counts, hints), kept off stdout so scripts read only data. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * A password piped on stdin (`--password-stdin`): everything up to the end, less one trailing
 * newline, so `printf %s "$PW" |` and `echo "$PW" |` give the same password.
 */
export async function readPasswordFromStdin(stdin: NodeJS.ReadStream = process.stdin, { option = '--password-stdin', what = 'password', example = 'printf %s "$PASSWORD" | gatehouse users create …' } = {}): Promise<string> {
  if (stdin.isTTY) throw new UsageError(`${option} reads the ${what} from a pipe, e.g. ${example}`);
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!password) throw new CommandFailed(`No ${what} arrived on stdin.`);
  return password;
}

/** `--metadata '{"…": …}'` or `--metadata @file.json` (clients, idps): a JSON object given inline or in a file. */
export function parseJsonObject(value: string): Record<string, unknown> {
  let text = value;
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch (error) {
      throw new InvalidArgumentError(`Cannot read ${value.slice(1)}: ${(error as Error).message}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`Expected a JSON object (or @file): ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('Expected a JSON object (or @file).');
  return parsed as Record<string, unknown>;
}
