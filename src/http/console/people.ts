// The console's people list, /console/people: search by email or name, a page at a time, and
// adding someone (an account with a password, or an invitation by mail when mail is set up).
// A person's own page and what can be done there is person.ts.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { inviteUser } from '../../people/invitations.js';
import { createUser, listUsers } from '../../people/service.js';
import { translate } from '../messages/index.js';
import { consoleOf, consoleRedirect, formErrorsOf, managementOf, renderConsole, type ConsoleDeps, type FormErrors } from './deps.js';

const PAGE_SIZE = 25;

const ListQuery = z.object({
  q: z.string().trim().max(254).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(40_000).optional().catch(undefined),
});

const Text = z.string().max(4096).default('');
/** The create form as sent; empty optional fields are left out, the management layer checks the rest. */
const CreateForm = z.object({ email: Text, name: Text, password: Text, email_verified: z.literal('yes').optional() });
const InviteForm = z.object({ email: Text, name: Text, locale: Text });

const orUndefined = (value: string) => (value.trim() ? value.trim() : undefined);

export function createPeopleRouter(deps: ConsoleDeps): Router {
  const management = managementOf(deps);
  const router = Router();

  router.get('/people', showPeople);
  router.get('/people/new', showNewPerson);
  router.post('/people', addPerson);
  router.post('/people/invite', invitePerson);

  async function showPeople(req: Request, res: Response) {
    const { q, page = 1 } = ListQuery.parse(req.query);
    const result = await listUsers(management.users, { search: q || undefined, offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE });
    const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
    const link = (n: number) => `/console/people?${new URLSearchParams({ ...(q ? { q } : {}), page: String(n) })}`;
    await renderConsole(req, res, 'people', {
      people: result.users,
      total: result.total,
      q: q ?? '',
      page,
      pages,
      previous: page > 1 ? link(page - 1) : undefined,
      next: page < pages ? link(page + 1) : undefined,
    });
  }

  const renderNew = (req: Request, res: Response, status: number, locals: { errors?: FormErrors; invitationErrors?: FormErrors; values?: Record<string, string>; invitation?: Record<string, string> }) =>
    renderConsole(req, res, 'person-new', { canInvite: management.invitations !== undefined, passwordMinLength: deps.config.passwords.minLength, invitation: {}, invitationErrors: {}, ...locals }, status);

  async function showNewPerson(req: Request, res: Response) {
    await renderNew(req, res, 200, {});
  }

  async function addPerson(req: Request, res: Response) {
    const fields = CreateForm.parse(req.body);
    const input = { email: fields.email.trim(), password: fields.password, name: orUndefined(fields.name), email_verified: fields.email_verified === 'yes' };
    try {
      const user = await createUser(management.users, input, consoleOf(res).actor);
      consoleRedirect(res, `/console/people/${encodeURIComponent(user.id)}`, 'person_created');
    } catch (error) {
      const { status, errors } = formErrorsOf(error, consoleOf(res).lang);
      await renderNew(req, res, status, { errors, values: { email: fields.email, name: fields.name, email_verified: fields.email_verified ?? '' } });
    }
  }

  async function invitePerson(req: Request, res: Response) {
    const fields = InviteForm.parse(req.body);
    const invitations = management.invitations;
    if (!invitations) return renderNew(req, res, 409, { invitationErrors: { form: translate(consoleOf(res).lang, 'console.people.inviteUnavailable') } });
    try {
      await inviteUser(invitations, { email: fields.email.trim(), name: orUndefined(fields.name), locale: orUndefined(fields.locale) }, consoleOf(res).actor);
      consoleRedirect(res, '/console/people', 'person_invited');
    } catch (error) {
      const { status, errors } = formErrorsOf(error, consoleOf(res).lang);
      await renderNew(req, res, status, { invitationErrors: errors, invitation: fields });
    }
  }

  return router;
}
