// `gatehouse idps list|get|create|update|delete`: the upstream identity providers people may sign
// in through, by the same management layer as the admin API (src/federation/service.ts). The
// client secret arrives on stdin only (--client-secret-stdin), is stored encrypted and is never
// printed.
import type { Command } from 'commander';
import type { Actor } from '../audit/log.js';
import type { IdpManagementDeps, IdpView } from '../federation/service.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, parseJsonObject, printJson, readPasswordFromStdin, UsageError } from './io.js';

const ACTOR: Actor = { via: 'cli' };
const SECRET_STDIN = ['--client-secret-stdin', 'read the client secret from stdin (e.g. printf %s "$SECRET" | …)'] as const;

// The management layer loads only when an idps command runs.
const manage = () => import('../federation/service.js');

async function deps({ config, db, logger }: CommandContext): Promise<IdpManagementDeps> {
  const { createAuditLog } = await import('../audit/log.js');
  return { db, secrets: config.secrets, audit: createAuditLog(db, logger), issuer: config.issuer };
}

const readSecret = () => readPasswordFromStdin(process.stdin, { option: '--client-secret-stdin', what: 'client secret', example: 'printf %s "$SECRET" | gatehouse idps create …' });

function describeIdp(idp: IdpView): string {
  const rows = Object.entries(idp).map(([field, value]) => [field, typeof value === 'string' ? value : JSON.stringify(value)]);
  return formatTable(['FIELD', 'VALUE'], rows);
}

interface FieldOptions {
  name?: string;
  kind?: string;
  preset?: string;
  issuer?: string;
  clientId?: string;
  scope?: string;
  enabled?: boolean;
  declaration?: Record<string, unknown>;
  clientSecretStdin?: boolean;
  json?: boolean;
}

/** --declaration, then the named options over it. */
function declarationInput(options: FieldOptions & { id?: string }): Record<string, unknown> {
  const input: Record<string, unknown> = { ...options.declaration };
  const fields: Array<[string, unknown]> = [
    ['id', options.id],
    ['display_name', options.name],
    ['kind', options.kind],
    ['preset', options.preset],
    ['issuer', options.issuer],
    ['client_id', options.clientId],
    ['scope', options.scope],
    ['enabled', options.enabled],
  ];
  for (const [field, value] of fields) if (value !== undefined) input[field] = value;
  return input;
}

function withFieldOptions(command: Command): Command {
  return command
    .option('--name <name>', 'display_name, shown on the sign-in button')
    .option('--kind <kind>', 'oidc (discovery from --issuer) or oauth2 (endpoints given, or --preset github)')
    .option('--preset <preset>', 'oauth2 only: github')
    .option('--issuer <url>', 'oidc: the issuer URL')
    .option('--client-id <id>', 'the client_id Gatehouse was registered with upstream')
    .option('--scope <scopes>', 'the scopes to ask for, space-separated (default oidc: "openid email profile")')
    .option(...SECRET_STDIN)
    .option('--declaration <json>', 'any other field (claims, email_domains, create_accounts, link_by_verified_email, trusted, endpoints …) as a JSON object, or @file.json; the options above win', parseJsonObject);
}

export function registerIdps(program: Command): void {
  const group = program
    .command('idps')
    .summary('list, create, update and delete upstream identity providers')
    .description('Upstream identity providers people may sign in through (OpenID Connect issuers, GitHub-style OAuth 2.0). Register ISSUER/federation/<id>/callback as the redirect URI upstream.');

  group
    .command('list')
    .description('List the identity providers, by id.')
    .option('--json', 'print a JSON array (never a client secret)')
    .action(async (options: { json?: boolean }) => {
      const idps = await withDatabase(async (context) => (await manage()).listIdps({ db: context.db, issuer: context.config.issuer }));
      if (options.json) return printJson(idps);
      if (!idps.length) return note('No identity providers yet: declare one with `gatehouse idps create`.');
      const rows = idps.map((idp) => [idp.id, idp.display_name, idp.kind + (idp.preset ? ` (${String(idp.preset)})` : ''), idp.enabled ? 'enabled' : 'disabled', idp.redirect_uri]);
      console.log(formatTable(['ID', 'NAME', 'KIND', 'STATE', 'REDIRECT URI'], rows));
    });

  group
    .command('get')
    .description('Show one identity provider (never its client secret).')
    .argument('<id>', 'the identity provider')
    .option('--json', 'print it as a JSON object')
    .action(async (id: string, options: { json?: boolean }) => {
      const idp = await withDatabase(async (context) => (await manage()).getIdp({ db: context.db, issuer: context.config.issuer }, id));
      if (options.json) printJson(idp);
      else console.log(describeIdp(idp));
    });

  withFieldOptions(group.command('create').description('Declare an identity provider. Its client secret is read from stdin (--client-secret-stdin), stored encrypted and never shown.').argument('<id>', 'its id, in URLs: lower-case letters, digits, - and _'))
    .option('--disabled', 'declare it without offering it yet')
    .option('--json', 'print it as a JSON object')
    .action(async (id: string, options: FieldOptions & { disabled?: boolean }) => {
      if (!options.clientSecretStdin) throw new UsageError('the client secret is read from stdin only: add --client-secret-stdin and pipe it in');
      const secret = await readSecret();
      const input = { ...declarationInput({ ...options, id, enabled: options.disabled ? false : undefined }), client_secret: secret };
      const idp = await withDatabase(async (context) => (await manage()).createIdp(await deps(context), input, ACTOR));
      if (options.json) printJson(idp);
      else console.log(describeIdp(idp));
      note(`Register ${idp.redirect_uri} as the redirect URI at the provider.`);
    });

  withFieldOptions(group.command('update').description('Change an identity provider: only the fields given change; null in --declaration removes an optional one. --client-secret-stdin replaces the secret.').argument('<id>', 'the identity provider'))
    .option('--enable', 'offer it on the sign-in page')
    .option('--disable', 'stop offering it (its linked identities stay)')
    .option('--json', 'print it as a JSON object')
    .action(async (id: string, options: FieldOptions & { enable?: boolean; disable?: boolean }) => {
      if (options.enable && options.disable) throw new UsageError('--enable and --disable contradict each other');
      const changes = declarationInput({ ...options, enabled: options.enable ? true : options.disable ? false : undefined });
      if (options.clientSecretStdin) changes.client_secret = await readSecret();
      if (!Object.keys(changes).length) throw new UsageError('name at least one field to change (see --help)');
      const idp = await withDatabase(async (context) => (await manage()).updateIdp(await deps(context), id, changes, ACTOR));
      if (options.json) printJson(idp);
      else console.log(describeIdp(idp));
    });

  group
    .command('delete')
    .description('Delete an identity provider and every identity linked through it (people keep their other ways to sign in).')
    .argument('<id>', 'the identity provider')
    .option('--json', 'print {"deleted": id} as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withDatabase(async (context) => (await manage()).deleteIdp(await deps(context), id, ACTOR));
      if (options.json) printJson({ deleted: id });
      else console.log(`deleted identity provider ${id}`);
    });
}
