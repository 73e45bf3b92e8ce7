// The minimal sign-in and consent pages both benchmark baselines serve (baseline-server.ts,
// bare-engine-server.ts), in the spirit of the engine's own example: one form, one bcrypt
// comparison, and consent granted with the sign-in (Gatehouse remembers consent, so its measured
// flows also show the login page only). The form's actions are the paths the bench's browser
// (test/helpers/browser.ts) submits to.
import type { IncomingMessage, ServerResponse } from 'node:http';
import bcrypt from 'bcrypt';
import type Provider from 'oidc-provider';

/** The person signing in: an account id and a bcrypt hash, found by email. */
export type FindPerson = (email: string) => Promise<{ id: string; passwordHash: string | null } | null | undefined>;

const INTERACTION_PATH = /^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/;
const NO_SUCH_HASH = '$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva';

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function page(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
}

async function interaction(provider: Provider, findPerson: FindPerson, req: IncomingMessage, res: ServerResponse, uid: string, step: string | undefined): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && !step) {
    const action = details.prompt.name === 'login' ? 'login' : 'confirm';
    const fields = action === 'login' ? '<input name="email"><input name="password" type="password">' : '';
    return page(res, 200, `<!doctype html><form method="post" action="/interaction/${uid}/${action}">${fields}<button>Go</button></form>`);
  }
  const form = await readForm(req);
  const clientId = String(details.params.client_id);
  if (step === 'login') {
    const person = await findPerson(form.get('email') ?? '');
    const ok = await bcrypt.compare(form.get('password') ?? '', person?.passwordHash ?? NO_SUCH_HASH);
    if (!person || !ok) return page(res, 400, '<!doctype html><p>wrong email or password</p>');
    const grant = new provider.Grant({ accountId: person.id, clientId });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { login: { accountId: person.id }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }
  // A consent prompt after sign-in (prompt=consent): grant what it lists.
  const accountId = details.session?.accountId;
  if (!accountId) return page(res, 400, '<!doctype html><p>no session</p>');
  const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/** A node:http listener: the interaction pages, and everything else to the engine. */
export function engineWithSignInPages(provider: Provider, findPerson: FindPerson, onError: (error: unknown) => void) {
  const engine = provider.callback();
  return function serve(req: IncomingMessage, res: ServerResponse): void {
    const match = INTERACTION_PATH.exec((req.url ?? '').split('?')[0] ?? '');
    if (!match) return void engine(req, res);
    interaction(provider, findPerson, req, res, match[1] as string, match[2]).catch((error: unknown) => {
      onError(error);
      if (!res.headersSent) page(res, 500, '<!doctype html><p>error</p>');
    });
  };
}
