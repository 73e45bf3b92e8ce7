// How a command names a person: by id, or by email when the argument has an @.
import { NotFoundError } from '../core/errors.js';
import type { CommandContext } from './context.js';

export const USER_ARGUMENT = ['<user>', 'the user: their id or their email'] as const;

/** A user named by id or, when it has an @, by email. */
export async function resolveUserId({ db }: Pick<CommandContext, 'db'>, user: string): Promise<string> {
  if (!user.includes('@')) return user;
  const { createUserStore } = await import('../people/store.js');
  const found = await createUserStore(db).findByEmail(user);
  if (!found) throw new NotFoundError(`there is no user with email ${user}`);
  return found.id;
}
