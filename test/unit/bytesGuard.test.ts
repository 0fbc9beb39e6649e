import * as t from 'io-ts';
import { describe, expect, it } from 'vitest';
import { IsoTimestamp, bronzeBytesGuards, bronzeCodecs, isIsoTimestampBytes, rideshareByteChecks } from '../../src/pipelines/rideshare/codecs.ts';
import { BRONZE_TOPICS } from '../../src/pipelines/rideshare/topics.ts';
import type { BronzeTopic } from '../../src/pipelines/rideshare/topics.ts';
import { createEventGenerator, padJson, mulberry32 } from '../../src/pipelines/rideshare/events.ts';
import { compileBytesGuard } from '../../src/validation/bytesGuard.ts';
import { MAX_JSON_DEPTH } from '../../src/validation/limits.ts';

const enc = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The slow path: strict UTF-8, JSON.parse, a non-null non-array object, then the codec. */
function slowAccept(codec: t.Mixed, b: Uint8Array): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(strict.decode(b));
  } catch {
    return false;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && codec.is(parsed);
}

/** Seeded PRNG for reproducible fuzz cases. */
const prng = mulberry32;
const pick = <A>(rnd: () => number, xs: readonly A[]): A => xs[Math.floor(rnd() * xs.length)] as A;

/** Generated events of a topic as bytes (gps_pings: every other one padded like --payload-bytes 414). */
function events(topic: BronzeTopic, seed: number, n: number): Uint8Array[] {
  const gen = createEventGenerator({ seed });
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    let json = JSON.stringify(gen.next(topic).value);
    if (topic === 'gps_pings' && i % 2 === 0) json = padJson(json, 414);
    out.push(enc.encode(json));
  }
  return out;
}

describe('bronzeBytesGuards: the fast path is taken for clean events', () => {
  it.each(BRONZE_TOPICS)('%s: every clean generated event (2,100 over 3 seeds) is accepted', (topic) => {
    const guard = bronzeBytesGuards[topic];
    let accepted = 0;
    let n = 0;
    for (const seed of [1, 7, 99]) {
      for (const b of events(topic, seed, 700)) {
        n++;
        if (guard(b)) accepted++;
        else expect.fail(`${topic}: guard rejected a clean event: ${new TextDecoder().decode(b)}`);
      }
    }
    expect(n).toBe(2100);
    expect(accepted).toBe(n);
  });
});

// Raw JSON texts to put in place of a field's value.
const NUMBERS = [
  '-1', '-0', '0', '-0.0', '0.0', '1e400', '-1e400', '1e2', '1E-2', '2e0', '90', '90.0', '90.0000001', '-90.0000001', '89.9999999999',
  '180', '180.0000000', '180.0000001', '-180', '-180.5', '91', '1000', '0.5', '5', '5.0', '6', '1', '1.5', '3', '-3', '12345678901234567890',
  `1${'0'.repeat(400)}`, `0.${'0'.repeat(400)}1`, `-${'9'.repeat(310)}`, '4.99', '1.0e0',
];
const STRINGS = [
  '"x"', '""', '"driver"', '"dri\\u0076er"', '"rider"', '"Driver"', '"driver "', '"trip.completed"', '"trip.complete"', '"trip.c\\u006fmpleted"',
  '"credit_card"', '"digital_wallet"', '"cash"', '"available"', '"on_trip"', '"driver.created"', '"rider.updated"', '"driver.updated"',
  '"2024-02-29T10:00:00Z"', '"2023-02-29T10:00:00Z"', '"2024-02-30T10:00:00Z"', '"2100-02-29T10:00:00Z"', '"2000-02-29T10:00:00Z"',
  '"2024-01-01T24:00:00Z"', '"2024-01-01T23:59:60Z"', '"2024-01-01T23:59:61Z"', '"2024-01-01T10:00:00+24:00"', '"2024-01-01T10:00:00+23:59"',
  '"2024-01-01T10:00:00-0300"', '"2024-01-01 10:00:00.1234567891Z"', '"2024-01-01T10:00:00.123456789Z"', '"2024-01-01T10:00:00\\u005a"',
  '"2024-01-01T10:00:00.123,Z"', '"2024-04-31T10:00:00Z"', '"2024-01-01T10:60:00Z"', '"2024-13-01T10:00:00Z"', '"2024-01-01t10:00:00z"',
  '"2024-01-01T10:00:00+05:60"', '"2024-01-01T10:00:00\\n"', '"é"', '"1"',
];
const ARRAYS = [
  '[1,2]', '[1,2,3]', '[90,180]', '[90.0,180.0]', '[90.0000001,0]', '[0,180.0000001]', '[-90,-180]', '[-23.5,-46.6]', '[ -23.5 ,\n-46.6 ]',
  '[1e1,2]', '[1]', '[]', '["1",2]', '[[1],2]', '[null,2]', '[-91,0]', '[0,-181]', '[0,1e400]', '[-0,-0]', '[100,0]', '[45,999]',
];
const OTHERS = ['null', 'true', 'false', '{}', '{"a":1}', '{"0":1,"1":2}'];
const VALUES = [...NUMBERS, ...STRINGS, ...ARRAYS, ...OTHERS];

