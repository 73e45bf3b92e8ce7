// `gatehouse serve`: the server itself, started exactly as `npm start` starts it. The server's
// modules load only when it runs, so other commands and --help start quickly.
import type { Command } from 'commander';
import { CommandFailed } from './io.js';

export function registerServe(program: Command, keepRunning: () => void): void {
  program
    .command('serve')
    .summary('start the server (as `npm start` does)')
    .description('Start Gatehouse, exactly as `npm start` or `node dist/server.js` does; configuration comes from the environment. SIGTERM or SIGINT shuts it down gracefully.')
    .action(async () => {
      keepRunning();
      try {
        const { main } = await import('../server.js');
        await main();
      } catch (error) {
        const { ConfigError } = await import('../config/index.js');
        if (error instanceof ConfigError || !(error instanceof Error)) throw error;
        throw new CommandFailed(`Gatehouse failed to start: ${error.message}`);
      }
    });
}
