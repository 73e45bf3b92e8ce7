// `gatehouse users lockout|unlock|lockouts|unlock-address`: brute-force lockouts, seen and ended
// through the same management layer as the admin API (src/people/lockouts.ts).
import type { Command } from 'commander';
import type { Actor } from '../audit/log.js';
import type { LockoutDeps, LockoutView } from '../people/lockouts.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, printJson } from './io.js';
import { resolveUserId, USER_ARGUMENT } from './user-lookup.js';

const ACTOR: Actor = { via: 'cli' };

const manage = () => import('../people/lockouts.js');

async function deps({ config, db, logger }: CommandContext): Promise<LockoutDeps> {
  const { createAuditLog } = await import('../audit/log.js');
  return { db, audit: createAuditLog(db, logger), bruteForce: config.bruteForce };
}

const state = (counter: LockoutView['password']) => (counter.locked ? `locked until ${counter.until ?? '?'}` : 'not locked');

export function registerLockouts(users: Command): void {
  users
    .command('lockout')
    .description('Show whether a user is locked out by failed sign-ins (password) or wrong codes (second factor), until when, and the failures counted.')
    .argument(...USER_ARGUMENT)
    .option('--json', 'print the lockout as a JSON object')
    .action(async (user: string, options: { json?: boolean }) => {
      const view = await withDatabase(async (context) => (await manage()).lockoutOf({ ...context, bruteForce: context.config.bruteForce }, await resolveUserId(context, user)));
      if (options.json) return printJson(view);
      const row = (kind: string, counter: LockoutView['password']) => [kind, state(counter), String(counter.failures)];
      console.log(formatTable(['KIND', 'STATE', 'FAILURES'], [row('password', view.password), row('second factor', view.second_factor)]));
    });

  users
    .command('unlock')
    .description("End a user's lockout and forget their counted failures, for passwords (counted by their current email) and second factors; they can sign in at once. Audited (user.unlocked).")
    .argument(...USER_ARGUMENT)
    .option('--json', 'print {"id": …, "unlocked": true|false} as JSON (false: they were not locked)')
    .action(async (user: string, options: { json?: boolean }) => {
      const { id, unlocked } = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        return { id: userId, ...(await (await manage()).unlockUser(await deps(context), userId, ACTOR)) };
      });
      if (options.json) printJson({ id, unlocked });
      else console.log(unlocked ? `unlocked ${user}` : `${user} was not locked; their counted failures are cleared`);
    });

  users
    .command('lockouts')
    .description('List the users and the IP addresses (IPv6 by /64) locked out now.')
    .option('--json', 'print {"users": […], "addresses": […]} as JSON')
    .action(async (options: { json?: boolean }) => {
      const { users: locked, addresses } = await withDatabase(async (context) => {
        const read = { ...context, bruteForce: context.config.bruteForce };
        const { listLockedAccounts, listLockedAddresses } = await manage();
        return { users: await listLockedAccounts(read), addresses: await listLockedAddresses(read) };
      });
      if (options.json) return printJson({ users: locked, addresses });
      if (locked.length) console.log(formatTable(['ID', 'EMAIL', 'PASSWORD', 'SECOND FACTOR'], locked.map((view) => [view.user_id, view.email, state(view.password), state(view.second_factor)])));
      if (addresses.length) console.log(formatTable(['ADDRESS', 'LOCKED UNTIL'], addresses.map((address) => [address.address, address.until ?? '?'])));
      note(`${locked.length} user${locked.length === 1 ? '' : 's'} and ${addresses.length} address${addresses.length === 1 ? '' : 'es'} locked.`);
    });

  users
    .command('unlock-address')
    .description('End the lockout of an IP address (an IPv6 address stands for its /64) for sign-ins and second factors, and forget its counted failures. Audited (address.unlocked).')
    .argument('<ip>', 'the IPv4 or IPv6 address')
    .option('--json', 'print {"address": …, "unlocked": true|false} as JSON')
    .action(async (ip: string, options: { json?: boolean }) => {
      const result = await withDatabase(async (context) => (await manage()).unlockAddress(await deps(context), { ip }, ACTOR));
      if (options.json) printJson(result);
      else console.log(result.unlocked ? `unlocked ${result.address}` : `${result.address} was not locked; its counted failures are cleared`);
    });
}
