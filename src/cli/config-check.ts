// `gatehouse config check`: validate the configuration as the server would, and print what is
// in effect and where each value came from, with secrets masked (src/config/effective.ts).
import type { Command } from 'commander';
import { note, printJson } from './io.js';

export function registerConfig(program: Command): void {
  const group = program.command('config').summary('check the configuration').description('The configuration, read from the environment (and CONFIG_FILE) exactly as the server reads it.');
  group
    .command('check')
    .description('Validate the configuration and print every setting in effect with its source (env, file or default). Secrets are masked. Old configuration file keys are reported on stderr, with their new names. Exit code 1 lists every problem.')
    .option('--json', 'print a JSON array of {name, fileKey, value, source, masked}')
    .action(async (options: { json?: boolean }) => {
      const { describeEffectiveConfig, formatEffectiveConfig, loadConfig } = await import('../config/index.js');
      const config = loadConfig();
      const settings = describeEffectiveConfig(config);
      for (const warning of config.warnings) note(`warning: ${warning}`);
      if (options.json) {
        printJson(settings);
        return;
      }
      console.log(formatEffectiveConfig(settings));
      note('The configuration is valid.');
    });
}
