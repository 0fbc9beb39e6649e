/**
 * ISO-8601 timestamps in the spellings producers really send: `T` or a space between date and
 * time, with or without a zone (`Z`, `±hh:mm`, `±hhmm`; none means UTC), a fraction of up to
 * nine digits (kept to the microsecond). Parsed to epoch microseconds without `Date.parse`, which
 * reads a zoneless timestamp as local time and refuses `+0000`.
 */
import * as t from 'io-ts';

/**
 * What `scan` read of the last timestamp it accepted: epoch ms of its second (the zone applied,
 * a leap second read as `:59`) and the microseconds into that second (`999_999` for a leap
 * second). Module state rather than an object per call: the parsers below read it at once.
 */
let scannedMs = 0;
let scannedMicros = 0;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** The digit at `i` (0–9), or -1. */
function digit(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -1;
}

/** The two digits at `i` as a number, or -1. */
function two(s: string, i: number): number {
  const a = digit(s, i);
  const b = digit(s, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * Reads `YYYY-MM-DD`, `T`/`t` or a space, `hh:mm:ss`, an optional fraction (`.` or `,`, 1–9
 * digits) and an optional zone (`Z`/`z`, `±hh:mm` or `±hhmm`; none = UTC), character by
 * character (no regular expression, nothing allocated), with the range checks: a real month and
 * day (leap years included), hour ≤ 23, minute ≤ 59, second ≤ 60, zone ≤ 23:59. On success sets
 * `scannedMs` and `scannedMicros` and returns true.
 */
function scan(s: string): boolean {
  const n = s.length;
  if (n < 19) return false;
  const y1 = two(s, 0);
  const y2 = two(s, 2);
  const month = two(s, 5);
  const day = two(s, 8);
  const hour = two(s, 11);
  const minute = two(s, 14);
  const second = two(s, 17);
  const sep = s.charCodeAt(10);
  if (y1 < 0 || y2 < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return false;
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return false;
  if (sep !== 84 && sep !== 116 && sep !== 32) return false; // T t space
  const year = y1 * 100 + y2;
  if (month < 1 || month > 12 || day < 1 || day > (DAYS_IN_MONTH[month - 1] ?? 31)) return false;
  if (month === 2 && day === 29 && !((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return false;
  if (hour > 23 || minute > 59 || second > 60) return false;
  let i = 19;
  let micros = 0;
  let c = s.charCodeAt(i);
  if (c === 46 || c === 44) {
    // . or , then 1–9 digits, of which the first six are kept.
    const from = ++i;
    while (i < n && i - from < 9) {
      const d = digit(s, i);
      if (d < 0) break;
      if (i - from < 6) micros = micros * 10 + d;
      i++;
    }
    const len = i - from;
    if (len === 0) return false;
    for (let k = len; k < 6; k++) micros *= 10;
    c = s.charCodeAt(i);
  }
  let offsetMinutes = 0;
  if (c === 90 || c === 122) {
    i += 1; // Z z
  } else if (c === 43 || c === 45) {
    const zh = two(s, i + 1);
    const colon = s.charCodeAt(i + 3) === 58 ? 1 : 0;
    const zm = two(s, i + 3 + colon);
    if (zh < 0 || zm < 0 || zh > 23 || zm > 59) return false;
    offsetMinutes = (c === 45 ? -1 : 1) * (zh * 60 + zm);
    i += 5 + colon;
  }
  if (i !== n) return false;
  scannedMs = daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + Math.min(second, 59) * 1000 - offsetMinutes * 60_000;
  scannedMicros = second === 60 ? 999_999 : micros;
  return true;
}

/** Days from 1970-01-01 to a date of the proleptic Gregorian calendar (any year ≥ 0). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/**
 * Parses an ISO-8601 timestamp to epoch microseconds (UTC): `T` or a space between date and
 * time, with or without the zone colon, no zone meaning UTC, a fraction of up to nine digits.
 * Digits beyond the microsecond are truncated; a leap second (`:60`) reads as `:59.999999`.
 *
 * ## Example
 * ```ts
 * parseIsoTimestampMicros('2026-01-02 01:59:59.123456+02:00'); // 1767311999123456n (2026-01-01T23:59:59.123456Z)
 * parseIsoTimestampMicros('2026-01-01T23:59:59.123+0000');      // 1767311999123000n
 * parseIsoTimestampMicros('2026-01-01 23:59:59');               // 1767311999000000n (no zone: UTC)
 * parseIsoTimestampMicros('2026-02-30T00:00:00Z');              // null (no such day)
 * ```
 *
 * @param s The text of the timestamp.
 * @return Epoch microseconds, or `null` when `s` is not such a timestamp or names an impossible
 * date or time.
 */
export function parseIsoTimestampMicros(s: string): bigint | null {
  if (!scan(s)) return null;
  const micros = scannedMs * 1000 + scannedMicros;
  // One conversion while the µs are exact as a number (years ~1685–2255), else exact in bigint.
  return Number.isSafeInteger(micros) ? BigInt(micros) : BigInt(scannedMs) * 1000n + BigInt(scannedMicros);
}

/**
 * Parses an ISO-8601 timestamp (the forms of `parseIsoTimestampMicros`) to epoch milliseconds,
 * rounded down: what `tumblingWindow`'s `eventTime` takes.
 *
 * ## Example
 * ```ts
 * tumblingWindow({ ..., eventTime: (r) => parseIsoTimestampMs(r.ts) ?? Number.NaN });
 * ```
 *
 * @param s The text of the timestamp.
 * @return Epoch milliseconds, or `null` when `s` is not such a timestamp.
 */
export function parseIsoTimestampMs(s: string): number | null {
  if (!scan(s)) return null;
  return scannedMs + Math.floor(scannedMicros / 1000);
}

/**
 * Whether `s` is an ISO-8601 timestamp `parseIsoTimestampMicros` accepts: shape and ranges
 * only, no date arithmetic (what the `IsoTimestamp` codec checks).
 *
 * ## Example
 * ```ts
 * isIsoTimestamp('2026-01-01 12:00:00.5+0100'); // true
 * isIsoTimestamp('2026-01-01');                 // false: no time
 * ```
 *
 * @param s The text to check.
 * @return True when `parseIsoTimestampMicros(s)` returns a value.
 */
export function isIsoTimestamp(s: string): boolean {
  return scan(s);
}

export interface IsoTimestampBrand {
  readonly IsoTimestamp: unique symbol;
}

/**
 * An io-ts codec of a string that is an ISO-8601 timestamp (see `parseIsoTimestampMicros`); it
 * does not transform (the decoded value is the string), so `IsoTimestamp.is` can stand in for
 * `decode` (`routeErrors({ accepts })`).
 */
export const IsoTimestamp = t.brand(t.string, (s): s is t.Branded<string, IsoTimestampBrand> => isIsoTimestamp(s), 'IsoTimestamp');
export type IsoTimestamp = t.TypeOf<typeof IsoTimestamp>;
