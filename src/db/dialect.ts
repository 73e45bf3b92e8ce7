// The little that differs between SQLite and PostgreSQL when a query is written in SQL rather
// than through Prisma's query builder (the stores do so on the hot paths, where the builder costs
// more than the statement itself; see test/bench/ROUNDS.md, round 1). Such statements run
// through executor.ts: on the driver below Prisma's client, or through a transaction's client.
import type { DatabaseFlavour } from '../config/index.js';

export interface Dialect {
  /** A statement written with `?` placeholders, numbered ($1, $2, …) for PostgreSQL. */
  sql(text: string): string;
  /** A JSON parameter's placeholder: cast to jsonb on PostgreSQL. */
  readonly json: string;
  /** A time as a parameter: epoch milliseconds on SQLite (how Prisma's adapter stores it there), a Date on PostgreSQL. */
  time(value: Date): Date | number;
  /**
   * A string member of a JSON column as text, for a join (`key`: plain identifiers, written into
   * the statement; dotted for a nested member: `result.login.accountId`).
   */
  jsonText(column: string, key: string): string;
  /**
   * `column`'s `member`[key][`field`] as text, for a join, where the key is a `?` parameter (any
   * string: a client_id) and `member` and `field` are plain identifiers written into the statement.
   */
  jsonKeyedText(column: string, member: string, field: string): string;
  /** Whether text `column` holds a `?` parameter anywhere in it, as it is (no pattern, case counts). */
  containsText(column: string): string;
}

export function dialectOf(flavour: DatabaseFlavour): Dialect {
  if (flavour === 'sqlite')
    return {
      sql: (text) => text,
      json: '?',
      time: (value) => value.getTime(),
      jsonText: (column, key) => `json_extract(${column}, '$.${key}')`,
      // json_each matches the key exactly, whatever it holds (a path would have to quote dots and quotes).
      jsonKeyedText: (column, member, field) => `(SELECT json_extract(m."value", '$.${field}') FROM json_each(${column}, '$.${member}') m WHERE m."key" = ?)`,
      containsText: (column) => `instr(${column}, ?) > 0`,
    };
  return {
    sql(text) {
      let n = 0;
      return text.replace(/\?/g, () => `$${++n}`);
    },
    json: '?::jsonb',
    time: (value) => value,
    jsonText: (column, key) => (key.includes('.') ? `(${column} #>> '{${key.split('.').join(',')}}')` : `(${column} ->> '${key}')`),
    jsonKeyedText: (column, member, field) => `(${column} -> '${member}' -> ?::text ->> '${field}')`,
    containsText: (column) => `strpos(${column}, ?::text) > 0`,
  };
}

/** A time column read by a raw query: a Date, an ISO string or epoch milliseconds, whichever the driver returned. */
export function readTime(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number' || typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'string') return /^\d+$/.test(value) ? new Date(Number(value)) : new Date(value);
  throw new TypeError(`not a time: ${typeof value}`);
}

/** A JSON column read by a raw query: parsed already (PostgreSQL) or text (SQLite). */
export function readJson<T = Record<string, unknown>>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/**
 * PostgreSQL cannot store or compare U+0000 in text or jsonb, so a value containing it can
 * match nothing: look-ups with one find nothing on both databases alike.
 */
export const hasNul = (value: string) => value.includes('\0');
