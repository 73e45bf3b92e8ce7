// `gatehouse mail test|list`: check that mail gets out, and see what the outbox holds (pending,
// sent, failed, and why), through the same functions as the admin API (src/mail/service.ts).
import { Option, type Command } from 'commander';
import { ManagementError } from '../core/errors.js';
import { OUTBOX_STATES, type OutboxState } from '../mail/schema.js';
import { withDatabase } from './context.js';
import { CommandFailed, formatTable, note, parseWholeNumber, printJson } from './io.js';

export function registerMail(program: Command): void {
  const group = program.command('mail').summary('send a test mail, list the outbox').description('Mail (SMTP_URL, MAIL_FROM) and the outbox of mails and back-channel logouts waiting to be delivered.');

  group
    .command('test')
    .description('Send a test mail now, straight to the mail server (not through the outbox), and print what it answered.')
    .requiredOption('--to <address>', 'where to send it')
    .option('--json', 'print JSON')
    .action(async (options: { to: string; json?: boolean }) => {
      const [{ loadConfiguration }, { createMailTransport }, { sendTestMail }] = await Promise.all([import('./context.js'), import('../mail/transport.js'), import('../mail/service.js')]);
      const config = await loadConfiguration();
      const transport = createMailTransport(config.mail, { issuer: config.issuer, print: (line) => console.error(line) });
      try {
        const result = await sendTestMail(transport, { to: options.to }, config.branding.productName);
        if (options.json) printJson(result);
        else console.log(`Sent to ${result.to} via ${result.via}.\nThe server answered: ${result.response}`);
      } catch (error) {
        if (error instanceof Error && !(error instanceof ManagementError)) throw new CommandFailed(`error: the mail was not sent via ${transport.via}: ${error.message}`);
        throw error;
      } finally {
        transport.close();
      }
    });

  group
    .command('list')
    .description('List the newest outbox messages and the counts by state.')
    .addOption(new Option('--state <state>', 'only in this state').choices(OUTBOX_STATES))
    .option('--limit <n>', 'at most n messages (1-500)', parseWholeNumber(1, 500), 50)
    .option('--json', 'print JSON')
    .action(async (options: { state?: OutboxState; limit: number; json?: boolean }) => {
      const { listOutbox } = await import('../mail/service.js');
      const list = await withDatabase(({ db, config }) => listOutbox({ db, secrets: config.secrets }, { state: options.state, limit: options.limit }));
      if (options.json) return printJson(list);
      note(`pending ${list.counts.pending}, sent ${list.counts.sent}, failed ${list.counts.failed}`);
      if (!list.messages.length) return;
      const rows = list.messages.map((m) => [m.created_at, m.kind, m.topic, m.recipient, m.state, `${m.attempts}/${m.max_attempts}`, m.last_error ?? '']);
      console.log(formatTable(['CREATED', 'KIND', 'TOPIC', 'RECIPIENT', 'STATE', 'ATTEMPTS', 'LAST ERROR'], rows));
    });
}
