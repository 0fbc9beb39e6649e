import { describe, expect, it } from 'vitest';
import { utcDateFormatter } from '../../src/operators/internal/utcDate.ts';

describe('utcDateFormatter', () => {
  it('formats UTC dates, switching exactly at midnight, in any order of instants', () => {
    const f = utcDateFormatter();
    const midnight = Date.UTC(2024, 1, 29);
    expect(f(midnight - 1)).toBe('2024-02-28');
    expect(f(midnight)).toBe('2024-02-29');
    expect(f(midnight + 86_399_999)).toBe('2024-02-29');
    expect(f(midnight + 86_400_000)).toBe('2024-03-01');
    expect(f(midnight - 1)).toBe('2024-02-28'); // going back in time is fine too
    expect(f(0)).toBe('1970-01-01');
    expect(f(-1)).toBe('1969-12-31');
  });

  it('agrees with Date for a sweep of instants', () => {
    const f = utcDateFormatter();
    for (let ms = Date.UTC(2023, 11, 30); ms < Date.UTC(2024, 0, 3); ms += 3_599_999) {
      expect(f(ms)).toBe(new Date(ms).toISOString().slice(0, 10));
    }
  });
});