/** Re-serialises an event object with raw value texts, so values JSON.stringify cannot make fit in. */
function render(entries: readonly (readonly [string, string])[]): Uint8Array {
  return enc.encode(`{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`);
}

/** A few value-level mutants of one event: replace, delete, duplicate, add, escape a key. */
function mutants(clean: Uint8Array, rnd: () => number): Uint8Array[] {
  const obj = JSON.parse(strict.decode(clean)) as Record<string, unknown>;
  const base = Object.entries(obj).map(([k, v]) => [JSON.stringify(k), JSON.stringify(v)] as const);
  const out: Uint8Array[] = [];
  for (let m = 0; m < 8; m++) {
    const entries = base.map((e) => [...e] as [string, string]);
    const edits = 1 + Math.floor(rnd() * 2);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * entries.length);
      const target = entries[at];
      if (target === undefined) continue;
      const op = rnd();
      if (op < 0.5) {
        target[1] = pick(rnd, VALUES);
      } else if (op < 0.6) {
        entries.splice(at, 1); // missing key
      } else if (op < 0.7) {
        entries.push([target[0], pick(rnd, VALUES)]); // duplicate, bad (or good) second value
      } else if (op < 0.75) {
        entries.splice(at, 0, [target[0], pick(rnd, VALUES)]); // duplicate, bad first value
      } else if (op < 0.8) {
        target[1] = 'null';
      } else if (op < 0.85) {
        // Escape a key's first character: same key for JSON.parse, different bytes.
        const k = target[0];
        target[0] = `"\\u${(k.charCodeAt(1) | 0).toString(16).padStart(4, '0')}${k.slice(2)}`;
      } else if (op < 0.9) {
        entries.push([JSON.stringify(`x${Math.floor(rnd() * 5)}`), pick(rnd, VALUES)]); // extra field
      } else {
        target[1] = `{${target[0]}:${target[1]}}`; // nested object instead of the value
      }
    }
    out.push(render(entries));
  }
  return out;
}

