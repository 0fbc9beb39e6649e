/**
 * Seeded hostile Kafka values for the poison-record tests: deep nesting of arrays and objects
 * (around the depth limit and far beyond it, at the top and inside valid events), huge strings
 * and numbers, every class of invalid UTF-8, JSON edge cases and byte mutations of valid
 * events — interleaved with valid events. Deterministic: the same seed, the same bytes.
 *
 * `expectedRoute` says, independently of `routeErrors`, where each one must land.
 */
import { mulberry32 } from '../../src/pipelines/rideshare/events.ts';

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const concat = (...parts: (Uint8Array | readonly number[])[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

export interface HostileCase {
  /** What the case is, for failure messages. */
  readonly name: string;
  readonly value: Uint8Array | null;
}

const deepArrays = (n: number, inner = ''): string => '['.repeat(n) + inner + ']'.repeat(n);
const deepObjects = (n: number, inner = '1'): string => '{"a":'.repeat(n) + inner + '}'.repeat(n);
const deepMixed = (n: number): string => {
  let open = '';
  let close = '';
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      open += '{"k":';
      close = `}${close}`;
    } else {
      open += '[0,';
      close = `]${close}`;
    }
  }
  return `${open}null${close}`;
};

/** A valid event's JSON text with `extra` spliced in as the last member (`"<key>":<extra>`). */
const withMember = (eventJson: string, key: string, extra: string): string => `${eventJson.slice(0, -1)},${JSON.stringify(key)}:${extra}}`;
/** A valid event's JSON text with `field` replaced by raw JSON text. */
const withField = (event: Record<string, unknown>, field: string, raw: string): string =>
  JSON.stringify({ ...event, [field]: '\u0000MARK\u0000' }).replace(JSON.stringify('\u0000MARK\u0000'), () => raw);
/** The first member of `event` whose value has the given type (or `fallback`). */
const fieldOf = (event: Record<string, unknown>, type: 'string' | 'number' | 'object', fallback: string): string =>
  Object.keys(event).find((k) => k !== 'timestamp' && typeof event[k] === type && event[k] !== null) ?? fallback;

/**
 * Invalid UTF-8, one of each class the WHATWG decoder rejects: stray continuation bytes,
 * overlong 2/3/4-byte forms, UTF-8-encoded surrogates, code points above U+10FFFF, bytes that
 * never occur (C0, C1, F5–FF), sequences cut short (mid-document and at the end).
 */
export const INVALID_UTF8: readonly (readonly number[])[] = [
  [0x80],
  [0xbf],
  [0x80, 0x80],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xe0, 0x9f, 0xbf],
  [0xf0, 0x80, 0x80, 0xaf],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80],
  [0xfe],
  [0xff],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xc3, 0x28],
  [0xe2, 0x28, 0xa1],
];

/** JSON edge cases (texts): what parsers disagree on or producers get wrong. */
const JSON_EDGES = (event: string): string[] => [
  '',
  ' ',
  'null',
  'true',
  '0',
  '"text"',
  '[]',
  '{}',
  'NaN',
  'Infinity',
  '-Infinity',
  '{"a":NaN}',
  '{"a":undefined}',
  "{'a':1}",
  '{a:1}',
  '{"a":1,}',
  '[1,2,]',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '/* c */{}',
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":0x10}',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '{"a":"line\nbreak"}',
  '{"a":"tab\there"}',
  '{"a":"\\ud800"}',
  '{"a":"\\udfff\\ud800"}',
  '{"\\u0000":1}',
  '{"__proto__":{"polluted":true},"constructor":{"prototype":1}}',
  `{"a":${'1'.repeat(10_000)}}`,
  `{"a":1e${'9'.repeat(400)}}`,
  '{"a":1e400,"b":-1e400,"c":1e-400,"d":-0}',
  `${event.slice(0, -1)},"event_id":"dup"}`,
  `${event.slice(0, -1)},"event_id":1}`,
  `${event.slice(0, -1)},"timestamp":null}`,
  event.replace('"event_id"', '"\\u0065vent_id"'),
  event.replace('{', '{\n\t\r '),
  `\ufeff${event}`,
  `${event}\u0000`,
  `${event}\n`,
  event.slice(0, Math.floor(event.length / 2)),
  `[${event}]`,
  `{"e":${event}}`,
  `${event.slice(0, -1)},"session_id":${'['.repeat(600)}${']'.repeat(600)}}`,
];

export interface HostileOptions {
  /** Payloads over this many bytes are expected as OVERSIZED_PAYLOAD (the job's limit). */
  readonly maxPayloadBytes: number;
  /** Generated cases per topic besides the fixed ones (mutations, random nesting). */
  readonly random?: number;
  /** Include the very large cases (100,000-deep, 400 kB strings); default true. */
  readonly large?: boolean;
}

/**
 * The hostile corpus for one topic, valid events interleaved (every third case). Sizes stay
 * under `maxPayloadBytes` except for the one oversized case.
 */
