// The console's upstream identity providers section, /console/identity-providers: the providers
// people may sign in with, a new one, editing one, turning one on or off, and deleting one after
// a confirmation page (its linked identities go with it). Each change is one call to
// federation/service.ts, as the admin API makes it. The client secret is write-only: the form
// never shows it, and an empty field on an edit keeps the stored one. Every page names the
// redirect URI to register at the upstream provider. The claim mapping (`claims`) is kept as
// stored: the seed file, the admin API or the CLI set it.
import { Router, type Request, type Response } from 'express';
import { federationCallbackUrl, IDP_AUTH_METHODS, IDP_KINDS, IDP_PRESETS } from '../../federation/schema.js';
import { createIdp, deleteIdp, getIdp, listIdps, updateIdp, type IdpView } from '../../federation/service.js';
import { consoleOf, consoleRedirect, managementOf, renderConsole, type ConsoleDeps } from './deps.js';
import { bodyOf, isTicked, linesField, orFormAgain, textField, type FormBody } from './forms.js';

const TEXT_FIELDS = ['display_name', 'icon_uri', 'kind', 'preset', 'issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'emails_endpoint', 'client_id', 'token_endpoint_auth_method', 'scope'] as const;
const LINE_FIELDS = ['email_domains', 'mfa_acr_values'] as const;
/** Each has a default in the schema: an unticked box says false, never "remove". */
const BOOLEAN_FIELDS = ['enabled', 'create_accounts', 'link_by_verified_email', 'trusted'] as const;

const CHOICES = { kinds: IDP_KINDS, presets: IDP_PRESETS, authMethods: IDP_AUTH_METHODS };

/** The form as the service's input; `empty` as in clients.ts (undefined on creation, null on an edit). */
function idpInput<E extends null | undefined>(body: FormBody, empty: E): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const field of TEXT_FIELDS) input[field] = textField(body, field, empty);
  for (const field of LINE_FIELDS) input[field] = linesField(body, field, empty);
  for (const field of BOOLEAN_FIELDS) input[field] = isTicked(body, field);
  // Write-only: given, it replaces the stored secret; empty on an edit, the stored one stays.
  input.client_secret = textField(body, 'client_secret', undefined);
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

/** A stored provider in the form's shape; never its secret (which the view does not carry anyway). */
function idpValues(idp: IdpView): FormBody {
  const stored = idp as Record<string, unknown>;
  const values: FormBody = {};
  for (const field of TEXT_FIELDS) values[field] = typeof stored[field] === 'string' ? (stored[field] as string) : '';
  for (const field of LINE_FIELDS) values[field] = ((stored[field] as string[] | undefined) ?? []).join('\n');
  for (const field of BOOLEAN_FIELDS) values[field] = stored[field] === true ? 'on' : undefined;
  return values;
}

export function createIdentityProvidersRouter(deps: ConsoleDeps): Router {
  const { idps: management } = managementOf(deps);
  const base = '/console/identity-providers';
  const callbackExample = federationCallbackUrl(deps.config.issuer, '<id>');
  const router = Router();

  router.get('/identity-providers', showList);
  router.get('/identity-providers/new', showNew);
  router.post('/identity-providers/new', create);
  router.get('/identity-providers/:id/edit', showEdit);
  router.post('/identity-providers/:id/edit', update);
  router.post('/identity-providers/:id/enable', (req, res) => setEnabled(req, res, true));
  router.post('/identity-providers/:id/disable', (req, res) => setEnabled(req, res, false));
  router.get('/identity-providers/:id/delete', confirmDelete);
  router.post('/identity-providers/:id/delete', remove);

  const idOf = (req: Request) => String(req.params.id);
  const editPath = (id: string) => `${base}/${encodeURIComponent(id)}/edit`;
  const newLocals = { idp: undefined, choices: CHOICES, callbackExample };

  async function showList(req: Request, res: Response) {
    await renderConsole(req, res, 'identity-providers', { idps: await listIdps(management) });
  }

  async function showNew(req: Request, res: Response) {
    await renderConsole(req, res, 'identity-provider-form', { ...newLocals, values: { enabled: 'on', kind: 'oidc', preset: '', token_endpoint_auth_method: '' } });
  }

  async function create(req: Request, res: Response) {
    const body = bodyOf(req);
    const input = { ...idpInput(body, undefined), id: textField(body, 'id', undefined) };
    const created = await orFormAgain(req, res, 'identity-provider-form', newLocals, () => createIdp(management, input, consoleOf(res).actor));
    if (created) consoleRedirect(res, editPath(created.id), 'idp_created');
  }

  async function showEdit(req: Request, res: Response) {
    const idp = await getIdp(management, idOf(req));
    await renderConsole(req, res, 'identity-provider-form', { idp, choices: CHOICES, values: idpValues(idp) });
  }

  async function update(req: Request, res: Response) {
    const idp = await getIdp(management, idOf(req));
    const input = idpInput(bodyOf(req), null);
    const updated = await orFormAgain(req, res, 'identity-provider-form', { idp, choices: CHOICES }, () => updateIdp(management, idp.id, input, consoleOf(res).actor));
    if (updated) consoleRedirect(res, editPath(idp.id), 'idp_updated');
  }

  async function setEnabled(req: Request, res: Response, enabled: boolean) {
    await updateIdp(management, idOf(req), { enabled }, consoleOf(res).actor);
    consoleRedirect(res, base, enabled ? 'idp_enabled' : 'idp_disabled');
  }

  async function confirmDelete(req: Request, res: Response) {
    await renderConsole(req, res, 'identity-provider-delete', { idp: await getIdp(management, idOf(req)) });
  }

  async function remove(req: Request, res: Response) {
    await deleteIdp(management, idOf(req), consoleOf(res).actor);
    consoleRedirect(res, base, 'idp_deleted');
  }

  return router;
}