describe('bronzeBytesGuards: guard(b) === true ⇒ the slow path accepts', () => {
  it('holds on the value-level mutation fuzz of every topic, and the fuzz exercises both sides', () => {
    const rnd = prng(20240229);
    let cases = 0;
    let guardTrue = 0;
    let slowTrue = 0;
    for (const topic of BRONZE_TOPICS) {
      const guard = bronzeBytesGuards[topic];
      const codec = bronzeCodecs[topic];
      for (const seed of [3, 4]) {
        for (const clean of events(topic, seed, 150)) {
          for (const b of mutants(clean, rnd)) {
            cases++;
            const fast = guard(b);
            const slow = slowAccept(codec, b);
            if (fast) guardTrue++;
            if (slow) slowTrue++;
            if (fast && !slow) expect.fail(`${topic}: guard accepted what the slow path rejects: ${new TextDecoder().decode(b)}`);
          }
        }
      }
    }
    expect(cases).toBeGreaterThanOrEqual(19_000);
    // Not vacuous: many mutants are still valid and the guard takes most of those.
    expect(slowTrue).toBeGreaterThan(cases / 5);
    expect(slowTrue).toBeLessThan(cases * 0.8);
    expect(guardTrue).toBeGreaterThan(slowTrue * 0.6);
  });

  it('rejects the named traps (the slow path decides them)', () => {
    const gps = (fields: string) =>
      enc.encode(
        `{"event_id":"e","entity_type":"driver","entity_id":"d","timestamp":"2025-01-06T08:00:00Z","location":[-23.5,-46.6],"accuracy":4.2${fields}}`,
      );
    const guard = bronzeBytesGuards.gps_pings;
    expect(guard(gps(''))).toBe(true);
    expect(guard(gps(',"trip_id":null,"session_id":"s","correlation_id":null'))).toBe(true);
    const traps = [
      ',"accuracy":-1', // duplicate key, bad second value
      ',"accuracy":1', // duplicate key, even a good one: not sure → slow path
      ',"trip_id":5',
      ',"session_id":{}',
      ',"\\u0061ccuracy":-1',
    ];
    for (const tail of traps) {
      const b = gps(tail);
      expect(guard(b), tail).toBe(false);
    }
    const swap = (from: string, to: string) => enc.encode(new TextDecoder().decode(gps('')).replace(from, to));
    for (const [from, to] of [
      ['4.2', '-4.2'],
      ['4.2', '1e400'],
      ['4.2', '4e0'],
      ['4.2', '"4.2"'],
      ['4.2', 'null'],
      ['[-23.5,-46.6]', '[90.0000001,0]'],
      ['[-23.5,-46.6]', '[1,2,3]'],
      ['[-23.5,-46.6]', '[1e1,2]'],
      ['"driver"', '"dri\\u0076er"'],
      ['"driver"', '"car"'],
      ['2025-01-06T08:00:00Z', '2024-02-30T08:00:00Z'],
      ['2025-01-06T08:00:00Z', '2023-02-29T08:00:00Z'],
      ['2025-01-06T08:00:00Z', '2025-01-06T24:00:00Z'],
      ['2025-01-06T08:00:00Z', '2025-01-06T08:00:00+24:00'],
      ['"event_id":"e",', ''],
      ['"e"', 'null'],
    ] as const) {
      const b = swap(from, to);
      expect(guard(b), `${from} → ${to}`).toBe(false);
    }
    // Edge values the slow path accepts and the guard is exact about.
    expect(guard(swap('[-23.5,-46.6]', '[-90.000,180]'))).toBe(true);
    expect(guard(swap('[-23.5,-46.6]', '[ 90 , -180.0 ]'))).toBe(true);
    expect(guard(swap('2025-01-06T08:00:00Z', '2024-02-29 23:59:60.123456789+2359'))).toBe(true);
    expect(guard(swap('4.2', '0'))).toBe(true);
  });

  it('ratings: only the digits 1–5 take the fast path', () => {
    const gen = createEventGenerator({ seed: 5 });
    const ev = gen.next('ratings').value;
    const guard = bronzeBytesGuards.ratings;
    for (const [raw, fast] of [
      ['1', true], ['5', true], ['3', true], ['0', false], ['6', false], ['5.0', false], ['4.5', false], ['-1', false], ['"5"', false],
    ] as const) {
      const b = enc.encode(JSON.stringify({ ...ev, rating: 0 }).replace('"rating":0', `"rating":${raw}`));
      expect(guard(b), raw).toBe(fast);
      if (fast) expect(slowAccept(bronzeCodecs.ratings, b)).toBe(true);
    }
  });
});

