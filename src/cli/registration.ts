// `gatehouse initial-access-token create`: a token that lets an app register itself at
// /register (FEATURE_REGISTRATION=true). The engine issues it, so it is stored like its own.
import type { Command } from 'commander';
import { loadConfiguration, withDatabase } from './context.js';
import { CommandFailed, note, parseDuration, printJson } from './io.js';

const DAY = 86_400;

export function registerInitialAccessTokens(program: Command): void {
  const group = program.command('initial-access-token').summary('create tokens for dynamic client registration').description('Initial access tokens for dynamic client registration (FEATURE_REGISTRATION=true).');
  group
    .command('create')
    .description('Print a new initial access token; apps send it as "Authorization: Bearer <token>" to /register.')
    .option('--expires-in <duration>', 'how long it is valid: seconds or with a unit s/m/h/d (e.g. 3600, 15m, 12h, 7d)', parseDuration, DAY)
    .option('--json', 'print the token, its expiry and the registration endpoint as JSON')
    .action(async (options: { expiresIn: number; json?: boolean }) => {
      const config = await loadConfiguration();
      if (!config.features.registration) throw new CommandFailed('Dynamic client registration is off: set FEATURE_REGISTRATION=true on the server (and here) first.');
      await withDatabase(
        async ({ db, logger }) => {
          // The engine loads only here: it is most of the start-up time of any command.
          const { createEngine } = await import('../server.js');
          const { provider } = await createEngine(config, db, logger);
          const token = await new provider.InitialAccessToken({ expiresIn: options.expiresIn }).save();
          const registrationEndpoint = `${config.issuer}/register`;
          if (options.json) {
            printJson({ token, expiresIn: options.expiresIn, expiresAt: new Date(Date.now() + options.expiresIn * 1000).toISOString(), registrationEndpoint });
          } else {
            console.log(token);
            note(`Valid for ${options.expiresIn} seconds. Send it as "Authorization: Bearer <token>" to ${registrationEndpoint}.`);
          }
        },
        { config },
      );
    });
}
