// A person's page in the console, /console/people/:id: their profile (edited here), their groups,
// how they sign in (password set or sent by mail, two-step verification reset, passkeys removed),
// a brute-force lockout (ended here), disabling and enabling, and their sessions (ended here).
// Every action is one call into the management layer with the administrator as the actor, then
// a redirect back to the page with a notice; refused input shows the page again with the
// field's error and nothing changed.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { listGroups, setUserGroups, userGroups } from '../../groups/service.js';
import { lockoutOf, unlockUser } from '../../people/lockouts.js';
import { getUser, listUserPasskeys, listUserSessions, removeUserPasskey, resetUserMfa, revokeUserSession, setUserDisabled, setUserPassword, updateUser } from '../../people/service.js';
import { describeUserAgent } from '../user-agents.js';
import { consoleOf, consoleRedirect, formErrorsOf, managementOf, renderConsole, type ConsoleDeps, type FormErrors } from './deps.js';

const Id = z.string().min(1).max(255);
const Params = z.object({ id: Id });
const Text = z.string().max(4096).default('');
const ProfileForm = z.object({
  email: Text,
  email_verified: z.literal('yes').optional(),
  /** How the box was shown: an unchanged box leaves verification to the service (a new address is unproven). */
  email_verified_shown: z.enum(['yes', 'no']).optional(),
  name: Text,
  given_name: Text,
  family_name: Text,
  preferred_username: Text,
  picture: Text,
  locale: Text,
});
const PROFILE_FIELDS = ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'] as const;
const DisabledForm = z.object({ disabled: z.enum(['true', 'false']) });
const PasswordForm = z.object({ password: Text });
/** One checkbox per group: `groups` repeated (or absent when none is ticked). */
const GroupsForm = z.object({ groups: z.union([z.string().max(64), z.array(z.string().max(64)).max(1000)]).optional() });

/** Which part of the page a form's errors belong to. */
type Part = 'profile' | 'password' | 'groups';