describe('bronzeBytesGuards: nesting', () => {
  it('accept an event up to MAX_JSON_DEPTH levels deep and never beyond (routeErrors rejects those)', () => {
    for (const topic of BRONZE_TOPICS) {
      const event = JSON.stringify(createEventGenerator({ seed: 8 }).next(topic).value);
      // The event object is level 1: an extra member nested n - 1 deep makes the document n deep.
      const deep = (n: number) => enc.encode(`${event.slice(0, -1)},"extra":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`);
      expect(bronzeBytesGuards[topic](deep(MAX_JSON_DEPTH)), topic).toBe(true);
      expect(bronzeBytesGuards[topic](deep(MAX_JSON_DEPTH + 1)), topic).toBe(false);
      expect(bronzeBytesGuards[topic](deep(50_000)), topic).toBe(false);
      expect(slowAccept(bronzeCodecs[topic], deep(MAX_JSON_DEPTH)), topic).toBe(true);
    }
  });
});

describe('IsoTimestamp byte check', () => {
  it('pins the byte check to the codec on 12,000 random timestamp-like strings', () => {
    const rnd = prng(77);
    // [valid pieces, broken pieces]: most picks valid, so that both answers are common.
    const years = [['2024', '2023', '2000', '1900', '2100', '0000', '9999'], ['202', '20245', '2O24']] as const;
    const months = [['01', '02', '04', '09', '12'], ['00', '13', '1', '001', '1a']] as const;
    const days = [['01', '28', '29', '30', '31'], ['00', '32', '3', '٣1']] as const;
    const seps = [['T', 't', ' '], ['_', '', 'TT']] as const;
    const hours = [['00', '09', '23'], ['24', '9', '99']] as const;
    const minutes = [['00', '30', '59'], ['60', '5']] as const;
    const seconds = [['00', '59', '60'], ['61', '6']] as const;
    const fractions = [['', '', '.1', ',123', '.123456789'], ['.1234567890', '.', '.12a', ',', '.٣']] as const;
    const zones = [
      ['', 'Z', 'z', '+00:00', '-03:00', '+0530', '+23:59', '-2359'],
      ['+24:00', '+23:60', '+5:30', '+05:3', 'Zz', '+05:30Z', ' ', '+05::30', '+05:30\n', '\n'],
    ] as const;
    const piece = (p: readonly [readonly string[], readonly string[]]): string => (rnd() < 0.9 ? pick(rnd, p[0]) : pick(rnd, p[1]));
    let accepted = 0;
    const n = 12_000;
    for (let i = 0; i < n; i++) {
      let s = `${piece(years)}-${piece(months)}-${piece(days)}${piece(seps)}${piece(hours)}:${piece(minutes)}:${piece(seconds)}${piece(fractions)}${piece(zones)}`;
      const r = rnd();
      if (r < 0.1) {
        const at = Math.floor(rnd() * (s.length + 1));
        s = s.slice(0, at) + pick(rnd, ['-', ':', '0', 'é', ' ', 'Z']) + s.slice(at);
      } else if (r < 0.2) {
        const at = Math.floor(rnd() * s.length);
        s = s.slice(0, at) + s.slice(at + 1);
      }
      const b = enc.encode(s);
      const expected = IsoTimestamp.is(s);
      if (expected) accepted++;
      expect(isIsoTimestampBytes(b, 0, b.length), s).toBe(expected);
      // Inside a larger buffer too.
      const framed = enc.encode(`"${s}"`);
      expect(isIsoTimestampBytes(framed, 1, framed.length - 1), s).toBe(expected);
    }
    expect(accepted).toBeGreaterThan(n / 5);
    expect(accepted).toBeLessThan(n * 0.8);
  });
});

