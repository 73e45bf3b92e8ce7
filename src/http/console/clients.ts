// The console's clients section, /console/clients: the registered clients, a new one (its secret
// shown once, on the page the creation answers with, and never again), editing the metadata an
// administrator changes by hand (redirect URIs, scopes, grants, how it authenticates, branding),
// a new secret (shown once), and deleting one after a confirmation page. Every change is one call
// to clients/service.ts, as the admin API makes it; Gatehouse's built-in clients (the account page
// and this console) are not stored, so they are listed read-only and cannot be changed here.
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { builtInClients } from '../../clients/built-in-clients.js';
import { AUTH_METHODS, GRANT_TYPES, RESPONSE_TYPES } from '../../clients/schema.js';
import { createClient, deleteClient, getClient, listClients, rotateClientSecret, updateClient, type ClientView, type ClientWithSecret } from '../../clients/service.js';
import { consoleOf, consoleRedirect, managementOf, renderConsole, type ConsoleDeps } from './deps.js';
import { bodyOf, checkedField, isTicked, linesField, orFormAgain, textField, type FormBody } from './forms.js';

const TEXT_FIELDS = ['client_name', 'scope', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'jwks_uri', 'token_endpoint_auth_method', 'application_type'] as const;
const LINE_FIELDS = ['redirect_uris', 'post_logout_redirect_uris'] as const;
const CHECKED_FIELDS = ['grant_types', 'response_types'] as const;
const BOOLEAN_FIELDS = ['gatehouse_require_mfa'] as const;

/** What the form's choices are: the values clients/schema.ts accepts. */
const CHOICES = { grantTypes: GRANT_TYPES, responseTypes: RESPONSE_TYPES, authMethods: AUTH_METHODS, applicationTypes: ['web', 'native'] };

/**
 * The form as the service's input. `empty` is what an empty field becomes: undefined on creation
 * (the default applies), null on an edit (the field is removed, so its default applies).
 */
export function clientInput<E extends null | undefined>(body: FormBody, empty: E): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const field of TEXT_FIELDS) input[field] = textField(body, field, empty);
  for (const field of LINE_FIELDS) input[field] = linesField(body, field, empty);
  for (const field of CHECKED_FIELDS) input[field] = checkedField(body, field, empty);
  for (const field of BOOLEAN_FIELDS) input[field] = isTicked(body, field) ? true : empty;
  // A client without a redirecting grant has no response types: none ticked says exactly that.
  const grants = (input.grant_types as string[] | undefined | null) ?? ['authorization_code'];
  if (input.response_types === empty && !grants.includes('authorization_code') && !grants.includes('implicit')) input.response_types = [];
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

/** A stored client in the form's shape (what the edit form shows first). */
function clientValues(client: ClientView): FormBody {
  const values: FormBody = {};
  const stored = client as Record<string, unknown>;
  for (const field of TEXT_FIELDS) values[field] = typeof stored[field] === 'string' ? (stored[field] as string) : '';
  for (const field of LINE_FIELDS) values[field] = ((stored[field] as string[] | undefined) ?? []).join('\n');
  for (const field of CHECKED_FIELDS) values[field] = (stored[field] as string[] | undefined) ?? [];
  for (const field of BOOLEAN_FIELDS) values[field] = stored[field] === true ? 'on' : undefined;
  return values;
}

export function createClientsRouter(deps: ConsoleDeps): Router {
  const { clients: management } = managementOf(deps);
  const { config } = deps;
  const builtIn = builtInClients(config.issuer, { consoleRequiresMfa: config.console.requireMfa });
  const router = Router();

  router.get('/clients', showList);
  router.get('/clients/new', showNew);
  router.post('/clients/new', create);
  router.get('/clients/:id/edit', showEdit);
  router.post('/clients/:id/edit', update);
  router.post('/clients/:id/rotate-secret', rotateSecret);
  router.get('/clients/:id/delete', confirmDelete);
  router.post('/clients/:id/delete', remove);

  const idOf = (req: Request) => String(req.params.id);

  async function showList(req: Request, res: Response) {
    await renderConsole(req, res, 'clients', { clients: await listClients(management), builtIn });
  }

  async function showNew(req: Request, res: Response) {
    // The defaults chosen, as they are when nothing is sent. The client ID is filled in (random)
    // rather than left to the service: sending the form twice (a reload of the secret's page)
    // is then refused as taken instead of registering a second client.
    await renderConsole(req, res, 'client-form', { client: undefined, choices: CHOICES, values: { client_id: randomUUID(), token_endpoint_auth_method: '', application_type: '' } });
  }

  /** The secret is in this answer and nowhere else: the page says so, and is never cached (the router's no-store). */
  async function showSecret(req: Request, res: Response, result: ClientWithSecret, reason: 'created' | 'rotated' | 'regenerated', status = 200) {
    await renderConsole(req, res, 'client-secret', { client: result.client, secret: result.client_secret, reason }, status);
  }

  async function create(req: Request, res: Response) {
    const body = bodyOf(req);
    const input = { ...clientInput(body, undefined), client_id: textField(body, 'client_id', undefined) };
    const result = await orFormAgain(req, res, 'client-form', { client: undefined, choices: CHOICES }, () => createClient(management, input, consoleOf(res).actor));
    if (!result) return;
    if (result.client_secret) return showSecret(req, res, result, 'created', 201);
    consoleRedirect(res, `/console/clients/${encodeURIComponent(result.client.client_id)}/edit`, 'client_created');
  }

  async function showEdit(req: Request, res: Response) {
    const client = await getClient(management, idOf(req));
    await renderConsole(req, res, 'client-form', { client, choices: CHOICES, values: clientValues(client) });
  }

  async function update(req: Request, res: Response) {
    const client = await getClient(management, idOf(req));
    const input = clientInput(bodyOf(req), null);
    const result = await orFormAgain(req, res, 'client-form', { client, choices: CHOICES }, () => updateClient(management, client.client_id, input, consoleOf(res).actor));
    if (!result) return;
    // A change of how it authenticates can need a new kind of secret: shown once, like any other.
    if (result.client_secret) return showSecret(req, res, result, 'regenerated');
    consoleRedirect(res, `/console/clients/${encodeURIComponent(client.client_id)}/edit`, 'client_updated');
  }

  async function rotateSecret(req: Request, res: Response) {
    await showSecret(req, res, await rotateClientSecret(management, idOf(req), consoleOf(res).actor), 'rotated');
  }

  async function confirmDelete(req: Request, res: Response) {
    await renderConsole(req, res, 'client-delete', { client: await getClient(management, idOf(req)) });
  }

  async function remove(req: Request, res: Response) {
    await deleteClient(management, idOf(req), consoleOf(res).actor);
    consoleRedirect(res, '/console/clients', 'client_deleted');
  }

  return router;
}
