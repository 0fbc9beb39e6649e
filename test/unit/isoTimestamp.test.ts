import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { IsoTimestamp, isIsoTimestamp, parseIsoTimestampMicros, parseIsoTimestampMs } from '../../src/validation/isoTimestamp.ts';

/** 2026-03-01T12:34:56.789012Z in epoch µs, computed without the parser. */
const INSTANT = BigInt(Date.UTC(2026, 2, 1, 12, 34, 56, 789)) * 1000n + 12n;

describe('parseIsoTimestampMicros', () => {
  it.each([
    '2026-03-01T12:34:56.789012Z',
    '2026-03-01 12:34:56.789012Z',
    '2026-03-01t12:34:56.789012z',
    '2026-03-01T12:34:56.789012',
    '2026-03-01 12:34:56.789012',
    '2026-03-01T12:34:56.789012+00:00',
    '2026-03-01T12:34:56.789012+0000',
    '2026-03-01 12:34:56.789012-00:00',
    '2026-03-01T14:34:56.789012+02:00',
    '2026-03-01T14:34:56.789012+0200',
    '2026-03-01 07:04:56.789012-05:30',
    '2026-03-01 07:04:56.789012-0530',
    '2026-03-02T00:34:56.789012+12:00',
    '2026-03-01T12:34:56,789012Z',
    // Beyond microseconds: truncated.
    '2026-03-01T12:34:56.789012999Z',
    '2026-03-01T12:34:56.7890129+00:00',
  ])('reads %s as the same microsecond', (s) => {
    expect(parseIsoTimestampMicros(s)).toBe(INSTANT);
    expect(isIsoTimestamp(s)).toBe(true);
    expect(isRight(IsoTimestamp.decode(s))).toBe(true);
  });

  it('takes fractions of any length up to nine digits as a decimal fraction of the second', () => {
    const base = BigInt(Date.UTC(2026, 2, 1, 12, 34, 56)) * 1000n;
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56Z')).toBe(base);
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56.5Z')).toBe(base + 500_000n);
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56.05Z')).toBe(base + 50_000n);
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56.123Z')).toBe(base + 123_000n);
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56.000001Z')).toBe(base + 1n);
    expect(parseIsoTimestampMicros('2026-03-01T12:34:56.0000009Z')).toBe(base);
  });

  it('crosses days, months and years with the zone, leap days included', () => {
    expect(parseIsoTimestampMicros('2024-03-01 01:00:00+02:00')).toBe(BigInt(Date.UTC(2024, 1, 29, 23)) * 1000n);
    expect(parseIsoTimestampMicros('2025-12-31T23:30:00-01:00')).toBe(BigInt(Date.UTC(2026, 0, 1, 0, 30)) * 1000n);
    expect(parseIsoTimestampMicros('2000-02-29T00:00:00Z')).toBe(BigInt(Date.UTC(2000, 1, 29)) * 1000n);
  });

  it('reads years 0001-0099 as such (not as 1901-1999), and dates before 1970', () => {
    const year1 = new Date(0);
    year1.setUTCFullYear(1, 0, 1);
    expect(parseIsoTimestampMicros('0001-01-01T00:00:00Z')).toBe(BigInt(year1.getTime()) * 1000n);
    expect(parseIsoTimestampMicros('1969-12-31T23:59:59.999999Z')).toBe(-1n);
  });

  it('reads a leap second as the last microsecond of the minute before', () => {
    expect(parseIsoTimestampMicros('2016-12-31T23:59:60Z')).toBe(BigInt(Date.UTC(2016, 11, 31, 23, 59, 59)) * 1000n + 999_999n);
  });

  it.each([
    '',
    '2026-03-01',
    '2026-03-01T12:34Z',
    '2026-03-01T12:34:56.Z',
    '2026-03-01T12:34:56.1234567890Z',
    '2026-03-01T12:34:56+2',
    '2026-03-01T12:34:56+02:0',
    '2026-03-01T12:34:56+24:00',
    '2026-03-01T12:34:56+02:60',
    '2026-03-01T24:00:00Z',
    '2026-03-01T12:60:00Z',
    '2026-03-01T12:34:61Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-01T00:00:00Z',
    '2026-03-00T00:00:00Z',
    '2026-03-01X12:34:56Z',
    '2026-03-01  12:34:56Z',
    ' 2026-03-01T12:34:56Z',
    '2026-03-01T12:34:56Z ',
    '2026-03-01T12:34:56 +02:00',
    '26-03-01T12:34:56Z',
    '+2026-03-01T12:34:56Z',
    '2026-3-1T12:34:56Z',
    '01/03/2026 12:34:56',
    '1772368496',
  ])('rejects %j', (s) => {
    expect(parseIsoTimestampMicros(s)).toBeNull();
    expect(parseIsoTimestampMs(s)).toBeNull();
    expect(isIsoTimestamp(s)).toBe(false);
    expect(isLeft(IsoTimestamp.decode(s))).toBe(true);
  });

  it('the codec refuses what is not a string and does not transform what it accepts', () => {
    for (const u of [0, 1_772_368_496_000, null, undefined, {}, ['2026-03-01T12:34:56Z'], new Date()]) expect(isLeft(IsoTimestamp.decode(u))).toBe(true);
    const decoded = IsoTimestamp.decode('2026-03-01 12:34:56+0100');
    expect(isRight(decoded) && decoded.right).toBe('2026-03-01 12:34:56+0100');
  });
});

