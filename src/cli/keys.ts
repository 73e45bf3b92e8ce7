// `gatehouse keys list|rotate`: the signing keys and their lifecycle (src/keys/signing-keys.ts).
import { Option, type Command } from 'commander';
import { createAuditStore } from '../audit/store.js';
import { listSigningKeys, rotateSigningKeys, SIGNING_ALGORITHMS, type SigningAlgorithm } from '../keys/signing-keys.js';
import { withDatabase } from './context.js';
import { formatTable, note, printJson } from './io.js';

const iso = (date: Date | null) => date?.toISOString() ?? '-';

export function registerKeys(program: Command): void {
  const group = program
    .command('keys')
    .summary('list and rotate the signing keys')
    .description('The keys that sign ID tokens and JWTs. A rotated-in key is published in /jwks at once and signs after KEY_ACTIVATION_DELAY; the key it replaces stays published until every token it signed has expired.');

  group
    .command('list')
    .description('List every signing key with its state: active (signs), published (in /jwks, verifies only) or retired.')
    .option('--json', 'print a JSON array')
    .action(async (options: { json?: boolean }) => {
      const keys = await withDatabase(({ db }) => listSigningKeys(db));
      if (options.json) {
        printJson(keys);
        return;
      }
      if (!keys.length) {
        note('No signing keys yet: they are created when Gatehouse first starts.');
        return;
      }
      const rows = keys.map((key) => [key.kid, key.alg, String(key.generation), key.state, iso(key.createdAt), iso(key.activatesAt), iso(key.retireAfter)]);
      console.log(formatTable(['KID', 'ALG', 'GENERATION', 'STATE', 'CREATED', 'SIGNS FROM', 'RETIRES AFTER'], rows));
    });

  group
    .command('rotate')
    .description('Create a new generation of signing keys (every algorithm, or one). Running instances pick it up at their next key refresh (KEY_REFRESH_INTERVAL).')
    .addOption(new Option('--alg <alg>', 'rotate only this algorithm').choices(SIGNING_ALGORITHMS))
    .option('--immediate', 'sign with the new key at once instead of after KEY_ACTIVATION_DELAY (for a suspected key compromise: relying parties that cached /jwks reject new tokens until they fetch it again)')
    .option('--json', 'print the new and retiring keys as JSON')
    .action(async (options: { alg?: SigningAlgorithm; immediate?: boolean; json?: boolean }) => {
      const result = await withDatabase(async ({ config, db }) => {
        const rotation = await rotateSigningKeys(db, config, { alg: options.alg, immediate: options.immediate });
        const audit = createAuditStore(db);
        for (const key of rotation.created) {
          await audit.record({ type: 'key.created', details: { kid: key.kid, alg: key.alg, activatesAt: key.activatesAt.toISOString(), reason: options.immediate ? 'manual, immediate' : 'manual' } });
        }
        return rotation;
      });
      if (options.json) {
        printJson(result);
        return;
      }
      for (const key of result.created) console.log(`${key.alg}: new key ${key.kid} (generation ${key.generation}) is published now and signs from ${iso(key.activatesAt)}`);
      for (const key of result.retiring) console.log(`${key.alg}: ${key.kid} stays published until ${iso(key.retireAfter)}`);
      for (const alg of result.alreadyRotated) note(`${alg}: another instance rotated it at the same moment; its new key stands.`);
    });
}
