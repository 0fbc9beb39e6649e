import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import type * as t from 'io-ts';
import { describe, expect, it } from 'vitest';
import { IsoTimestamp, LatLon, bronzeCodecs, parseIsoTimestampMicros } from '../../src/pipelines/rideshare/codecs.ts';
import { BRONZE_TOPICS, BRONZE_TOPIC_INFO, isBronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { createEventGenerator } from '../../src/pipelines/rideshare/events.ts';

describe('topics', () => {
  it('lists the eight bronze topics once each, with facts for every one', () => {
    expect(new Set(BRONZE_TOPICS).size).toBe(8);
    expect(Object.keys(BRONZE_TOPIC_INFO).sort()).toEqual([...BRONZE_TOPICS].sort());
    for (const topic of BRONZE_TOPICS) expect(BRONZE_TOPIC_INFO[topic].topic).toBe(topic);
    expect(isBronzeTopic('trips')).toBe(true);
    expect(isBronzeTopic('transactions')).toBe(false);
  });

  it('has a codec for every topic', () => {
    expect(Object.keys(bronzeCodecs).sort()).toEqual([...BRONZE_TOPICS].sort());
  });
});

describe('IsoTimestamp', () => {
  const accepted = [
    '2025-01-06T08:00:00Z',
    '2025-01-06T08:00:00.123456+00:00',
    '2025-01-06T08:00:00.123456+0000',
    '2025-01-06 08:00:00.123456+00:00',
    '2025-01-06 08:00:00',
    '2025-01-06T08:00:00.1-03:00',
    '2025-01-06T08:00:00.123456789Z',
    '2024-02-29T23:59:59Z',
    '2016-12-31T23:59:60Z',
  ];
  const rejected = [
    '',
    '2025-01-06',
    '2025-01-06T08:00Z',
    '2025-13-06T08:00:00Z',
    '2025-00-06T08:00:00Z',
    '2025-02-30T08:00:00Z',
    '2023-02-29T08:00:00Z',
    '2025-01-06T24:00:00Z',
    '2025-01-06T08:60:00Z',
    '2025-01-06T08:00:00+25:00',
    '2025-01-06T08:00:00.Z',
    '2025-01-06T08:00:00.1234567890Z',
    '06/01/2025 08:00:00',
    ' 2025-01-06T08:00:00Z',
    'not a date',
  ];

  it.each(accepted)('accepts %s', (s) => {
    expect(isRight(IsoTimestamp.decode(s))).toBe(true);
    expect(parseIsoTimestampMicros(s)).not.toBeNull();
  });

  it.each(rejected)('rejects %j', (s) => {
    expect(isLeft(IsoTimestamp.decode(s))).toBe(true);
    expect(parseIsoTimestampMicros(s)).toBeNull();
  });

  it('rejects non-strings', () => {
    for (const u of [0, 1736150400000, null, undefined, {}, ['2025-01-06T08:00:00Z']]) expect(isLeft(IsoTimestamp.decode(u))).toBe(true);
  });

  it('parses to the same instant as Date.parse, with microseconds', () => {
    // [input, the same instant at millisecond precision, the remaining microseconds]
    const cases: Array<[string, string, bigint]> = [
      ['2025-01-06T08:00:00.123456+00:00', '2025-01-06T08:00:00.123Z', 456n],
      ['2025-01-06 05:00:00.123456-0300', '2025-01-06T08:00:00.123Z', 456n],
      ['2025-01-06T13:30:00.123456+05:30', '2025-01-06T08:00:00.123Z', 456n],
      ['2025-01-06T08:00:00.123456', '2025-01-06T08:00:00.123Z', 456n],
      ['1999-12-31T23:59:59.999999Z', '1999-12-31T23:59:59.999Z', 999n],
    ];
    for (const [input, sameMs, micros] of cases) {
      expect(parseIsoTimestampMicros(input), input).toBe(BigInt(Date.parse(sameMs)) * 1000n + micros);
    }
    expect(parseIsoTimestampMicros('2025-01-06T08:00:00Z')).toBe(BigInt(Date.UTC(2025, 0, 6, 8)) * 1000n);
    expect(parseIsoTimestampMicros('2025-01-06T08:00:00.5Z')).toBe(BigInt(Date.UTC(2025, 0, 6, 8)) * 1000n + 500_000n);
    expect(parseIsoTimestampMicros('2025-01-06T08:00:00.123456789Z')).toBe(BigInt(Date.UTC(2025, 0, 6, 8)) * 1000n + 123_456n);
    expect(parseIsoTimestampMicros('0050-01-01T00:00:00Z')).toBe(BigInt(Date.parse('0050-01-01T00:00:00Z')) * 1000n);
  });
});

describe('LatLon', () => {
  it('accepts exactly two in-range numbers', () => {
    expect(isRight(LatLon.decode([-23.55, -46.63]))).toBe(true);
    for (const bad of [[-23.55], [-23.55, -46.63, 0], ['-23.55', -46.63], [91, 0], [0, 181], null, { lat: 1, lon: 2 }]) {
      expect(isLeft(LatLon.decode(bad))).toBe(true);
    }
  });
});

describe('bronze codecs', () => {
  const gen = createEventGenerator({ seed: 99 });

  /** The fields each codec requires (the `t.type` part of its intersection). */
  function requiredKeys(codec: t.Decoder<unknown, unknown>): string[] {
    const types = (codec as unknown as { types: Array<{ _tag: string; props: Record<string, unknown> }> }).types;
    const strict = types.find((x) => x._tag === 'InterfaceType');
    if (strict === undefined) throw new Error('codec without a t.type part');
    return Object.keys(strict.props);
  }

  it.each(BRONZE_TOPICS)('%s: accepts generated events, with extra fields too', (topic) => {
    for (let i = 0; i < 50; i++) {
      const value = gen.next(topic).value;
      expect(isRight(bronzeCodecs[topic].decode(value))).toBe(true);
      expect(isRight(bronzeCodecs[topic].decode({ ...value, some_new_field: [1, 2, 3] }))).toBe(true);
    }
  });

  it.each(BRONZE_TOPICS)('%s: each required field is enforced (missing or wrong type)', (topic) => {
    const value = gen.next(topic).value;
    const keys = requiredKeys(bronzeCodecs[topic]);
    expect(keys).toContain('event_id');
    expect(keys).toContain('timestamp');
    expect(keys).toContain(BRONZE_TOPIC_INFO[topic].keyField);
    for (const key of keys) {
      const missing: Record<string, unknown> = { ...value };
      delete missing[key];
      expect(isLeft(bronzeCodecs[topic].decode(missing)), `${topic} without ${key}`).toBe(true);
      expect(isLeft(bronzeCodecs[topic].decode({ ...value, [key]: { nested: true } })), `${topic} ${key} as object`).toBe(true);
    }
  });

  it.each(BRONZE_TOPICS)('%s: envelope fields are optional, nullable strings', (topic) => {
    const value = gen.next(topic).value;
    const codec = bronzeCodecs[topic];
    const bare: Record<string, unknown> = { ...value };
    delete bare.session_id;
    delete bare.correlation_id;
    delete bare.causation_id;
    expect(isRight(codec.decode(bare))).toBe(true);
    expect(isRight(codec.decode({ ...bare, session_id: null, correlation_id: 'x', causation_id: null }))).toBe(true);
    for (const field of ['session_id', 'correlation_id', 'causation_id']) {
      expect(isLeft(codec.decode({ ...bare, [field]: 42 })), field).toBe(true);
    }
  });

  it('checks event_type against the schema enums', () => {
    const trip = gen.next('trips').value;
    expect(isLeft(bronzeCodecs.trips.decode({ ...trip, event_type: 'trip.teleported' }))).toBe(true);
    const driver = gen.next('driver_profiles').value;
    expect(isLeft(bronzeCodecs.driver_profiles.decode({ ...driver, event_type: 'rider.created' }))).toBe(true);
    const rating = gen.next('ratings').value;
    expect(isLeft(bronzeCodecs.ratings.decode({ ...rating, rating: 6 }))).toBe(true);
    expect(isLeft(bronzeCodecs.ratings.decode({ ...rating, rating: 4.5 }))).toBe(true);
  });

  it('rejects non-objects', () => {
    for (const topic of BRONZE_TOPICS) {
      for (const u of [null, 1, 'x', [], true]) expect(isLeft(bronzeCodecs[topic].decode(u))).toBe(true);
    }
  });

  it('is cheap: 20k gps pings validate in well under a second', () => {
    const g = createEventGenerator({ seed: 3 });
    const values = Array.from({ length: 20_000 }, () => g.next('gps_pings').value);
    const t0 = performance.now();
    let ok = 0;
    for (const v of values) if (isRight(bronzeCodecs.gps_pings.decode(v))) ok++;
    const ms = performance.now() - t0;
    expect(ok).toBe(values.length);
    // Measured ~30 ms on a loaded 2-core machine; the bound leaves room for slow CI.
    expect(ms).toBeLessThan(1000);
  });
});

describe('bronze codecs as guards', () => {
  // The bronze pipeline accepts a record when `codec.is(value)` holds, without decoding; that
  // is only sound if `is` and `decode` agree and `decode` returns its input unchanged.
  it('is() and decode() agree on valid, broken and mistyped events, and decode is the identity', () => {
    const gen = createEventGenerator({ seed: 42 });
    const breakers: Array<(o: Record<string, unknown>) => Record<string, unknown>> = [
      (o) => o,
      (o) => ({ ...o, timestamp: Date.parse(String(o.timestamp)) }),
      (o) => ({ ...o, event_id: 12 }),
      (o) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'timestamp')),
      (o) => ({ ...o, timestamp: 'yesterday' }),
      (o) => ({ ...o, session_id: 5 }),
      (o) => ({ ...o, extra_field: { nested: true } }),
      () => ({}),
    ];
    for (const topic of BRONZE_TOPICS) {
      const codec = bronzeCodecs[topic];
      for (let i = 0; i < 200; i++) {
        const event = JSON.parse(JSON.stringify(gen.next(topic).value)) as Record<string, unknown>;
        for (const breakIt of breakers) {
          const value: unknown = breakIt(event);
          const decoded = codec.decode(value);
          expect(codec.is(value), `${topic} #${i}`).toBe(isRight(decoded));
          if (isRight(decoded)) expect(decoded.right).toEqual(value);
        }
      }
      for (const odd of [null, 1, 'x', [], [1, 2], true]) expect(codec.is(odd)).toBe(isRight(codec.decode(odd)));
    }
  });
});
