// Row ids that sort by the time they were made: UUID version 7 (RFC 9562), for append-only
// tables whose ids never leave the deployment (the audit trail). A random (version 4) id puts
// each new row's primary-key entry on a random page of the index, so every insert dirties a page
// of its own, and on a large table reads it first; an id that starts with the time lands beside
// the previous one. Never for ids people or apps see as identifiers (a person's `sub`, client
// ids): those would tell when they were made.
import { randomFillSync } from 'node:crypto';

/** Random bytes for 128 ids, drawn at once (as crypto.randomUUID does) and handed out 16 at a time. */
const POOL_BYTES = 16 * 128;
let pool = Buffer.alloc(0);
let used = 0;

function randomBytesForId(): Buffer {
  if (used + 16 > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    used = 0;
  }
  const bytes = pool.subarray(used, used + 16);
  used += 16;
  return bytes;
}

/** The largest millisecond time a version-7 UUID holds (48 bits: the year 10889). */
const MAX_MS = 2 ** 48 - 1;

/**
 * A version-7 UUID for the moment `at` (milliseconds since 1970): its first 48 bits are that
 * time, so ids made in different milliseconds sort (as text too) in the order they were made;
 * then the version and variant bits, and 74 random bits.
 */
export function timeOrderedUuid(at: number = Date.now()): string {
  if (!Number.isInteger(at) || at < 0 || at > MAX_MS) throw new RangeError(`a version-7 UUID needs a time in milliseconds from 0 to ${MAX_MS}, not ${at}`);
  const bytes = randomBytesForId();
  bytes.writeUIntBE(at, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
