import { describe, expect, it } from 'vitest';
import { BRONZE_TOPICS } from '../../src/pipelines/rideshare/topics.ts';
import { CORRUPTION_KINDS, corrupt, createEventGenerator, padJson, mulberry32 } from '../../src/pipelines/rideshare/events.ts';
import type { CorruptionKind } from '../../src/pipelines/rideshare/events.ts';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../src/validation/limits.ts';
import {
  DEFAULT_MAX_DEPTH,
  FIELD_END,
  FIELD_ESCAPED,
  FIELD_KIND,
  FIELD_START,
  FIELD_STRIDE,
  JsonBytesScanner,
  KIND_ABSENT,
  KIND_ARRAY,
  KIND_FALSE,
  KIND_NULL,
  KIND_NUMBER,
  KIND_OBJECT,
  KIND_STRING,
  KIND_TRUE,
  SCAN_INVALID,
  SCAN_UNKNOWN,
  SCAN_VALID,
} from '../../src/validation/jsonBytes.ts';

/** The slow path's view: strict UTF-8 (a BOM is kept, as routeErrors does) then JSON.parse. */
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function reference(b: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  let text: string;
  try {
    text = strict.decode(b);
  } catch {
    return { ok: false };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

const enc = new TextEncoder();
const bytesOf = (x: string | readonly number[]): Uint8Array => (typeof x === 'string' ? enc.encode(x) : Uint8Array.from(x));
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Seeded PRNG for reproducible fuzz cases. */
const prng = mulberry32;

const KIND_OF_VALUE = (v: unknown): number => {
  if (v === null) return KIND_NULL;
  if (v === true) return KIND_TRUE;
  if (v === false) return KIND_FALSE;
  if (typeof v === 'string') return KIND_STRING;
  if (typeof v === 'number') return KIND_NUMBER;
  return Array.isArray(v) ? KIND_ARRAY : KIND_OBJECT;
};

/** Why a case failed, with the document (hex and text); built only on failure. */
function label(b: Uint8Array): string {
  return `${Buffer.from(b).toString('hex').slice(0, 400)} (${new TextDecoder().decode(b).slice(0, 200)})`;
}

/**
 * Checks the scanner's report on `b` against the reference: a sure answer must agree on
 * validity, and for a valid object every registered field's kind, range, text and escape flag
 * must match what JSON.parse made of it. Returns the scanner's answer.
 *
 * The fuzz tests run this tens of thousands of times: it compares plain values and calls
 * `expect.fail` only on a mismatch (an `expect` per field, with an eagerly built message, cost
 * most of the fuzz test's time).
 */
function check(scanner: JsonBytesScanner, b: Uint8Array): number {
  const r = scanner.scan(b);
  if (r === SCAN_UNKNOWN) return r;
  const ref = reference(b);
  if ((r === SCAN_VALID) !== ref.ok) expect.fail(`scanner ${r === SCAN_VALID ? 'valid' : 'invalid'}, reference ${ref.ok ? 'valid' : 'invalid'}: ${label(b)}`);
  if (r !== SCAN_VALID || !ref.ok) return r;
  const v = ref.value;
  if (scanner.topKind !== KIND_OF_VALUE(v)) expect.fail(`topKind ${scanner.topKind}, reference ${KIND_OF_VALUE(v)}: ${label(b)}`);
  const isObject = typeof v === 'object' && v !== null && !Array.isArray(v);
  const f = scanner.fields;
  for (let slot = 0; slot < scanner.keys.length; slot++) {
    const key = scanner.keys[slot] as string;
    const at = slot * FIELD_STRIDE;
    const present = isObject && Object.prototype.hasOwnProperty.call(v, key);
    if (!present) {
      if (f[at + FIELD_KIND] !== KIND_ABSENT) expect.fail(`${key} absent, reported kind ${f[at + FIELD_KIND]}: ${label(b)}`);
      continue;
    }
    const value = (v as Record<string, unknown>)[key];
    const kind = KIND_OF_VALUE(value);
    if (f[at + FIELD_KIND] !== kind) expect.fail(`${key}: kind ${f[at + FIELD_KIND]}, reference ${kind}: ${label(b)}`);
    const raw = b.subarray(f[at + FIELD_START], f[at + FIELD_END]);
    // The slice is the value's own JSON text: parsed alone, it serializes as the value does.
    if (JSON.stringify(JSON.parse(strict.decode(raw))) !== JSON.stringify(value)) expect.fail(`${key}: range ${f[at + FIELD_START]}..${f[at + FIELD_END]} is not its value: ${label(b)}`);
    const escaped = kind === KIND_STRING && raw.includes(0x5c) ? 1 : 0;
    if (f[at + FIELD_ESCAPED] !== escaped) expect.fail(`${key}: escaped flag ${f[at + FIELD_ESCAPED]}, expected ${escaped}: ${label(b)}`);
  }
  return r;
}

describe('JsonBytesScanner: hand-written edge cases', () => {
  const valid: (string | number[])[] = [
    '{}',
    '[]',
    ' \t\r\n{ } \n',
    '0',
    '-0',
    '1.5e-7',
    '-1E+300',
    '1e400',
    '123456789012345678901234567890',
    '"plain"',
    '""',
    'true',
    'false',
    'null',
    '{"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"}}',
    '[1, -2.5, 3e3, true, false, null, "x", [], {}]',
    String.raw`"\" \\ \/ \b \f \n \r \t"`,
    String.raw`"\u0041\u00e9\uD83D\uDE00\uFFFF\uabcd"`,
    String.raw`"\ud800"`, // lone surrogate as an escape: JSON.parse accepts it
    '"é € 😀 \u007f"',
    [0x22, 0xc2, 0x80, 0xdf, 0xbf, 0xe0, 0xa0, 0x80, 0xed, 0x9f, 0xbf, 0xee, 0x80, 0x80, 0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf, 0x22],
    '{"a":1,"a":2}', // duplicate, unregistered key: still valid JSON
    '{"\\u0061":1}', // escaped key (UNKNOWN once keys are registered)
    '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]',
    '{"x":{"x":{"x":{"x":{}}}}}',
  ];
  const invalid: (string | number[])[] = [
    '',
    ' ',
    '\n\t ',
    '{',
    '}',
    '[',
    '{"a":1',
    '{"a":1,}',
    '[1,2,]',
    '[,1]',
    '{,"a":1}',
    '{"a" 1}',
    '{"a":}',
    '{a:1}',
    "{'a':1}",
    '{"a":1}}',
    '{"a":1} x',
    '{"a":1}{}',
    '01',
    '-01',
    '-',
    '--1',
    '+1',
    '1.',
    '.5',
    '1e',
    '1e+',
    '1e-',
    '1.e5',
    '0x10',
    'NaN',
    'Infinity',
    '-Infinity',
    'tru',
    'truee',
    'nul',
    'True',
    'undefined',
    '"abc',
    '"\\"',
    '"\\x"',
    '"\\u12"',
    '"\\u12g4"',
    '"\\uGGGG"',
    '"\\U0041"',
    '"\\\'"',
    '"\\',
    '"tab\there"',
    '"nl\nhere"',
    [0x22, 0x00, 0x22],
    [0x22, 0x1f, 0x22],
    [0x22, 0xed, 0xa0, 0x80, 0x22], // UTF-8 encoded surrogate D800
    [0x22, 0xed, 0xbf, 0xbf, 0x22], // DFFF
    [0x22, 0xc0, 0xaf, 0x22], // overlong '/'
    [0x22, 0xc1, 0xbf, 0x22],
    [0x22, 0xe0, 0x80, 0xaf, 0x22], // overlong 3-byte
    [0x22, 0xf0, 0x80, 0x80, 0xaf, 0x22], // overlong 4-byte
    [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
    [0x22, 0xf5, 0x80, 0x80, 0x80, 0x22],
    [0x22, 0xff, 0x22],
    [0x22, 0xfe, 0x22],
    [0x22, 0x80, 0x22], // lone continuation
    [0x22, 0xc3, 0x22], // truncated 2-byte
    [0x22, 0xe2, 0x82, 0x22], // truncated 3-byte
    [0x22, 0xf0, 0x9f, 0x98, 0x22], // truncated 4-byte
    [0x22, 0xe2, 0x82],
    [0x22, 0xf0, 0x9f],
    [0xef, 0xbb, 0xbf, ...ascii('{}')], // BOM
    [0xc2, 0xa0, ...ascii('{}')], // NBSP is not JSON whitespace
    [...ascii('{}'), 0x0b], // vertical tab
    [...ascii('{}'), 0x0c], // form feed
    [...ascii('{}'), 0x00],
    [0x7b, 0xff, 0xfe, 0x7d],
    '{"a":1 "b":2}',
    '{"a":[1 2]}',
    '{"a":{"b":1]}',
    '[{"a":1}}',
    '{"a"::1}',
    '{"a":1,,"b":2}',
    '{"a":-}',
    '{"a":1.}',
    '{"a":"x"',
  ];

  it('agrees with TextDecoder(fatal) + JSON.parse on every valid case, and reports VALID', () => {
    const plain = new JsonBytesScanner();
    const keyed = new JsonBytesScanner(['a', 'b', 'x', 'd']);
    for (const c of valid) {
      const b = bytesOf(c);
      expect(reference(b).ok, JSON.stringify(c)).toBe(true);
      expect(check(plain, b), JSON.stringify(c)).toBe(SCAN_VALID);
      // With registered keys, the duplicate and the escaped key make it UNKNOWN; all else VALID.
      const expected = c === '{"a":1,"a":2}' || c === '{"\\u0061":1}' ? SCAN_UNKNOWN : SCAN_VALID;
      expect(check(keyed, b), JSON.stringify(c)).toBe(expected);
    }
  });

  it('agrees on every invalid case, and reports INVALID', () => {
    const scanner = new JsonBytesScanner(['a', 'b']);
    for (const c of invalid) {
      const b = bytesOf(c);
      expect(reference(b).ok, JSON.stringify(c)).toBe(false);
      expect(scanner.scan(b), JSON.stringify(c)).toBe(SCAN_INVALID);
    }
  });

  it('accepts every escape and each hex digit case in \\u, rejects every other escaped byte', () => {
    const scanner = new JsonBytesScanner();
    for (let e = 0; e < 256; e++) {
      const b = Uint8Array.of(0x22, 0x5c, e, 0x30, 0x30, 0x30, 0x30, 0x22);
      expect(check(scanner, b)).not.toBe(SCAN_UNKNOWN);
    }
    for (let h = 0; h < 256; h++) {
      const b = Uint8Array.of(0x22, 0x5c, 0x75, 0x30, h, 0x30, 0x30, 0x22);
      expect(check(scanner, b)).not.toBe(SCAN_UNKNOWN);
    }
  });

  it('agrees on every 1- and 2-byte value and every lead byte with its continuation range', () => {
    const scanner = new JsonBytesScanner();
    for (let x = 0; x < 256; x++) {
      check(scanner, Uint8Array.of(x));
      check(scanner, Uint8Array.of(0x22, x, 0x22));
      for (let y = 0; y < 256; y++) check(scanner, Uint8Array.of(0x22, x, y, 0x22));
    }
    for (const lead of [0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4]) {
      for (let y = 0x70; y < 0xd0; y++) {
        check(scanner, Uint8Array.of(0x22, lead, y, 0x80, 0x22));
        check(scanner, Uint8Array.of(0x22, lead, y, 0x80, 0x80, 0x22));
        check(scanner, Uint8Array.of(0x22, lead, 0x90, y, 0x80, 0x22));
        check(scanner, Uint8Array.of(0x22, lead, 0x90, 0x80, y, 0x22));
      }
    }
  });

  it('gives the same answers for documents at any byte offset of a larger buffer (word reads)', () => {
    const scanner = new JsonBytesScanner(['a', 'b']);
    const plain = new JsonBytesScanner(['a', 'b']);
    const cases = [...valid, ...invalid].map(bytesOf);
    // A special byte at each position of a 4-byte word, in strings of every length up to 12.
    for (let len = 0; len <= 12; len++) {
      for (let at = 0; at < len; at++) {
        for (const special of [[0x5c, 0x6e], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0x1f], [0xff], [0xc3], [0x22]]) {
          const body = Array.from({ length: len }, () => 0x61);
          body.splice(at, 1, ...special);
          cases.push(Uint8Array.from([...ascii('{"a":"'), ...body, ...ascii('"}')]));
        }
      }
    }
    for (const doc of cases) {
      const expected = plain.scan(Uint8Array.from(doc));
      expect(expected).toBe(check(plain, Uint8Array.from(doc)));
      for (let offset = 1; offset < 8; offset++) {
        // Garbage around the document that would change the answer if it were read.
        const big = new Uint8Array(offset + doc.length + 8).fill(0x22);
        big.set(doc, offset);
        const view = big.subarray(offset, offset + doc.length);
        expect(scanner.scan(view), `${Buffer.from(doc).toString('hex')} at +${offset}`).toBe(expected);
        expect(scanner.scan(big, offset, offset + doc.length), `${Buffer.from(doc).toString('hex')} range +${offset}`).toBe(expected);
      }
    }
  });

  it('answers UNKNOWN beyond its depth limit and VALID within it', () => {
    const nest = (n: number) => bytesOf('['.repeat(n) + ']'.repeat(n));
    const objects = (n: number) => bytesOf('{"a":'.repeat(n) + '1' + '}'.repeat(n));
    expect(DEFAULT_MAX_DEPTH).toBe(MAX_JSON_DEPTH);
    expect(new JsonBytesScanner().scan(nest(MAX_JSON_DEPTH))).toBe(SCAN_VALID);
    expect(new JsonBytesScanner().scan(nest(MAX_JSON_DEPTH + 1))).toBe(SCAN_UNKNOWN);
    // Far beyond it: answered at the limit, in time linear in the bytes read, no recursion.
    expect(new JsonBytesScanner(['a']).scan(nest(100_000))).toBe(SCAN_UNKNOWN);
    expect(new JsonBytesScanner(['a']).scan(objects(100_000))).toBe(SCAN_UNKNOWN);
    expect(new JsonBytesScanner([], 1000).scan(nest(1000))).toBe(SCAN_VALID);
    expect(new JsonBytesScanner([], 3).scan(objects(3))).toBe(SCAN_VALID);
    expect(new JsonBytesScanner([], 3).scan(objects(4))).toBe(SCAN_UNKNOWN);
    // A grammar error before the limit is still a sure INVALID.
    expect(new JsonBytesScanner([], 3).scan(bytesOf('[1 2, [[[[]]]]]'))).toBe(SCAN_INVALID);
    expect(check(new JsonBytesScanner(['a']), objects(200))).toBe(SCAN_VALID);
  });
});

describe('jsonDepthExceeds', () => {
  const nest = (n: number, inner = '') => bytesOf('['.repeat(n) + inner + ']'.repeat(n));
  const objects = (n: number) => bytesOf('{"a":'.repeat(n) + '1' + '}'.repeat(n));

  it('tells valid JSON deeper than the limit from JSON within it', () => {
    for (const limit of [1, 2, 3, 10, MAX_JSON_DEPTH]) {
      expect(jsonDepthExceeds(nest(limit), limit), `[]×${limit}`).toBe(false);
      expect(jsonDepthExceeds(nest(limit + 1), limit), `[]×${limit + 1}`).toBe(true);
      expect(jsonDepthExceeds(objects(limit), limit)).toBe(false);
      expect(jsonDepthExceeds(objects(limit + 1), limit)).toBe(true);
    }
    expect(jsonDepthExceeds(nest(50_000))).toBe(true);
    expect(jsonDepthExceeds(objects(100_000))).toBe(true);
    // Siblings do not add up: 1,000 arrays side by side are depth 2.
    expect(jsonDepthExceeds(bytesOf(`[${Array.from({ length: 1000 }, () => '[1]').join(',')}]`), 2)).toBe(false);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const inString = (s: string) => bytesOf(JSON.stringify({ a: s, pad: 'x'.repeat(64) }));
    expect(jsonDepthExceeds(inString('['.repeat(600)), 3)).toBe(false);
    expect(jsonDepthExceeds(inString(`"${'{'.repeat(600)}`), 3)).toBe(false);
    expect(jsonDepthExceeds(inString(`\\"${'['.repeat(600)}`), 3)).toBe(false);
    expect(jsonDepthExceeds(inString(`\\${'['.repeat(600)}\\`), 3)).toBe(false);
    expect(jsonDepthExceeds(nest(4, JSON.stringify('] ] ] \\" ]'.repeat(10))), 3)).toBe(true);
    expect(jsonDepthExceeds(nest(3, JSON.stringify('[[[[\\"[[[['.repeat(10))), 3)).toBe(false);
  });

  it('answers short documents without reading them (depth d needs 2d bytes)', () => {
    // 2 × limit bytes cannot hold valid JSON deeper than the limit.
    expect(jsonDepthExceeds(bytesOf('['.repeat(20)), 10)).toBe(false);
    expect(jsonDepthExceeds(bytesOf('['.repeat(21)), 10)).toBe(true);
  });
});

describe('JsonBytesScanner: top-level fields', () => {
  it('reports kind, range and escapes of registered top-level keys only', () => {
    const s = new JsonBytesScanner(['str', 'num', 'arr', 'obj', 't', 'f', 'n', 'esc', 'missing', 'é']);
    const doc = bytesOf(
      ' { "str" : "a b" , "num":-1.5e3,"arr":[1,[2]],"obj":{"str":"inner","num":{}},"t":true,"f":false,"n":null,"esc":"x\\ny","é":"ü","other":[{}]}',
    );
    expect(check(s, doc)).toBe(SCAN_VALID);
    const f = s.fields;
    const text = (key: string) => {
      const at = s.slotOf(key) * FIELD_STRIDE;
      return new TextDecoder().decode(doc.subarray(f[at + FIELD_START], f[at + FIELD_END]));
    };
    expect(text('str')).toBe('"a b"');
    expect(text('num')).toBe('-1.5e3');
    expect(text('arr')).toBe('[1,[2]]');
    expect(text('obj')).toBe('{"str":"inner","num":{}}');
    expect(text('esc')).toBe('"x\\ny"');
    expect(text('é')).toBe('"ü"');
    expect(f[s.slotOf('esc') * FIELD_STRIDE + FIELD_ESCAPED]).toBe(1);
    expect(f[s.slotOf('str') * FIELD_STRIDE + FIELD_ESCAPED]).toBe(0);
    expect(f[s.slotOf('missing') * FIELD_STRIDE + FIELD_KIND]).toBe(KIND_ABSENT);
    // Reused across calls: a document without the keys clears them.
    expect(check(s, bytesOf('{"other":1}'))).toBe(SCAN_VALID);
    for (let k = 0; k < s.keys.length; k++) expect(f[k * FIELD_STRIDE + FIELD_KIND]).toBe(KIND_ABSENT);
    expect(check(s, bytesOf('[{"str":"x"}]'))).toBe(SCAN_VALID);
    expect(s.topKind).toBe(KIND_ARRAY);
    expect(f[s.slotOf('str') * FIELD_STRIDE + FIELD_KIND]).toBe(KIND_ABSENT);
  });

  it('answers UNKNOWN for a registered key twice or any escaped top-level key', () => {
    const s = new JsonBytesScanner(['accuracy']);
    expect(s.scan(bytesOf('{"accuracy":1,"accuracy":-1}'))).toBe(SCAN_UNKNOWN);
    expect(s.scan(bytesOf('{"acc\\u0075racy":-1}'))).toBe(SCAN_UNKNOWN);
    expect(s.scan(bytesOf('{"x\\n":1}'))).toBe(SCAN_UNKNOWN);
    // Nested or unregistered duplicates and escapes are fine.
    expect(check(s, bytesOf('{"accuracy":1,"o":{"accuracy":2,"accuracy":3,"\\u0061":4},"p":1,"p":2}'))).toBe(SCAN_VALID);
    // Invalid JSON stays invalid even with a duplicate key earlier.
    expect(s.scan(bytesOf('{"accuracy":1,"accuracy":-1,}'))).not.toBe(SCAN_VALID);
  });

  it('scans a sub-range of a larger buffer', () => {
    const s = new JsonBytesScanner(['a']);
    const b = bytesOf('xx{"a":"q"}yy');
    expect(s.scan(b, 2, 11)).toBe(SCAN_VALID);
    expect(s.fields[FIELD_START]).toBe(7);
    expect(s.fields[FIELD_END]).toBe(10);
    expect(s.scan(b, 2, 10)).toBe(SCAN_INVALID);
    expect(s.scan(bytesOf('"abc"'), 0, 4)).toBe(SCAN_INVALID); // the closing quote is outside
    expect(s.scan(bytesOf('[12]'), 0, 2)).toBe(SCAN_INVALID);
    expect(s.scan(bytesOf('12'), 0, 1)).toBe(SCAN_VALID);
  });
});

describe('JsonBytesScanner: seeded mutation fuzz against TextDecoder(fatal) + JSON.parse', () => {
  const INTERESTING = [
    0x00, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x22, 0x2b, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x39, 0x3a, 0x45, 0x5b, 0x5c, 0x5d, 0x65, 0x66, 0x6e,
    0x74, 0x75, 0x7b, 0x7d, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
  ];
  const SNIPPETS = ['\\u00e9', '\\ud83d\\ude00', '\\n', '\\"', 'é', '€', '😀', '"', '\\', '1e400', '-0.0e-0', ',', ':', '[]', '{}', ' ', 'null'].map((s) =>
    enc.encode(s),
  );

  /** Byte arrays joined (no array of numbers in between). */
  function concat(...parts: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
    let b: Uint8Array = Uint8Array.from(src);
    const n = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < n; k++) {
      const at = Math.floor(rnd() * (b.length + 1));
      const op = Math.floor(rnd() * 8);
      if (op === 0 && b.length > 0) {
        b[Math.min(at, b.length - 1)] = Math.floor(rnd() * 256);
      } else if (op === 1 && b.length > 0) {
        b[Math.min(at, b.length - 1)] = INTERESTING[Math.floor(rnd() * INTERESTING.length)] as number;
      } else if (op === 2 && b.length > 0) {
        const j = Math.min(at, b.length - 1);
        b[j] = (b[j] as number) ^ (1 << Math.floor(rnd() * 8));
      } else if (op === 3) {
        const ins = rnd() < 0.5 ? Uint8Array.of(INTERESTING[Math.floor(rnd() * INTERESTING.length)] as number) : (SNIPPETS[Math.floor(rnd() * SNIPPETS.length)] as Uint8Array);
        b = concat(b.subarray(0, at), ins, b.subarray(at));
      } else if (op === 4 && b.length > 0) {
        const len = 1 + Math.floor(rnd() * 4);
        b = concat(b.subarray(0, at), b.subarray(at + len));
      } else if (op === 5) {
        b = b.slice(0, at);
      } else if (op === 6 && b.length > 2) {
        // Duplicate a slice (repeats keys, values, separators).
        const from = Math.floor(rnd() * b.length);
        const len = 1 + Math.floor(rnd() * 24);
        const piece = b.slice(from, from + len);
        b = concat(b.subarray(0, at), piece, b.subarray(at));
      } else {
        // Swap a byte with its neighbour.
        if (at + 1 < b.length) {
          const x = b[at] as number;
          b[at] = b[at + 1] as number;
          b[at + 1] = x;
        }
      }
    }
    return b;
  }

  it('never says valid when the reference rejects, and agrees whenever it is sure (≥ 20,000 cases)', () => {
    const keys = ['event_id', 'timestamp', 'location', 'accuracy', 'entity_type', 'trip_id', 'session_id', 'rating', 'fare'];
    const scanner = new JsonBytesScanner(keys);
    let cases = 0;
    let valid = 0;
    let invalid = 0;
    let unknown = 0;
    for (const seed of [11, 22, 33]) {
      const rnd = prng(seed);
      const gen = createEventGenerator({ seed });
      for (let round = 0; round < 120; round++) {
        for (const [t, topic] of BRONZE_TOPICS.entries()) {
          let json = JSON.stringify(gen.next(topic).value);
          if (topic === 'gps_pings' && round % 2 === 0) json = padJson(json, 414);
          const clean = enc.encode(json);
          const doc: Uint8Array[] = [clean];
          for (let m = 0; m < 6; m++) doc.push(mutate(clean, rnd));
          // One corruption per event, the kind rotating over rounds and topics: every topic meets
          // every kind and variant, at a quarter of the cost of all kinds for every event.
          const bad = corrupt(CORRUPTION_KINDS[(round + t) % CORRUPTION_KINDS.length] as CorruptionKind, clean, round);
          if (bad !== null) doc.push(bad);
          for (const b of doc) {
            const r = check(scanner, b);
            cases++;
            if (r === SCAN_VALID) valid++;
            else if (r === SCAN_INVALID) invalid++;
            else unknown++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThanOrEqual(20_000);
    // Both answers occur plenty; UNKNOWN (duplicated/escaped keys) stays rare.
    expect(valid).toBeGreaterThan(cases / 4);
    expect(invalid).toBeGreaterThan(cases / 4);
    expect(unknown).toBeLessThan(cases / 20);
  });
});
