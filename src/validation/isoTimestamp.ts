/**
 * ISO-8601 timestamps in the spellings producers really send: `T` or a space between date and
 * time, with or without a zone (`Z`, `±hh:mm`, `±hhmm`; none means UTC), a fraction of up to
 * nine digits (kept to the microsecond). Parsed to epoch microseconds without `Date.parse`, which
 * reads a zoneless timestamp as local time and refuses `+0000`.
 */
import * as t from 'io-ts';

/**
 * `YYYY-MM-DD`, `T` or a space, `hh:mm:ss`, optional fraction (1–9 digits), optional zone
 * (`Z`, `±hh:mm` or `±hhmm`; no zone = UTC).
 */
const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Range checks on a regex match: real month/day (leap years included), time and zone. */
function validFields(m: RegExpExecArray): boolean {
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > (DAYS_IN_MONTH[month - 1] ?? 31)) return false;
  if (month === 2 && day === 29 && !((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return false;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60) return false;
  return m[10] === undefined || (Number(m[10]) <= 23 && Number(m[11]) <= 59);
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
  const m = ISO_TIMESTAMP.exec(s);
  if (m === null || !validFields(m)) return null;
  const second = Number(m[6]);
  const offsetMinutes = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Math.min(second, 59), 0);
  const epochMs = d.getTime() - offsetMinutes * 60_000;
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0').slice(0, 6));
  return BigInt(epochMs) * 1000n + BigInt(second === 60 ? 999_999 : fraction);
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
  const us = parseIsoTimestampMicros(s);
  if (us === null) return null;
  return Number(us >= 0n ? us / 1000n : -((-us + 999n) / 1000n));
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
  const m = ISO_TIMESTAMP.exec(s);
  return m !== null && validFields(m);
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