describe('parseIsoTimestampMs', () => {
  it('gives epoch milliseconds, rounded down (towards -Infinity) from the microseconds', () => {
    expect(parseIsoTimestampMs('2026-03-01T12:34:56.789999Z')).toBe(Date.UTC(2026, 2, 1, 12, 34, 56, 789));
    expect(parseIsoTimestampMs('2026-03-01 14:34:56.789+02:00')).toBe(Date.UTC(2026, 2, 1, 12, 34, 56, 789));
    expect(parseIsoTimestampMs('1969-12-31T23:59:59.999999Z')).toBe(-1);
    expect(parseIsoTimestampMs('1969-12-31T23:59:59.998001Z')).toBe(-2);
    expect(parseIsoTimestampMs('1970-01-01T00:00:00Z')).toBe(0);
  });
});

describe('the character scanner against the grammar as a regular expression', () => {
  // The grammar the scanner implements, with Date arithmetic for the value: an independent reference.
  const GRAMMAR = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;
  const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  function reference(s: string): bigint | null {
    const m = GRAMMAR.exec(s);
    if (m === null) return null;
    const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i])) as [number, number, number, number, number, number];
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    if (month < 1 || month > 12 || day < 1 || day > (DAYS[month - 1] ?? 31) || (month === 2 && day === 29 && !leap)) return null;
    if (hour > 23 || minute > 59 || second > 60) return null;
    if (m[10] !== undefined && (Number(m[10]) > 23 || Number(m[11]) > 59)) return null;
    const offset = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    d.setUTCHours(hour, minute, Math.min(second, 59), 0);
    const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0').slice(0, 6));
    return BigInt(d.getTime() - offset * 60_000) * 1000n + BigInt(second === 60 ? 999_999 : fraction);
  }

  it('agrees on 100,000 mutations of valid timestamps (edits, insertions, deletions) and on random dates of every year', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const alphabet = '0123456789-:Tt .,Zz+';
    const bases = ['2026-01-01T00:00:00Z', '0000-02-29 23:59:60.123456789+23:59', '9999-12-31T23:59:59,1-0000', '2024-02-29T12:00:00.5+0100', '1900-02-28t00:00:00', '0001-01-01 00:00:00.000001z'];
    let valid = 0;
    const check = (s: string): void => {
      const want = reference(s);
      if (want !== null) valid += 1;
      expect([s, parseIsoTimestampMicros(s), isIsoTimestamp(s)]).toEqual([s, want, want !== null]);
      if (want !== null) expect(parseIsoTimestampMs(s)).toBe(Number(want >= 0n ? want / 1000n : -((-want + 999n) / 1000n)));
    };
    for (let k = 0; k < 100_000; k++) {
      const chars = (bases[k % bases.length] as string).split('');
      for (let e = 1 + Math.floor(random() * 3); e > 0; e--) {
        const at = Math.floor(random() * (chars.length + 1));
        const c = random() < 0.7 ? String(Math.floor(random() * 10)) : (alphabet[Math.floor(random() * alphabet.length)] as string);
        const kind = random();
        if (kind < 0.6) chars[at] = c;
        else if (kind < 0.8) chars.splice(at, 0, c);
        else chars.splice(at, 1);
      }
      check(chars.join(''));
    }
    const pad = (n: number, w: number): string => String(n).padStart(w, '0');
    for (let k = 0; k < 20_000; k++) {
      const fraction = random() < 0.5 ? '' : `.${String(Math.floor(random() * 1e9)).slice(0, 1 + Math.floor(random() * 9))}`;
      const zone = ['', 'Z', '+05:30', '-0800', '+23:59', '-00:00'][Math.floor(random() * 6)] as string;
      check(`${pad(Math.floor(random() * 10_000), 4)}-${pad(1 + Math.floor(random() * 12), 2)}-${pad(1 + Math.floor(random() * 31), 2)}T${pad(Math.floor(random() * 24), 2)}:${pad(Math.floor(random() * 60), 2)}:${pad(Math.floor(random() * 61), 2)}${fraction}${zone}`);
    }
    // Enough of both kinds that the comparison means something.
    expect(valid).toBeGreaterThan(20_000);
  });
});
