// The admin API's route table: every endpoint under /admin, its zod schemas and its one call into
// the management layer (clients/, people/, groups/, keys/, federation/, audit/ service.ts). The router (admin.ts) and
// the OpenAPI document (openapi.ts) are both built from it, so neither can drift from the other.
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Actor, AuditLog } from '../audit/log.js';
import { AuditEventList, AuditQuery, queryAuditEvents } from '../audit/service.js';
import { ClientList, ClientView, ClientWithSecret, CreateClientInput, createClient, deleteClient, getClient, listClients, rotateClientSecret, UpdateClientInput, updateClient, type ClientManagementDeps } from '../clients/service.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { CreateIdpInput, createIdp, deleteIdp, getIdp, IdpList, IdpView, LinkedIdentityList, listIdps, listLinkedIdentities, unlinkIdentity, UpdateIdpInput, updateIdp, type IdpManagementDeps } from '../federation/service.js';
import { CreateGroupInput, GroupList, GroupMemberList, GroupMembersInput, GroupView, SetUserGroupsInput, UpdateGroupInput, UserGroupList } from '../groups/schema.js';
import { addGroupMembers, createGroup, deleteGroup, getGroup, listGroupMembers, listGroups, removeGroupMembers, setUserGroups, updateGroup, userGroups, type GroupManagementDeps } from '../groups/service.js';
import { listOutbox, sendTestMail } from '../mail/service.js';
import type { AccountMail } from '../people/email-verification.js';
import { listLockedAccounts, listLockedAddresses, LockoutList, LockoutView, lockoutOf, UnlockAddressInput, UnlockAddressResult, unlockAddress, UnlockResult, unlockUser, type LockoutDeps } from '../people/lockouts.js';
import { InvitationList, InvitationQuery, InvitationView, InviteInput, inviteUser, listInvitations, resendInvitation, revokeInvitation, type InvitationDeps } from '../people/invitations.js';
import { OutboxList, OutboxQuery, TestMailInput, TestMailResult } from '../mail/schema.js';
import { createMailTransport } from '../mail/transport.js';
import { KeyRotation, listKeys, RotateKeysInput, rotateKeys, SigningKeyList } from '../keys/service.js';
import {
  CreateUserInput,
  createUser,
  getUser,
  GrantList,
  ListUsersQuery,
  listUserGrants,
  listUserPasskeys,
  listUserSessions,
  listUsers,
  PasskeyList,
  removeUserPasskey,
  resetUserMfa,
  revokeUserGrant,
  revokeUserSession,
  SessionList,
  SetDisabledInput,
  SetPasswordInput,
  setUserDisabled,
  setUserPassword,
  UpdateUserInput,
  updateUser,
  UserPage,
  UserView,
  type UserManagementDeps,
} from '../people/service.js';

export interface AdminDeps {
  config: Config;
  provider: Provider;
  db: Db;
  audit: AuditLog;
  /** Makes this instance use rotated signing keys now (keys/refresher.ts); absent, it follows at its next refresh. */
  refreshKeys?: () => Promise<unknown>;
  /** Mails an address change sends (people/email-verification.ts); absent, none. */
  accountMail?: AccountMail;
}

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What a handler gets: path parameters, the query and the body as sent (the management layer parses them), and who asks. */
export interface AdminCall {
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  actor: Actor;
}

export interface AdminRoute {
  method: Method;
  /** Express-style, under /admin: `/clients/:clientId`. */
  path: string;
  summary: string;
  tag: 'clients' | 'users' | 'groups' | 'keys' | 'identity-providers' | 'audit' | 'mail';
  query?: z.ZodType;
  body?: z.ZodType;
  /** The response body; absent: 204 No Content. */
  response?: z.ZodType;
  /** Default 200 (204 without a response). */
  status?: number;
  /** When it can answer 409 besides creating and changing (which always can): why. */
  conflict?: string;
  handle(call: AdminCall): Promise<unknown>;
}

export const Empty = z.strictObject({}).meta({ id: 'Empty', description: 'No body (or an empty object).' });