describe('compileBytesGuard', () => {
  it('returns undefined for codecs it cannot look into', () => {
    expect(compileBytesGuard(t.string)).toBeUndefined();
    expect(compileBytesGuard(t.type({ a: t.array(t.number) }))).toBeUndefined();
    expect(compileBytesGuard(t.type({ a: t.record(t.string, t.number) }))).toBeUndefined();
    expect(compileBytesGuard(t.type({ a: t.unknown }))).toBeUndefined();
    expect(compileBytesGuard(t.type({ a: t.brand(t.number, (n): n is t.Branded<number, { readonly P: unique symbol }> => n > 0, 'P') }))).toBeUndefined();
    expect(compileBytesGuard(t.type({ constructor: t.string }))).toBeUndefined();
    expect(compileBytesGuard(t.union([t.type({ a: t.string }), t.null]))).toBeUndefined();
    // Without the custom checks the rideshare codecs do not compile; with them they do.
    expect(compileBytesGuard(bronzeCodecs.gps_pings)).toBeUndefined();
    expect(compileBytesGuard(bronzeCodecs.gps_pings, rideshareByteChecks)).toBeDefined();
  });

  it('agrees with the slow path on a generic codec (literals, Int, booleans, unions, nested objects)', () => {
    const Codec = t.union([
      t.intersection([
        t.type({
          kind: t.literal('a'),
          n: t.Int,
          flag: t.boolean,
          lit: t.union([t.literal(3), t.literal(true), t.literal('é')]),
          inner: t.type({ x: t.number, y: t.union([t.string, t.null]) }),
        }),
        t.partial({ opt: t.keyof({ p: null, q: null }), n: t.number }),
      ]),
      t.type({ kind: t.literal('b'), z: t.null }),
    ]);
    const guard = compileBytesGuard(Codec);
    if (guard === undefined) throw new Error('expected a guard');
    const rnd = prng(5);
    const pieces: Record<string, readonly string[]> = {
      kind: ['"a"', '"b"', '"c"', '"\\u0061"'],
      n: ['1', '-7', '0', '1.0', '1.5', '1e3', '"1"', '123456789012345678901', `1${'0'.repeat(400)}`],
      flag: ['true', 'false', 'null', '0'],
      lit: ['3', '3.0', '30', 'true', 'false', '"é"', '"e"', '"\\u00e9"'],
      inner: ['{"x":1,"y":"s"}', '{"x":1,"y":null}', '{"x":1}', '{"y":"s"}', '{"x":"1","y":"s"}', '{"x":1,"y":"s","x":2}', '[]', 'null', '{"x":1e400,"y":"\\n"}'],
      opt: ['"p"', '"q"', '"r"', 'null', '"\\u0070"'],
      z: ['null', '0', '"null"'],
    };
    let fastCount = 0;
    let slowCount = 0;
    for (let i = 0; i < 5000; i++) {
      const entries: string[] = [];
      for (const [k, vs] of Object.entries(pieces)) {
        if (rnd() < 0.85) entries.push(`"${k}":${pick(rnd, vs)}`);
      }
      if (rnd() < 0.1) entries.push(`"n":${pick(rnd, pieces.n ?? [])}`);
      const b = enc.encode(`{${entries.join(',')}}`);
      const fast = guard(b);
      const slow = slowAccept(Codec, b);
      if (fast) fastCount++;
      if (slow) slowCount++;
      if (fast && !slow) expect.fail(`guard accepted what the slow path rejects: ${new TextDecoder().decode(b)}`);
    }
    expect(fastCount).toBeGreaterThan(50);
    expect(fastCount).toBeGreaterThan(slowCount * 0.5);
    // Not an object at the top: never accepted.
    expect(guard(enc.encode('[{"kind":"b","z":null}]'))).toBe(false);
    expect(guard(enc.encode('{"kind":"b","z":null}'))).toBe(true);
    expect(guard(enc.encode('{"kind":"b","z":null} x'))).toBe(false);
  });
});
