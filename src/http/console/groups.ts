// The console's groups, /console/groups: the list (and a new group), a group's page (rename,
// describe, its members: added by email, removed one by one), and deleting it after a
// confirmation page, which works without JavaScript. Every change goes through groups/service.ts
// with the administrator as the actor.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { addGroupMembers, createGroup, deleteGroup, getGroup, listGroupMembers, listGroups, removeGroupMembers, updateGroup } from '../../groups/service.js';
import { getUserByEmail } from '../../people/service.js';
import { consoleOf, consoleRedirect, formErrorsOf, managementOf, renderConsole, type ConsoleDeps, type FormErrors } from './deps.js';

const Params = z.object({ name: z.string().min(1).max(64) });
const Text = z.string().max(4096).default('');
const GroupForm = z.object({ name: Text, description: Text });
const AddMemberForm = z.object({ email: Text });
const RemoveMemberForm = z.object({ user_id: z.string().min(1).max(255) });

const pathOf = (name: string) => `/console/groups/${encodeURIComponent(name)}`;

export function createGroupsRouter(deps: ConsoleDeps): Router {
  const { groups, users } = managementOf(deps);
  const router = Router();

  router.get('/groups', showGroups);
  router.post('/groups', addGroup);
  router.get('/groups/:name', showGroup);
  router.post('/groups/:name', saveGroup);
  router.get('/groups/:name/delete', confirmDelete);
  router.post('/groups/:name/delete', removeGroup);
  router.post('/groups/:name/members', addMember);
  router.post('/groups/:name/members/remove', removeMember);

  const nameOf = (req: Request) => Params.parse(req.params).name;
  const refused = (res: Response, error: unknown) => formErrorsOf(error, consoleOf(res).lang);

  async function renderGroups(req: Request, res: Response, status = 200, locals: { errors?: FormErrors; values?: Record<string, string> } = {}) {
    await renderConsole(req, res, 'groups', { groups: await listGroups(groups), adminGroup: deps.config.console.adminGroup, ...locals }, status);
  }

  async function showGroups(req: Request, res: Response) {
    await renderGroups(req, res);
  }

  async function addGroup(req: Request, res: Response) {
    const fields = GroupForm.parse(req.body);
    try {
      const group = await createGroup(groups, { name: fields.name.trim(), ...(fields.description.trim() ? { description: fields.description.trim() } : {}) }, consoleOf(res).actor);
      consoleRedirect(res, pathOf(group.name), 'group_created');
    } catch (error) {
      const { status, errors } = refused(res, error);
      await renderGroups(req, res, status, { errors, values: fields });
    }
  }

  /** The group's page; `part` says which form the errors belong to (the group's fields, or adding a member). */
  async function renderGroup(req: Request, res: Response, name: string, status = 200, locals: { part?: 'group' | 'members'; errors?: FormErrors; values?: Record<string, string> } = {}) {
    const group = await getGroup(groups, name);
    const members = await listGroupMembers(groups, name);
    await renderConsole(req, res, 'group', { group, members, isAdminGroup: group.name === deps.config.console.adminGroup, part: locals.part, errors: locals.errors ?? {}, values: locals.values ?? {} }, status);
  }

  async function showGroup(req: Request, res: Response) {
    await renderGroup(req, res, nameOf(req));
  }

  async function saveGroup(req: Request, res: Response) {
    const name = nameOf(req);
    const fields = GroupForm.parse(req.body);
    try {
      const group = await updateGroup(groups, name, { name: fields.name.trim(), description: fields.description.trim() || null }, consoleOf(res).actor);
      consoleRedirect(res, pathOf(group.name), 'group_saved');
    } catch (error) {
      const { status, errors } = refused(res, error);
      await renderGroup(req, res, name, status, { part: 'group', errors, values: fields });
    }
  }

  async function confirmDelete(req: Request, res: Response) {
    const group = await getGroup(groups, nameOf(req));
    await renderConsole(req, res, 'group-delete', { group, isAdminGroup: group.name === deps.config.console.adminGroup });
  }

  async function removeGroup(req: Request, res: Response) {
    await deleteGroup(groups, nameOf(req), consoleOf(res).actor);
    consoleRedirect(res, '/console/groups', 'group_deleted');
  }

  async function addMember(req: Request, res: Response) {
    const name = nameOf(req);
    const { email } = AddMemberForm.parse(req.body);
    try {
      const person = await getUserByEmail(users, email);
      await addGroupMembers(groups, name, { user_ids: [person.id] }, consoleOf(res).actor);
      consoleRedirect(res, pathOf(name), 'member_added');
    } catch (error) {
      const { status, errors } = refused(res, error);
      await renderGroup(req, res, name, status, { part: 'members', errors, values: { email } });
    }
  }

  async function removeMember(req: Request, res: Response) {
    const name = nameOf(req);
    const { user_id: userId } = RemoveMemberForm.parse(req.body);
    await removeGroupMembers(groups, name, { user_ids: [userId] }, consoleOf(res).actor);
    consoleRedirect(res, pathOf(name), 'member_removed');
  }

  return router;
}
