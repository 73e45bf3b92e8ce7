// `gatehouse users invite|invitations|resend-invitation|revoke-invitation`: invitations by mail,
// through the same management layer as the admin API (src/people/invitations.ts). The mail is
// queued in the database here and sent by the running server's outbox worker.
import type { Command } from 'commander';
import type { Actor } from '../audit/log.js';
import type { InvitationDeps, InvitationView } from '../people/invitations.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, printJson } from './io.js';

const ACTOR: Actor = { via: 'cli' };
const INVITATION_ARGUMENT = ['<invitation>', 'the invitation, by the id `users invitations` shows'] as const;
const STATES = ['pending', 'accepted', 'expired', 'revoked'];

const manage = () => import('../people/invitations.js');

async function deps({ config, db, logger }: CommandContext): Promise<InvitationDeps> {
  const [{ createAuditLog }, { createOutbox }, { accountMailOf }] = await Promise.all([import('../audit/log.js'), import('../mail/outbox.js'), import('../http/mail-renderer.js')]);
  return { db, audit: createAuditLog(db, logger), mail: accountMailOf(config, createOutbox({ config, db, logger })) };
}

const HEADER = ['ID', 'EMAIL', 'NAME', 'CLIENT', 'STATUS', 'SENT', 'EXPIRES'];
const row = (i: InvitationView) => [i.id, i.email, i.name ?? '-', i.client_id ?? '-', i.status, i.created_at, i.expires_at];

function printInvitation(invitation: InvitationView, json: boolean | undefined): void {
  if (json) printJson(invitation);
  else console.log(formatTable(HEADER, [row(invitation)]));
}

export function registerInvitations(users: Command): void {
  users
    .command('invite')
    .description('Invite an email address that has no account: a mail (through the outbox) links to a page where the person chooses a password; accepting creates the account with the address verified. The link is valid INVITATION_TTL.')
    .argument('<email>', 'the address to invite')
    .option('--name <name>', 'their name (the mail greets them with it; it becomes the account\'s name)')
    .option('--client <client-id>', 'the app the invitation is for: once the account exists, the person lands signed in at its initiate_login_uri (else its client_uri)')
    .option('--locale <language>', 'the language of the mail (en or ko) and of the account')
    .option('--json', 'print the invitation as a JSON object')
    .action(async (email: string, options: { name?: string; client?: string; locale?: string; json?: boolean }) => {
      const input = { email, name: options.name, client_id: options.client, locale: options.locale };
      const invitation = await withDatabase(async (context) => (await manage()).inviteUser(await deps(context), input, ACTOR));
      if (options.json) return printJson(invitation);
      printInvitation(invitation, false);
      note(`invitation queued for ${invitation.email}; the running server sends it (see \`gatehouse mail list\`)`);
    });

  users
    .command('invitations')
    .description('List invitations, newest first: pending, accepted, expired or revoked.')
    .option('--status <status>', `only those in this state (${STATES.join(', ')})`)
    .option('--json', 'print a JSON array of invitations')
    .action(async (options: { status?: string; json?: boolean }) => {
      const invitations = await withDatabase(async (context) => (await manage()).listInvitations(context, options.status === undefined ? {} : { status: options.status }));
      if (options.json) return printJson(invitations);
      if (invitations.length) console.log(formatTable(HEADER, invitations.map(row)));
      note(`${invitations.length} invitation${invitations.length === 1 ? '' : 's'}.`);
    });

  users
    .command('resend-invitation')
    .description('Send a pending or expired invitation again: a new link, valid INVITATION_TTL; the old link stops working.')
    .argument(...INVITATION_ARGUMENT)
    .option('--json', 'print the invitation as a JSON object')
    .action(async (id: string, options: { json?: boolean }) => {
      printInvitation(await withDatabase(async (context) => (await manage()).resendInvitation(await deps(context), id, ACTOR)), options.json);
    });

  users
    .command('revoke-invitation')
    .description('Revoke an invitation: its link stops working.')
    .argument(...INVITATION_ARGUMENT)
    .option('--json', 'print the invitation as a JSON object')
    .action(async (id: string, options: { json?: boolean }) => {
      printInvitation(await withDatabase(async (context) => (await manage()).revokeInvitation(await deps(context), id, ACTOR)), options.json);
    });
}
