// The `gatehouse` command tree (commander), and how its outcomes become exit codes:
// 0 done, 1 the operation failed or was refused (with the reason on stderr), 2 usage error.
// Each command group lives in its own file and registers itself here.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { packagePath } from '../config/package-root.js';
import { ManagementError, ValidationError } from '../core/errors.js';
import { registerAudit } from './audit.js';
import { registerClients } from './clients.js';
import { registerConfig } from './config-check.js';
import { registerGroups } from './groups.js';
import { CommandFailed, EXIT, UsageError } from './io.js';
import { registerIdps } from './idps.js';
import { registerKeys } from './keys.js';
import { registerMail } from './mail.js';
import { registerMigrate } from './migrate.js';
import { registerInitialAccessTokens } from './registration.js';
import { registerSeed } from './seed.js';
import { registerServe } from './serve.js';
import { registerUsers } from './users.js';

const HELP_FOOTER = `
Configuration comes from the environment (and CONFIG_FILE), as for the server (see .env.example);
--help and usage errors need none. Add --help to any command for its options.

Exit codes: 0 done, 1 the operation failed or was refused (reason on stderr), 2 usage error.`;

function packageVersion(): string {
  const text = readFileSync(packagePath('package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

export function createProgram({ onServe = () => {} }: { onServe?: () => void } = {}): Command {
  const program = new Command('gatehouse')
    .description('Operate a Gatehouse OpenID Connect provider: run it, migrate and seed its database, manage clients, users, groups, keys, upstream identity providers and registration tokens, read the audit trail, test mail and read the outbox.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for the command')
    // Inherited by every command added below: usage errors throw instead of exiting, so
    // runCli decides the exit code; each error is followed by a pointer to --help.
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .addHelpText('after', HELP_FOOTER);

  registerServe(program, onServe);
  registerMigrate(program);
  registerSeed(program);
  registerClients(program);
  registerUsers(program);
  registerGroups(program);
  registerKeys(program);
  registerIdps(program);
  registerInitialAccessTokens(program);
  registerAudit(program);
  registerMail(program);
  registerConfig(program);
  return program;
}

/**
 * Runs the command line and returns its exit code, or 'serving' when `serve` started the
 * server (which then runs until a signal ends it).
 */
export async function runCli(argv: readonly string[]): Promise<number | 'serving'> {
  let serving = false;
  const program = createProgram({ onServe: () => (serving = true) });
  try {
    await program.parseAsync([...argv]);
    return serving ? 'serving' : EXIT.ok;
  } catch (error) {
    // commander has already printed its message (or the help / version asked for).
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n(add --help for usage)`);
      return EXIT.usage;
    }
    if (error instanceof ValidationError) {
      const issues = error.issues.map((issue) => `  - ${issue.path ? `${issue.path}: ` : ''}${issue.message}`);
      console.error(`error: invalid input; nothing was changed:\n${issues.join('\n')}`);
      return EXIT.failed;
    }
    if (error instanceof ManagementError) {
      console.error(`error: ${error.message}`);
      return EXIT.failed;
    }
    // Loaded already if they are what failed: the command imported them.
    const [{ ConfigError }, { MigrationError }] = await Promise.all([import('../config/index.js'), import('../db/migrate.js')]);
    if (error instanceof ConfigError || error instanceof MigrationError || error instanceof CommandFailed) {
      console.error(error.message);
      return EXIT.failed;
    }
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.failed;
  }
}