/** The route table: every admin endpoint, its schemas and its one call. */
export function adminRoutes({ config, db, provider, audit, refreshKeys, accountMail }: AdminDeps): AdminRoute[] {
  const clients: ClientManagementDeps = {
    db,
    secrets: config.secrets,
    audit,
    validateWithEngine: async (metadata) => provider.Client.validate(metadata),
  };
  const users: UserManagementDeps = { db, audit, bcryptCost: config.passwords.bcryptCost, passwordMinLength: config.passwords.minLength, mail: accountMail };
  const lockouts: LockoutDeps = { db, audit, bruteForce: config.bruteForce };
  const keys = { db, config, audit, refreshKeys };
  const idps: IdpManagementDeps = { db, secrets: config.secrets, audit, issuer: config.issuer };
  const groups: GroupManagementDeps = { db, audit };
  const id = (call: AdminCall, name: string) => call.params[name] as string;
  const invitations = (): InvitationDeps => {
    if (!accountMail) throw new Error('invitations need the outbox (accountMail), which this admin API was built without');
    return { db, audit, mail: accountMail };
  };
  async function sendTestMailOnce(body: unknown) {
    const transport = createMailTransport(config.mail, { issuer: config.issuer });
    try {
      return await sendTestMail(transport, body, config.branding.productName);
    } finally {
      transport.close();
    }
  }

  return [
    { method: 'get', path: '/clients', tag: 'clients', summary: 'List clients', response: ClientList, handle: async () => ({ clients: await listClients(clients) }) },
    { method: 'post', path: '/clients', tag: 'clients', summary: 'Register a client (its secret is returned once)', body: CreateClientInput, response: ClientWithSecret, status: 201, handle: (c) => createClient(clients, c.body, c.actor) },
    { method: 'get', path: '/clients/:clientId', tag: 'clients', summary: 'Get a client', response: ClientView, handle: (c) => getClient(clients, id(c, 'clientId')) },
    { method: 'patch', path: '/clients/:clientId', tag: 'clients', summary: 'Change a client', body: UpdateClientInput, response: ClientWithSecret, handle: (c) => updateClient(clients, id(c, 'clientId'), c.body, c.actor) },
    { method: 'delete', path: '/clients/:clientId', tag: 'clients', summary: 'Delete a client and everything issued to it', handle: (c) => deleteClient(clients, id(c, 'clientId'), c.actor) },
    { method: 'post', path: '/clients/:clientId/secret', tag: 'clients', summary: 'Rotate the client secret (the new one is returned once)', body: Empty, response: ClientWithSecret, handle: (c) => rotateClientSecret(clients, id(c, 'clientId'), c.actor) },

    { method: 'get', path: '/users', tag: 'users', summary: 'List users (search, paging)', query: ListUsersQuery, response: UserPage, handle: (c) => listUsers(users, c.query) },
    { method: 'post', path: '/users', tag: 'users', summary: 'Create a user', body: CreateUserInput, response: UserView, status: 201, handle: (c) => createUser(users, c.body, c.actor) },
    { method: 'get', path: '/users/:userId', tag: 'users', summary: 'Get a user', response: UserView, handle: (c) => getUser(users, id(c, 'userId')) },
    { method: 'patch', path: '/users/:userId', tag: 'users', summary: "Change a user's profile", body: UpdateUserInput, response: UserView, handle: (c) => updateUser(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'post', path: '/users/:userId/disabled', tag: 'users', summary: 'Disable (ends sessions and grants) or enable a user', body: SetDisabledInput, response: UserView, handle: (c) => setUserDisabled(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'post', path: '/users/:userId/password', tag: 'users', summary: "Set a user's password (ends their sessions)", body: SetPasswordInput, handle: (c) => setUserPassword(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'get', path: '/users/:userId/lockout', tag: 'users', summary: 'Whether a user is locked out by failed sign-ins or second factors, and until when', response: LockoutView, handle: (c) => lockoutOf(lockouts, id(c, 'userId')) },
    { method: 'post', path: '/users/:userId/unlock', tag: 'users', summary: "End a user's lockout and forget their counted failures (passwords and second factors)", body: Empty, response: UnlockResult, handle: (c) => unlockUser(lockouts, id(c, 'userId'), c.actor) },
    { method: 'post', path: '/users/:userId/mfa/reset', tag: 'users', summary: "Remove a user's second factor and recovery codes", body: Empty, handle: (c) => resetUserMfa(users, id(c, 'userId'), c.actor) },
    { method: 'get', path: '/users/:userId/passkeys', tag: 'users', summary: "List a user's passkeys", response: PasskeyList, handle: async (c) => ({ passkeys: await listUserPasskeys(users, id(c, 'userId')) }) },
    { method: 'delete', path: '/users/:userId/passkeys/:passkeyId', tag: 'users', summary: 'Remove a passkey (e.g. a lost device)', handle: (c) => removeUserPasskey(users, id(c, 'userId'), id(c, 'passkeyId'), c.actor) },
    { method: 'get', path: '/users/:userId/grants', tag: 'users', summary: "List a user's grants", response: GrantList, handle: async (c) => ({ grants: await listUserGrants(users, id(c, 'userId')) }) },
    { method: 'delete', path: '/users/:userId/grants/:grantId', tag: 'users', summary: 'Revoke a grant and the tokens issued under it', handle: (c) => revokeUserGrant(users, id(c, 'userId'), id(c, 'grantId'), c.actor) },
    { method: 'get', path: '/users/:userId/sessions', tag: 'users', summary: "List a user's sessions", response: SessionList, handle: async (c) => ({ sessions: await listUserSessions(users, id(c, 'userId')) }) },
    { method: 'delete', path: '/users/:userId/sessions/:sessionId', tag: 'users', summary: 'End a session', handle: (c) => revokeUserSession(users, id(c, 'userId'), id(c, 'sessionId'), c.actor) },
    { method: 'get', path: '/users/:userId/identities', tag: 'users', summary: "List a user's linked upstream identities", response: LinkedIdentityList, handle: async (c) => ({ identities: await listLinkedIdentities(idps, id(c, 'userId')) }) },
    { method: 'get', path: '/users/:userId/groups', tag: 'users', summary: "List a user's groups (names, sorted)", response: UserGroupList, handle: async (c) => ({ groups: await userGroups(groups, id(c, 'userId')) }) },
    { method: 'put', path: '/users/:userId/groups', tag: 'users', summary: "Set a user's groups to exactly those named (their next token carries them)", body: SetUserGroupsInput, response: UserGroupList, handle: async (c) => ({ groups: await setUserGroups(groups, id(c, 'userId'), c.body, c.actor) }) },
    {
      method: 'delete',
      path: '/users/:userId/identities/:idpId',
      tag: 'users',
      summary: "Unlink a user's identity at an upstream provider",
      conflict: 'It is the last way the user can sign in (no password, no other linked identity).',
      handle: (c) => unlinkIdentity(idps, id(c, 'userId'), id(c, 'idpId'), c.actor),
    },

    {
      method: 'get',
      path: '/lockouts',
      tag: 'users',
      summary: 'List the users and the addresses locked out now by failed sign-ins or second factors',
      response: LockoutList,
      handle: async () => ({ users: await listLockedAccounts(lockouts), addresses: await listLockedAddresses(lockouts) }),
    },
    { method: 'post', path: '/lockouts/ip/unlock', tag: 'users', summary: "End an address's lockout (IPv6: its /64) and forget its counted failures", body: UnlockAddressInput, response: UnlockAddressResult, handle: (c) => unlockAddress(lockouts, c.body, c.actor) },

    { method: 'get', path: '/invitations', tag: 'users', summary: 'List invitations (pending, accepted, expired, revoked), newest first', query: InvitationQuery, response: InvitationList, handle: async (c) => ({ invitations: await listInvitations({ db }, c.query) }) },
    {
      method: 'post',
      path: '/invitations',
      tag: 'users',
      summary: 'Invite an email address: a mail with a link to choose a password (valid INVITATION_TTL); accepting creates the account, address verified',
      body: InviteInput,
      response: InvitationView,
      status: 201,
      conflict: 'The address has an account already, or a pending invitation (send that one again).',
      handle: (c) => inviteUser(invitations(), c.body, c.actor),
    },
    { method: 'post', path: '/invitations/:invitationId/resend', tag: 'users', summary: 'Send an invitation again: a new link, valid INVITATION_TTL; the old link stops working', body: Empty, response: InvitationView, conflict: 'It was accepted or revoked, or the address has an account now.', handle: (c) => resendInvitation(invitations(), id(c, 'invitationId'), c.actor) },
    { method: 'post', path: '/invitations/:invitationId/revoke', tag: 'users', summary: 'Revoke an invitation: its link stops working', body: Empty, response: InvitationView, conflict: 'It was accepted or revoked already.', handle: (c) => revokeInvitation({ db, audit }, id(c, 'invitationId'), c.actor) },

    { method: 'get', path: '/groups', tag: 'groups', summary: 'List groups, by name, with their member counts', response: GroupList, handle: async () => ({ groups: await listGroups(groups) }) },
    { method: 'post', path: '/groups', tag: 'groups', summary: 'Create a group', body: CreateGroupInput, response: GroupView, status: 201, conflict: 'A group with that name exists.', handle: (c) => createGroup(groups, c.body, c.actor) },
    { method: 'get', path: '/groups/:name', tag: 'groups', summary: 'Get a group', response: GroupView, handle: (c) => getGroup(groups, id(c, 'name')) },
    { method: 'patch', path: '/groups/:name', tag: 'groups', summary: 'Rename or describe a group (members stay; tokens carry the new name from the next one)', body: UpdateGroupInput, response: GroupView, conflict: 'A group with the new name exists.', handle: (c) => updateGroup(groups, id(c, 'name'), c.body, c.actor) },
    { method: 'delete', path: '/groups/:name', tag: 'groups', summary: 'Delete a group and its memberships', handle: (c) => deleteGroup(groups, id(c, 'name'), c.actor) },
    { method: 'get', path: '/groups/:name/members', tag: 'groups', summary: "List a group's members, oldest membership first", response: GroupMemberList, handle: async (c) => ({ members: await listGroupMembers(groups, id(c, 'name')) }) },
    { method: 'post', path: '/groups/:name/members', tag: 'groups', summary: 'Add people (by id) to a group; returns its members', body: GroupMembersInput, response: GroupMemberList, handle: async (c) => ({ members: await addGroupMembers(groups, id(c, 'name'), c.body, c.actor) }) },
    { method: 'post', path: '/groups/:name/members/remove', tag: 'groups', summary: 'Remove people (by id) from a group; returns its members', body: GroupMembersInput, response: GroupMemberList, handle: async (c) => ({ members: await removeGroupMembers(groups, id(c, 'name'), c.body, c.actor) }) },

    { method: 'get', path: '/keys', tag: 'keys', summary: 'List signing keys and their states', response: SigningKeyList, handle: () => listKeys(keys) },
    { method: 'post', path: '/keys/rotate', tag: 'keys', summary: 'Rotate the signing keys', body: RotateKeysInput, response: KeyRotation, handle: (c) => rotateKeys(keys, c.body, c.actor) },

    { method: 'get', path: '/identity-providers', tag: 'identity-providers', summary: 'List upstream identity providers', response: IdpList, handle: async () => ({ identity_providers: await listIdps(idps) }) },
    { method: 'post', path: '/identity-providers', tag: 'identity-providers', summary: 'Declare an upstream identity provider (its client secret is stored encrypted, never shown)', body: CreateIdpInput, response: IdpView, status: 201, handle: (c) => createIdp(idps, c.body, c.actor) },
    { method: 'get', path: '/identity-providers/:idpId', tag: 'identity-providers', summary: 'Get an upstream identity provider', response: IdpView, handle: (c) => getIdp(idps, id(c, 'idpId')) },
    { method: 'patch', path: '/identity-providers/:idpId', tag: 'identity-providers', summary: 'Change an upstream identity provider', body: UpdateIdpInput, response: IdpView, handle: (c) => updateIdp(idps, id(c, 'idpId'), c.body, c.actor) },
    { method: 'delete', path: '/identity-providers/:idpId', tag: 'identity-providers', summary: 'Delete an upstream identity provider and every identity linked through it', handle: (c) => deleteIdp(idps, id(c, 'idpId'), c.actor) },

    { method: 'get', path: '/outbox', tag: 'mail', summary: 'List mails and back-channel logouts: pending, sent, failed (newest first), and the counts by state', query: OutboxQuery, response: OutboxList, handle: (c) => listOutbox({ db, secrets: config.secrets }, c.query) },
    { method: 'post', path: '/mail/test', tag: 'mail', summary: 'Send a test mail now and return what the mail server answered', body: TestMailInput, response: TestMailResult, handle: (c) => sendTestMailOnce(c.body) },
    { method: 'get', path: '/audit-events', tag: 'audit', summary: 'Query the audit trail (newest first)', query: AuditQuery, response: AuditEventList, handle: async (c) => ({ events: await queryAuditEvents({ db }, c.query) }) },
  ];
}
