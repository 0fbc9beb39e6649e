/**
 * UTC `YYYY-MM-DD` of an epoch-millisecond instant, cached per day: the hot path formats one
 * `Date` per day, not one per record.
 */
const DAY_MS = 86_400_000;

export interface DateFormatter {
  (epochMs: number): string;
}

/** Returns a formatter that remembers the last day it formatted. */
export function utcDateFormatter(): DateFormatter {
  let dayStart = Number.NaN;
  let text = '';
  return (epochMs: number): string => {
    if (epochMs >= dayStart && epochMs < dayStart + DAY_MS) return text;
    dayStart = Math.floor(epochMs / DAY_MS) * DAY_MS;
    text = new Date(dayStart).toISOString().slice(0, 10);
    return text;
  };
}
