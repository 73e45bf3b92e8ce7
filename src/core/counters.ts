// Failure counters shared by every limit on guessing (sign-in, client authentication): they live
// in the database (the RateLimiterFlexible table, through rate-limiter-flexible's Prisma store),
// so every instance sharing it enforces the same limits.
import { isIPv6 } from 'node:net';
import { RateLimiterPrisma } from 'rate-limiter-flexible';
import type { DbHandle } from '../db/client.js';

/** A counter in the RateLimiterFlexible table whose window starts at its first point. */
export function counter(db: DbHandle, keyPrefix: string, points: number, windowSeconds: number): RateLimiterPrisma {
  // Expired rows are deleted by startCounterSweeper, not by a timer per limiter.
  return new RateLimiterPrisma({ storeClient: db.prisma, tableName: 'rateLimiterFlexible', keyPrefix, points, duration: windowSeconds, clearExpiredByTimeout: false });
}

/**
 * The IP address a limit counts: IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 prefix, the
 * block one subscriber usually controls.
 */
export function ipKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('::');
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const all = [...before, ...Array<string>(Math.max(8 - before.length - after.length, 0)).fill('0'), ...after];
  return `${all.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** Deletes expired counters every `intervalSeconds` (0: never); returns the stop function. */
export function startCounterSweeper(db: DbHandle, intervalSeconds: number, onError: (error: unknown) => void): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    db.prisma.rateLimiterFlexible.deleteMany({ where: { expire: { lt: new Date() } } }).catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
