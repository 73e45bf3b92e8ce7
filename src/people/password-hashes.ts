// The password hashes Gatehouse stores and checks. It makes only bcrypt at BCRYPT_COST, but accepts
// hashes made elsewhere (moving from another identity server, README "Moving from another
// identity server"): bcrypt ($2a$, $2b$, $2y$) and argon2id (PHC string), checked strictly, with
// caps on their cost, because every wrong password typed for such a person pays that cost again and
// an imported hash must not turn sign-in into a way to exhaust the server. A person's imported hash
// is replaced by ours at their next successful sign-in (accounts.ts).
import type * as Argon2 from '@node-rs/argon2';
import bcrypt from 'bcrypt';
import { z } from 'zod';

/** The highest bcrypt cost an imported hash may have: the highest BCRYPT_COST (one check takes a few seconds at most). */
export const IMPORTED_BCRYPT_MAX_COST = 15;
/** The lowest: bcrypt's own minimum. */
export const IMPORTED_BCRYPT_MIN_COST = 4;

/** Caps on an imported argon2id hash's parameters: memory (m, KiB), passes (t), lanes (p), salt and output (bytes). */
export const ARGON2ID_LIMITS = {
  maxMemoryKiB: 131_072,
  maxPasses: 10,
  maxParallelism: 16,
  minSaltBytes: 8,
  maxSaltBytes: 64,
  minOutputBytes: 16,
  maxOutputBytes: 64,
} as const;

const BCRYPT = /^\$(2[aby])\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const ARGON2ID = /^\$argon2id\$v=(\d+)\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** Unpadded base64 (PHC's encoding) → its byte length, or null when it is not canonical. */
function base64Bytes(text: string): number | null {
  if (text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64').replace(/=+$/, '') === text ? bytes.length : null;
}

/** What is wrong with `hash` as a stored password hash, or null when it is one we accept. */
export function passwordHashProblem(hash: string): string | null {
  const bcryptMatch = BCRYPT.exec(hash);
  if (bcryptMatch) {
    const cost = Number(bcryptMatch[2]);
    if (cost < IMPORTED_BCRYPT_MIN_COST || cost > IMPORTED_BCRYPT_MAX_COST) return `a bcrypt cost must be from ${IMPORTED_BCRYPT_MIN_COST} to ${IMPORTED_BCRYPT_MAX_COST} (this one is ${cost})`;
    return null;
  }
  if (hash.startsWith('$2')) return 'is not a well-formed bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of salt and hash)';
  if (/^\$argon2(i|d)\$/.test(hash)) return 'argon2i and argon2d hashes are not accepted: only argon2id';
  if (!hash.startsWith('$argon2id$')) return 'must be a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$v=19$m=…,t=…,p=…$salt$hash) hash';
  const match = ARGON2ID.exec(hash);
  if (!match) return 'is not a well-formed argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash, base64 without padding)';
  const [, version, m, t, p, salt, output] = match as unknown as [string, string, string, string, string, string, string];
  const L = ARGON2ID_LIMITS;
  if (version !== '19') return 'argon2id version must be 19 (v=19)';
  const [memory, passes, lanes] = [Number(m), Number(t), Number(p)];
  if (lanes < 1 || lanes > L.maxParallelism) return `argon2id parallelism (p) must be from 1 to ${L.maxParallelism}`;
  if (memory < 8 * lanes || memory > L.maxMemoryKiB) return `argon2id memory (m) must be from 8×p to ${L.maxMemoryKiB} KiB`;
  if (passes < 1 || passes > L.maxPasses) return `argon2id passes (t) must be from 1 to ${L.maxPasses}`;
  const saltBytes = base64Bytes(salt);
  if (saltBytes === null || saltBytes < L.minSaltBytes || saltBytes > L.maxSaltBytes) return `argon2id salt must be ${L.minSaltBytes} to ${L.maxSaltBytes} bytes in base64 without padding`;
  const outputBytes = base64Bytes(output);
  if (outputBytes === null || outputBytes < L.minOutputBytes || outputBytes > L.maxOutputBytes) return `argon2id hash must be ${L.minOutputBytes} to ${L.maxOutputBytes} bytes in base64 without padding`;
  return null;
}

/** An existing password hash given instead of a password (admin API, CLI, seed file). */
export const PASSWORD_HASH = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .max(512, 'is too long for a password hash')
  .superRefine((hash, context) => {
    const problem = passwordHashProblem(hash);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .meta({
    description: `An existing hash, for people moving from another identity server: bcrypt ($2a$, $2b$, $2y$; cost ${IMPORTED_BCRYPT_MIN_COST}-${IMPORTED_BCRYPT_MAX_COST}) or argon2id (PHC string, v=19, m ≤ ${ARGON2ID_LIMITS.maxMemoryKiB} KiB, t ≤ ${ARGON2ID_LIMITS.maxPasses}, p ≤ ${ARGON2ID_LIMITS.maxParallelism}). Replaced by a bcrypt hash at BCRYPT_COST at the next sign-in.`,
  });

/**
 * Exactly one of `password` and `password_hash` (seed file, admin API): a refinement of an object
 * holding both as optional. Runs even when other fields failed, so one answer names every problem.
 */
export function checkOneSecret(value: unknown, ctx: z.RefinementCtx): void {
  if (!value || typeof value !== 'object') return; // already reported
  const { password, password_hash: hash } = value as { password?: unknown; password_hash?: unknown };
  if (password !== undefined && hash !== undefined) ctx.addIssue({ code: 'custom', path: ['password_hash'], message: 'give either password or password_hash, not both' });
  else if (password === undefined && hash === undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: 'is required' });
}

/** A stored hash's scheme and cost, never the hash itself, for the audit trail: "bcrypt $2y$ cost 10", "argon2id m=65536,t=3,p=4". */
export function describeHash(hash: string): string {
  const bcryptMatch = BCRYPT.exec(hash);
  if (bcryptMatch) return `bcrypt $${bcryptMatch[1]}$ cost ${Number(bcryptMatch[2])}`;
  const argon2Match = ARGON2ID.exec(hash);
  if (argon2Match) return `argon2id m=${argon2Match[2]},t=${argon2Match[3]},p=${argon2Match[4]}`;
  return 'unknown';
}

/**
 * Whether `password` matches a stored hash, bcrypt or argon2id. A hash outside what is accepted
 * (written around the checks) never matches and costs nothing.
 */
export async function verifyPasswordHash(password: string, hash: string): Promise<boolean> {
  if (passwordHashProblem(hash)) return false;
  // $2y$ (PHP's name) is the same algorithm as $2b$, which is the only name the bcrypt module reads.
  if (hash.startsWith('$2')) return bcrypt.compare(password, hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash);
  return (await argon2()).verify(hash, password);
}

// The argon2 binding is loaded with the first argon2id hash checked (imported hashes only), not at start-up.
let argon2Module: Promise<typeof Argon2> | undefined;
const argon2 = () => (argon2Module ??= import('@node-rs/argon2'));

/** Whether a stored hash reads every byte of the password (argon2id), unlike bcrypt's first 72. */
export const readsWholePassword = (hash: string | null): boolean => hash !== null && hash.startsWith('$argon2id$');

/** Whether a stored hash should be replaced by ours (bcrypt $2b$ at `bcryptCost`) while the password is at hand. */
export function needsRehash(hash: string, bcryptCost: number): boolean {
  const match = BCRYPT.exec(hash);
  return !match || match[1] !== '2b' || Number(match[2]) !== bcryptCost;
}
