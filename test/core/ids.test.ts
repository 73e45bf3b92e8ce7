// Time-ordered ids (UUID version 7): the time in the first 48 bits, so ids of later milliseconds
// sort after earlier ones as text; random bits that keep ids of one millisecond apart.
import { describe, expect, it } from 'vitest';
import { timeOrderedUuid } from '../../src/core/ids.js';

const VERSION_7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const timeOf = (id: string) => parseInt(id.replace('-', '').slice(0, 12), 16);

describe('timeOrderedUuid', () => {
  it('is a version-7 UUID whose first 48 bits are the time it was given', () => {
    const at = Date.parse('2026-12-05T23:59:59.123Z');
    const id = timeOrderedUuid(at);
    expect(id).toMatch(VERSION_7);
    expect(timeOf(id)).toBe(at);
    expect(timeOrderedUuid(0).startsWith('00000000-0000-7')).toBe(true);
    expect(timeOf(timeOrderedUuid())).toBeGreaterThanOrEqual(Date.now() - 1000);
  });

  it('sorts as text in the order of its times, across the bytes of the time', () => {
    const times = [0, 1, 255, 256, 65_535, 65_536, Date.parse('2001-09-09T01:46:40Z'), Date.parse('2026-12-05T00:00:00Z'), Date.parse('2026-12-05T00:00:00.001Z'), 2 ** 48 - 1];
    const ids = times.map((at) => timeOrderedUuid(at));
    expect([...ids].sort()).toEqual(ids);
  });

  it('keeps ids of the same millisecond apart, well past one draw of random bytes', () => {
    const at = Date.now();
    const ids = Array.from({ length: 5000 }, () => timeOrderedUuid(at));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => VERSION_7.test(id) && timeOf(id) === at)).toBe(true);
  });

  it('refuses a time a version-7 UUID cannot hold', () => {
    for (const at of [-1, 2 ** 48, 1.5, Number.NaN]) expect(() => timeOrderedUuid(at)).toThrow(RangeError);
  });
});
