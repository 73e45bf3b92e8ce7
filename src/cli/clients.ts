// `gatehouse clients list|get|create|update|delete|rotate-secret`: the registered clients, through the
// same management layer as the admin API (src/clients/service.ts). A new secret is printed
// once, on stdout; it is stored only hashed or encrypted.
import type { Command } from 'commander';
import type { ClientMetadata } from '../clients/store.js';
import type { Actor } from '../audit/log.js';
import type { ClientManagementDeps, ClientView, ClientWithSecret } from '../clients/service.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, parseJsonObject, printJson, UsageError } from './io.js';

const ACTOR: Actor = { via: 'cli' };

// The management layer (and its dependencies) load only when a clients command runs.
const manage = () => import('../clients/service.js');

async function deps({ config, db, logger }: CommandContext, validateWithEngine?: ClientManagementDeps['validateWithEngine']): Promise<ClientManagementDeps> {
  const { createAuditLog } = await import('../audit/log.js');
  return { db, secrets: config.secrets, audit: createAuditLog(db, logger), validateWithEngine };
}

/**
 * The engine's own metadata check, so a client created here is one the engine loads. The engine
 * is built on first use only: input that fails Gatehouse's own schemas never needs it.
 */
function engineValidator(context: CommandContext): NonNullable<ClientManagementDeps['validateWithEngine']> {
  let engine: Promise<{ provider: { Client: { validate(metadata: ClientMetadata): Promise<unknown> } } }> | undefined;
  return async (metadata: ClientMetadata) => {
    engine ??= import('../server.js').then(({ createEngine }) => createEngine(context.config, context.db, context.logger));
    await (await engine).provider.Client.validate(metadata);
  };
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function printSecret(result: ClientWithSecret, json: boolean | undefined): void {
  if (json) {
    printJson(result);
    return;
  }
  console.log(`client_id      ${result.client.client_id}`);
  if (result.client_secret) {
    console.log(`client_secret  ${result.client_secret}`);
    note('The client secret is shown only this once: store it now. Gatehouse keeps only a hash (or an encryption) of it.');
  }
}

function describeClient(client: ClientView): string {
  const rows = Object.entries(client).map(([field, value]) => [field, typeof value === 'string' ? value : JSON.stringify(value)]);
  return formatTable(['FIELD', 'VALUE'], rows);
}

interface MetadataOptions {
  name?: string;
  redirectUri?: string[];
  postLogoutRedirectUri?: string[];
  grantType?: string[];
  responseType?: string[];
  authMethod?: string;
  scope?: string;
  metadata?: Record<string, unknown>;
  json?: boolean;
}

/** --metadata, then the named options over it. */
function metadataInput(options: MetadataOptions & { id?: string }): Record<string, unknown> {
  const input: Record<string, unknown> = { ...options.metadata };
  const fields: Array<[string, unknown]> = [
    ['client_id', options.id],
    ['client_name', options.name],
    ['redirect_uris', options.redirectUri],
    ['post_logout_redirect_uris', options.postLogoutRedirectUri],
    ['grant_types', options.grantType],
    ['response_types', options.responseType],
    ['token_endpoint_auth_method', options.authMethod],
    ['scope', options.scope],
  ];
  for (const [field, value] of fields) if (value !== undefined) input[field] = value;
  return input;
}

/** The metadata options shared by create and update. */
function withMetadataOptions(command: Command, defaults: { grantType: string; responseType: string; authMethod: string }): Command {
  return command
    .option('--name <name>', 'client_name, shown on the consent page')
    .option('--redirect-uri <uri>', 'a redirect URI (repeat for more)', collect)
    .option('--post-logout-redirect-uri <uri>', 'a post-logout redirect URI (repeat for more)', collect)
    .option('--grant-type <type>', `a grant type (repeat for more${defaults.grantType})`, collect)
    .option('--response-type <type>', `a response type (repeat for more${defaults.responseType})`, collect)
    .option('--auth-method <method>', `token_endpoint_auth_method: client_secret_basic${defaults.authMethod}, client_secret_post, client_secret_jwt, private_key_jwt or none (public client)`)
    .option('--scope <scopes>', 'the scopes it may ask for, space-separated (e.g. "openid profile email")');
}

interface CreateOptions extends MetadataOptions {
  id?: string;
}

export function registerClients(program: Command): void {
  const group = program.command('clients').summary('list, create, update, delete clients and rotate their secrets').description('The clients (relying parties) registered with Gatehouse.');

  group
    .command('list')
    .description('List every registered client, by client_id.')
    .option('--json', 'print a JSON array of clients (without any form of their secret)')
    .action(async (options: { json?: boolean }) => {
      const clients = await withDatabase(async (context) => (await manage()).listClients(context));
      if (options.json) {
        printJson(clients);
        return;
      }
      if (!clients.length) {
        note('No clients yet: create one with `gatehouse clients create`.');
        return;
      }
      const rows = clients.map((client) => [
        client.client_id,
        (client.client_name as string | undefined) ?? '-',
        (client.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic',
        ((client.grant_types as string[] | undefined) ?? ['authorization_code']).join(','),
        ((client.redirect_uris as string[] | undefined) ?? []).join(' ') || '-',
      ]);
      console.log(formatTable(['CLIENT ID', 'NAME', 'AUTH METHOD', 'GRANT TYPES', 'REDIRECT URIS'], rows));
    });

  group
    .command('get')
    .description('Show one client\'s metadata (never its secret).')
    .argument('<client_id>', 'the client')
    .option('--json', 'print the client as a JSON object')
    .action(async (clientId: string, options: { json?: boolean }) => {
      const client = await withDatabase(async (context) => (await manage()).getClient(context, clientId));
      if (options.json) printJson(client);
      else console.log(describeClient(client));
    });

  withMetadataOptions(
    group
      .command('create')
      .description('Register a client. Its secret (for secret-based authentication) is generated and printed once. Options set the common metadata; --metadata adds any other RFC 7591 field Gatehouse understands (see README, "Clients and users").')
      .option('--id <client_id>', 'its client_id (default: a random UUID)'),
    { grantType: '; default authorization_code', responseType: '; default code', authMethod: ' (default)' },
  )
    .option('--metadata <json>', 'more metadata as a JSON object, or @file.json; the options above win', parseJsonObject)
    .option('--json', 'print {client, client_secret} as JSON')
    .action(async (options: CreateOptions) => {
      const result = await withDatabase(async (context) => (await manage()).createClient(await deps(context, engineValidator(context)), metadataInput(options), ACTOR));
      printSecret(result, options.json);
    });

  withMetadataOptions(
    group
      .command('update')
      .description('Change a client\'s metadata: only the fields given change (lists are replaced whole). A change of authentication method that needs a new secret generates one and prints it once; the secret is otherwise kept.')
      .argument('<client_id>', 'the client'),
    { grantType: '', responseType: '', authMethod: '' },
  )
    .option('--metadata <json>', 'fields to change as a JSON object, or @file.json; null removes a field (e.g. \'{"policy_uri": null}\'); the options above win', parseJsonObject)
    .option('--json', 'print {client, client_secret?} as JSON')
    .action(async (clientId: string, options: MetadataOptions) => {
      const changes = metadataInput(options);
      if (!Object.keys(changes).length) throw new UsageError('name at least one field to change (see --help)');
      const result = await withDatabase(async (context) => (await manage()).updateClient(await deps(context, engineValidator(context)), clientId, changes, ACTOR));
      if (options.json) printJson(result);
      else if (result.client_secret) printSecret(result, false);
      else console.log(describeClient(result.client));
    });

  group
    .command('delete')
    .description('Delete a client and end everything issued to it: grants, codes and tokens.')
    .argument('<client_id>', 'the client')
    .option('--json', 'print {"deleted": client_id} as JSON')
    .action(async (clientId: string, options: { json?: boolean }) => {
      await withDatabase(async (context) => (await manage()).deleteClient(await deps(context), clientId, ACTOR));
      if (options.json) printJson({ deleted: clientId });
      else console.log(`deleted client ${clientId}`);
    });

  group
    .command('rotate-secret')
    .description('Give a client a new secret, printed once. The old secret stops working at once; tokens already issued stay valid until they expire.')
    .argument('<client_id>', 'the client')
    .option('--json', 'print {client, client_secret} as JSON')
    .action(async (clientId: string, options: { json?: boolean }) => {
      const result = await withDatabase(async (context) => (await manage()).rotateClientSecret(await deps(context), clientId, ACTOR));
      printSecret(result, options.json);
    });
}