export function hostileCases(events: () => Record<string, unknown>, seed: number, options: HostileOptions): HostileCase[] {
  const rnd = mulberry32(seed);
  const pick = <A>(xs: readonly A[]): A => xs[Math.floor(rnd() * xs.length)] as A;
  const large = options.large ?? true;
  const nextEvent = (): { json: string; event: Record<string, unknown> } => {
    const event = events();
    return { json: JSON.stringify(event), event };
  };
  const out: HostileCase[] = [];
  const add = (name: string, value: Uint8Array | string | null): void => {
    out.push({ name, value: typeof value === 'string' ? bytes(value) : value });
    // Valid events between the hostile ones: the records behind a poison one must get through.
    if (out.length % 3 === 2) out.push({ name: 'valid event', value: bytes(nextEvent().json) });
  };

  // Deep nesting: at the limit, just past it, far beyond it; top level and inside events.
  for (const n of [511, 512, 513, 600, 5_000]) {
    add(`arrays ${n} deep`, deepArrays(n));
    add(`objects ${n} deep`, deepObjects(n));
    add(`mixed ${n} deep`, deepMixed(n));
    const { json, event } = nextEvent();
    add(`event with an extra member ${n} deep`, withMember(json, 'extra', deepArrays(n - 1)));
    add(`event whose ${fieldOf(event, 'object', 'location')} is ${n} deep`, withField(event, fieldOf(event, 'object', 'location'), deepArrays(n - 1, '1')));
    add(`event whose timestamp is ${n} deep`, withField(event, 'timestamp', deepObjects(n - 1)));
    add(`event whose ${fieldOf(event, 'string', 'id')} is ${n} deep`, withField(event, fieldOf(event, 'string', 'id'), deepMixed(n - 1)));
  }
  add('arrays 50,000 deep', deepArrays(50_000));
  add('arrays 50,000 deep, unclosed', '['.repeat(50_000));
  add('string of 50,000 brackets', JSON.stringify('['.repeat(50_000)));
  if (large) {
    add('objects 100,000 deep', deepObjects(100_000));
    add('arrays 100,000 deep in an event', withMember(nextEvent().json, 'x', deepArrays(100_000)));
  }

  // Huge strings and numbers, in registered and unregistered members.
  {
    const { json, event } = nextEvent();
    const big = large ? 400_000 : 40_000;
    const id = fieldOf(event, 'string', 'id');
    const num = fieldOf(event, 'number', 'amount');
    add(`huge ${id}`, JSON.stringify({ ...event, [id]: 'e'.repeat(big) }));
    add('huge timestamp string', JSON.stringify({ ...event, timestamp: `2024-01-01T00:00:00.${'1'.repeat(big)}Z` }));
    add('huge extra string', withMember(json, 'pad', JSON.stringify('\u00e9\u20ac\ud83d\ude00'.repeat(big / 8))));
    add('huge key', withMember(json, 'k'.repeat(big / 4), '1'));
    add('huge escaped string', withMember(json, 'esc', JSON.stringify('\n\u0001"\\'.repeat(big / 16))));
    add(`10,000-digit number as ${num}`, withField(event, num, '9'.repeat(10_000)));
    add(`number with a 400-digit exponent as ${num}`, withField(event, num, `1e${'9'.repeat(400)}`));
    add(`tiny number as ${num}`, withField(event, num, `1e-${'9'.repeat(400)}`));
    add(`-0 as ${num}`, withField(event, num, '-0.0e0'));
    add(`NUL, lone surrogates and U+2028 in ${id}`, withField(event, id, '"a\\u0000b\\ud800\\u2028"'));
    add('wide array of 50,000 numbers', withMember(json, 'wide', `[${Array.from({ length: 50_000 }, (_, i) => i).join(',')}]`));
    add('10,000 keys', `{${Array.from({ length: 10_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`);
    add('oversized payload', withMember(json, 'pad', JSON.stringify('x'.repeat(options.maxPayloadBytes))));
  }

  // Every invalid-UTF-8 class, in a value, in a key, at the start and cut at the end.
  for (const bad of INVALID_UTF8) {
    const json = bytes(nextEvent().json);
    const at = json.indexOf(0x3a) + 2; // inside the first value
    add(`invalid UTF-8 ${bad.map((b) => b.toString(16)).join(' ')} in a value`, concat(json.subarray(0, at), bad, json.subarray(at)));
    add(`invalid UTF-8 ${bad.map((b) => b.toString(16)).join(' ')} in a key`, concat(json.subarray(0, 2), bad, json.subarray(2)));
  }
  {
    const json = nextEvent().json;
    add('UTF-8 BOM', concat([0xef, 0xbb, 0xbf], bytes(json)));
    add('UTF-16LE', Uint8Array.from(Buffer.from(json, 'utf16le')));
    add('UTF-16LE with BOM', concat([0xff, 0xfe], Buffer.from(json, 'utf16le')));
    add('UTF-16BE', Uint8Array.from(Buffer.from(json, 'utf16le').swap16()));
    add('UTF-32-ish NULs', Uint8Array.from([...bytes(json)].flatMap((b) => [b, 0, 0, 0])));
    add('Latin-1', Uint8Array.from(Buffer.from(json.replace('"', '"é'), 'latin1')));
    add('NUL bytes', concat(bytes(json.slice(0, 10)), [0, 0], bytes(json.slice(10))));
    add('tombstone', null);
  }

  // JSON edge cases.
  for (const text of JSON_EDGES(nextEvent().json)) add(`JSON edge ${JSON.stringify(text.slice(0, 40))}`, text);

  // Random cases: mutated valid events and random nesting around the limit.
  const random = options.random ?? 60;
  for (let k = 0; k < random; k++) {
    const json = bytes(nextEvent().json);
    switch (k % 3) {
      case 0: {
        const b = Uint8Array.from(json);
        for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        add('mutated bytes', b);
        break;
      }
      case 1: {
        const n = 500 + Math.floor(rnd() * 30);
        add(`random nesting ${n}`, pick([deepArrays, deepMixed, (d: number) => deepObjects(d)])(n));
        break;
      }
      default: {
        const at = Math.floor(rnd() * json.length);
        const snippet = bytes(pick(['[', ']', '{', '}', '"', '\\', ',', ':', '\\u', 'null', '1e999', '"\\ud800"', '\u2028', '\u0000']));
        add('inserted snippet', concat(json.subarray(0, at), snippet, json.subarray(at)));
      }
    }
  }
  return out;
}

export { depthOf, expectedRoute } from '../support/classify.ts';