export function createPersonRouter(deps: ConsoleDeps): Router {
  const management = managementOf(deps);
  const router = Router();

  router.get('/people/:id', showPerson);
  router.post('/people/:id/profile', saveProfile);
  router.post('/people/:id/groups', saveGroups);
  router.post('/people/:id/disabled', setDisabled);
  router.post('/people/:id/password', setPassword);
  router.post('/people/:id/password-reset', sendPasswordReset);
  router.post('/people/:id/mfa/reset', resetMfa);
  router.post('/people/:id/passkeys/:passkeyId/remove', removePasskey);
  router.post('/people/:id/unlock', unlock);
  router.post('/people/:id/sessions/:sessionId/end', endSession);

  const idOf = (req: Request) => Params.parse(req.params).id;
  const pageOf = (id: string) => `/console/people/${encodeURIComponent(id)}`;

  async function renderPerson(req: Request, res: Response, id: string, status = 200, locals: { part?: Part; errors?: FormErrors; values?: Record<string, string> } = {}) {
    const { users, groups, lockouts } = management;
    // getUser first: an unknown person is a 404 before anything else is read.
    const person = await getUser(users, id);
    const [memberOf, allGroups, passkeys, sessions, lockout] = await Promise.all([userGroups(groups, id), listGroups(groups), listUserPasskeys(users, id), listUserSessions(users, id), lockoutOf(lockouts, id)]);
    await renderConsole(req, res, 'person', {
      person,
      memberOf,
      allGroups,
      passkeys,
      sessions: sessions.map((session) => ({ ...session, device: describeUserAgent(session.last_seen?.user_agent) })),
      lockout,
      canSendReset: deps.passwordReset !== undefined,
      passwordMinLength: deps.config.passwords.minLength,
      part: locals.part,
      errors: locals.errors ?? {},
      values: locals.values ?? {},
    }, status);
  }

  async function showPerson(req: Request, res: Response) {
    await renderPerson(req, res, idOf(req));
  }

  /** Runs one service call; a refusal of the form shows the page again with the errors in `part`. */
  async function attempt(req: Request, res: Response, id: string, part: Part, values: Record<string, string>, call: () => Promise<unknown>, notice: string) {
    try {
      await call();
    } catch (error) {
      const { status, errors } = formErrorsOf(error, consoleOf(res).lang);
      return renderPerson(req, res, id, status, { part, errors, values });
    }
    consoleRedirect(res, pageOf(id), notice);
  }

  async function saveProfile(req: Request, res: Response) {
    const id = idOf(req);
    const fields = ProfileForm.parse(req.body);
    // Every profile field is sent: an emptied one is cleared (null). The verified box counts only
    // when the administrator changed it: left as shown, a changed address becomes unverified and
    // gets its link (and the old address a notice), as through the admin API without the field.
    const verified = fields.email_verified === 'yes';
    const boxChanged = fields.email_verified_shown === undefined || verified !== (fields.email_verified_shown === 'yes');
    const input = {
      email: fields.email.trim(),
      ...(boxChanged ? { email_verified: verified } : {}),
      ...Object.fromEntries(PROFILE_FIELDS.map((field) => [field, fields[field].trim() || null])),
    };
    const values = { ...fields, email_verified: fields.email_verified ?? '', email_verified_shown: fields.email_verified_shown ?? '' };
    await attempt(req, res, id, 'profile', values, () => updateUser(management.users, id, input, consoleOf(res).actor), 'profile_saved');
  }

  async function saveGroups(req: Request, res: Response) {
    const id = idOf(req);
    const { groups } = GroupsForm.parse(req.body);
    const names = groups === undefined ? [] : Array.isArray(groups) ? groups : [groups];
    await attempt(req, res, id, 'groups', {}, () => setUserGroups(management.groups, id, { groups: names }, consoleOf(res).actor), 'groups_saved');
  }

  async function setDisabled(req: Request, res: Response) {
    const id = idOf(req);
    const { disabled } = DisabledForm.parse(req.body);
    await setUserDisabled(management.users, id, { disabled: disabled === 'true' }, consoleOf(res).actor);
    consoleRedirect(res, pageOf(id), disabled === 'true' ? 'person_disabled' : 'person_enabled');
  }

  async function setPassword(req: Request, res: Response) {
    const id = idOf(req);
    const { password } = PasswordForm.parse(req.body);
    await attempt(req, res, id, 'password', {}, () => setUserPassword(management.users, id, { password }, consoleOf(res).actor), 'password_set');
  }

  async function sendPasswordReset(req: Request, res: Response) {
    const id = idOf(req);
    await getUser(management.users, id);
    const sent = deps.passwordReset ? await deps.passwordReset.sendLink(id, consoleOf(res).actor) : false;
    consoleRedirect(res, pageOf(id), sent ? 'reset_sent' : 'reset_not_sent');
  }

  async function resetMfa(req: Request, res: Response) {
    const id = idOf(req);
    const removed = await resetUserMfa(management.users, id, consoleOf(res).actor);
    consoleRedirect(res, pageOf(id), removed ? 'mfa_reset' : 'mfa_was_off');
  }

  async function removePasskey(req: Request, res: Response) {
    const id = idOf(req);
    const passkeyId = Id.parse(req.params.passkeyId);
    await removeUserPasskey(management.users, id, passkeyId, consoleOf(res).actor);
    consoleRedirect(res, pageOf(id), 'passkey_removed');
  }

  async function unlock(req: Request, res: Response) {
    const id = idOf(req);
    const { unlocked } = await unlockUser(management.lockouts, id, consoleOf(res).actor);
    consoleRedirect(res, pageOf(id), unlocked ? 'unlocked' : 'was_not_locked');
  }

  async function endSession(req: Request, res: Response) {
    const id = idOf(req);
    const sessionId = Id.parse(req.params.sessionId);
    await revokeUserSession(management.users, id, sessionId, consoleOf(res).actor);
    consoleRedirect(res, pageOf(id), 'session_ended');
  }

  return router;
}
