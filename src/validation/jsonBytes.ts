/**
 * A zero-allocation scanner of one JSON document held in a `Uint8Array`.
 *
 * It checks the whole JSON grammar (RFC 8259, exactly what `JSON.parse` accepts) and that every
 * byte sequence is well-formed UTF-8 (what a `TextDecoder` with `fatal: true` accepts: no
 * overlong forms, no UTF-8-encoded surrogates, nothing above U+10FFFF), without creating
 * strings or any other per-document object. Plain ASCII inside strings is checked four bytes
 * at a time. For the top-level object it reports, for each key registered up front, the kind and
 * byte range of its value, into one reused `Int32Array`.
 *
 * A byte-order mark is not JSON whitespace: the scanner rejects it, as `JSON.parse` does on
 * text decoded with `ignoreBOM: true` (what `routeErrors` does).
 */

import { MAX_JSON_DEPTH } from './limits.ts';

/** Outcome of {@link JsonBytesScanner.scan}. */
export type ScanResult = typeof SCAN_INVALID | typeof SCAN_VALID | typeof SCAN_UNKNOWN;
/** Not valid UTF-8 JSON: `TextDecoder(fatal)` or `JSON.parse` would throw. */
export const SCAN_INVALID = 0;
/** Valid UTF-8 JSON; `topKind` and the registered fields are reported. */
export const SCAN_VALID = 1;
/**
 * The scanner cannot tell (nesting deeper than its limit, a top-level key with a backslash
 * escape, a registered key present twice): ask `JSON.parse`.
 */
export const SCAN_UNKNOWN = 2;

/** Kind of a JSON value, as reported in the field slots and `topKind`. */
export type JsonKind =
  | typeof KIND_ABSENT
  | typeof KIND_STRING
  | typeof KIND_NUMBER
  | typeof KIND_TRUE
  | typeof KIND_FALSE
  | typeof KIND_NULL
  | typeof KIND_ARRAY
  | typeof KIND_OBJECT;
/** The key did not occur in the top-level object (or the document is not an object). */
export const KIND_ABSENT = 0;
export const KIND_STRING = 1;
export const KIND_NUMBER = 2;
export const KIND_TRUE = 3;
export const KIND_FALSE = 4;
export const KIND_NULL = 5;
export const KIND_ARRAY = 6;
export const KIND_OBJECT = 7;

/** Int32 slots per registered field in {@link JsonBytesScanner.fields}. */
export const FIELD_STRIDE = 4;
/** Offsets within a field's slots: kind, value start, value end (exclusive), escaped flag. */
export const FIELD_KIND = 0;
export const FIELD_START = 1;
export const FIELD_END = 2;
/** 1 when a string value contains a backslash escape (its raw bytes are not its text). */
export const FIELD_ESCAPED = 3;

/**
 * Nesting deeper than this answers `SCAN_UNKNOWN`: `MAX_JSON_DEPTH` (512), the depth beyond
 * which `routeErrors` rejects a document (`NESTING_TOO_DEEP`). The scanner itself never
 * recurses; its stack is one byte per level.
 */
export const DEFAULT_MAX_DEPTH = MAX_JSON_DEPTH;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LOWER_E = 0x65;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

const IN_OBJECT = 1;
const IN_ARRAY = 2;

const utf8 = new TextEncoder();

/** 1 for bytes that are hex digits. */
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
/** 1 for the byte after a backslash that makes a one-character escape. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** 1 for the bytes a string can hold as they are: printable ASCII except `"` and `\`. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = c === QUOTE || c === BACKSLASH ? 0 : 1;

/** O(1) key hash: length, first, middle and last bytes (the table resolves collisions by comparing). */
function hashKey(b: Uint8Array, start: number, end: number): number {
  const len = end - start;
  return len === 0 ? 0 : len * 131 + (b[start] as number) * 31 + (b[end - 1] as number) * 7 + (len > 2 ? (b[start + (len >> 1)] as number) : 0);
}

/**
 * Scans JSON documents; one instance per set of registered keys, reused for every document.
 * Not reentrant: read `fields` / `topKind` before the next `scan` on the same instance.
 *
 * ## Example
 * ```ts
 * const scanner = new JsonBytesScanner(['event_id', 'accuracy']);
 * const slot = scanner.slotOf('accuracy');
 * if (scanner.scan(bytes) === SCAN_VALID && scanner.topKind === KIND_OBJECT) {
 *   const f = scanner.fields, at = slot * FIELD_STRIDE;
 *   if (f[at + FIELD_KIND] === KIND_NUMBER) { … bytes[f[at + FIELD_START]] … }
 * }
 * ```
 */
export class JsonBytesScanner {
  /** The registered keys; a key's index is its slot. */
  readonly keys: readonly string[];
  /**
   * `FIELD_STRIDE` slots per registered key: kind (`KIND_ABSENT` when missing), value start
   * and end byte (the value's JSON text; strings include their quotes) and the escaped flag.
   * Valid after a scan that returned `SCAN_VALID`.
   */
  readonly fields: Int32Array;
  /** Kind of the document's top-level value after a `SCAN_VALID` scan. */
  topKind: JsonKind = KIND_ABSENT;

  private readonly maxDepth: number;
  private readonly stack: Uint8Array;
  private readonly keyBytes: Uint8Array;
  private readonly keyStart: Int32Array;
  private readonly keyEnd: Int32Array;
  /** Open-addressing table: hash & mask → slot + 1 (0 = empty). */
  private readonly table: Int32Array;
  private readonly mask: number;
  /** Whether the last string scanned held a backslash escape. */
  private escaped = 0;
  /**
   * A view of the scanned bytes' ArrayBuffer for word reads; kept while documents come from the
   * same buffer (Node's Buffer pool, a Kafka fetch response), so that a scan allocates nothing.
   * Only a document in another ArrayBuffer costs one `DataView`; the last buffer stays referenced.
   */
  private view: DataView = new DataView(new ArrayBuffer(0));
  private viewBuffer: ArrayBufferLike | null = null;
  /** `byteOffset` of the scanned bytes in `view`. */
  private base = 0;
  /** Per key of 4+ bytes: its 4-byte words (little-endian), the last one ending at its end. */
  private readonly keyWords: Int32Array;
  private readonly keyWordStart: Int32Array;

  /**
   * @param keys Top-level keys to report (distinct).
   * @param maxDepth Nesting limit; deeper documents answer `SCAN_UNKNOWN`.
   */
  constructor(keys: readonly string[] = [], maxDepth = DEFAULT_MAX_DEPTH) {
    if (new Set(keys).size !== keys.length) throw new Error('JsonBytesScanner: duplicate keys');
    if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new RangeError('JsonBytesScanner: maxDepth must be a positive integer');
    this.keys = [...keys];
    this.maxDepth = maxDepth;
    this.stack = new Uint8Array(maxDepth);
    this.fields = new Int32Array(Math.max(1, keys.length) * FIELD_STRIDE);
    const encoded = keys.map((k) => utf8.encode(k));
    this.keyBytes = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
    this.keyStart = new Int32Array(keys.length);
    this.keyEnd = new Int32Array(keys.length);
    let size = 16;
    while (size < keys.length * 8) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    let at = 0;
    const words: number[] = [];
    this.keyWordStart = new Int32Array(keys.length);
    encoded.forEach((e, slot) => {
      this.keyWordStart[slot] = words.length;
      if (e.length >= 4) {
        const v = new DataView(e.buffer, e.byteOffset, e.byteLength);
        let k = 0;
        for (; k + 4 < e.length; k += 4) words.push(v.getInt32(k, true));
        words.push(v.getInt32(e.length - 4, true));
      }
      this.keyBytes.set(e, at);
      this.keyStart[slot] = at;
      this.keyEnd[slot] = at + e.length;
      at += e.length;
      let h = hashKey(e, 0, e.length) & this.mask;
      while (this.table[h] !== 0) h = (h + 1) & this.mask;
      this.table[h] = slot + 1;
    });
    this.keyWords = Int32Array.from(words);
  }

  /** The slot of a registered key, or -1. */
  slotOf(key: string): number {
    return this.keys.indexOf(key);
  }

  /**
   * Scans `bytes[start, end)` as one JSON document.
   *
   * @return `SCAN_VALID`, `SCAN_INVALID` (certain) or `SCAN_UNKNOWN`.
   */
  scan(bytes: Uint8Array, start = 0, end = bytes.length): ScanResult {
    const b = bytes;
    if (end > b.length) end = b.length;
    if (start < 0) start = 0;
    const fields = this.fields;
    if (b.buffer !== this.viewBuffer) {
      this.viewBuffer = b.buffer;
      this.view = new DataView(b.buffer);
    }
    this.base = b.byteOffset;
    const nKeys = this.keys.length;
    for (let s = 0; s < nKeys; s++) fields[s * FIELD_STRIDE] = KIND_ABSENT;
    this.topKind = KIND_ABSENT;
    const stack = this.stack;
    const maxDepth = this.maxDepth;
    let depth = 0;
    /** Slot (× FIELD_STRIDE) of the registered top-level key whose value is being scanned, or -1. */
    let pending = -1;
    /** The next token is an object member's key. */
    let key = false;
    let i = skipWs(b, start, end);
    if (i >= end) return SCAN_INVALID;
    this.topKind = kindOf(b[i] as number);

    for (;;) {
      if (key) {
        // `"key" :` then the value.
        key = false;
        if (i >= end || b[i] !== QUOTE) return SCAN_INVALID;
        const keyStart = i + 1;
        i = this.scanString(b, keyStart, end);
        if (i < 0) return SCAN_INVALID;
        const keyEnd = i - 1;
        if (i < end && b[i] === COLON) {
          i++;
        } else {
          i = skipWs(b, i, end);
          if (i >= end || b[i] !== COLON) return SCAN_INVALID;
          i++;
        }
        if (i < end && (b[i] as number) <= SPACE) i = skipWs(b, i, end);
        if (depth === 1 && nKeys > 0) {
          if (this.escaped !== 0) return SCAN_UNKNOWN;
          const slot = this.lookup(b, keyStart, keyEnd);
          if (slot >= 0) {
            const at = slot * FIELD_STRIDE;
            if (fields[at + FIELD_KIND] !== KIND_ABSENT) return SCAN_UNKNOWN;
            // An invalid value byte is caught when the value itself is scanned.
            fields[at + FIELD_KIND] = i < end ? kindOf(b[i] as number) : KIND_NUMBER;
            fields[at + FIELD_START] = i;
            pending = at;
          }
        }
      }

      // One value starts at i (whitespace skipped). Containers push and continue with their
      // first member; scalars fall through to the "after a value" loop.
      if (i >= end) return SCAN_INVALID;
      const c = b[i] as number;
      if (c === QUOTE) {
        i = this.scanString(b, i + 1, end);
        if (i < 0) return SCAN_INVALID;
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        i = scanNumber(b, i, end);
        if (i < 0) return SCAN_INVALID;
      } else if (c === LBRACE || c === LBRACKET) {
        if (depth >= maxDepth) return SCAN_UNKNOWN;
        const inObject = c === LBRACE;
        stack[depth++] = inObject ? IN_OBJECT : IN_ARRAY;
        i = skipWs(b, i + 1, end);
        if (i < end && b[i] === (inObject ? RBRACE : RBRACKET)) {
          i++;
          depth--;
        } else {
          // An object continues with its first key, an array with its first value.
          key = inObject;
          continue;
        }
      } else if (c === 0x6e) {
        // null
        if (i + 4 > end || b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c) return SCAN_INVALID;
        i += 4;
      } else if (c === 0x74) {
        // true
        if (i + 4 > end || b[i + 1] !== 0x72 || b[i + 2] !== 0x75 || b[i + 3] !== 0x65) return SCAN_INVALID;
        i += 4;
      } else if (c === 0x66) {
        // false
        if (i + 5 > end || b[i + 1] !== 0x61 || b[i + 2] !== 0x6c || b[i + 3] !== 0x73 || b[i + 4] !== 0x65) return SCAN_INVALID;
        i += 5;
      } else {
        return SCAN_INVALID;
      }

      // After a complete value: close containers, or move on to the next member.
      for (;;) {
        if (depth === 0) return skipWs(b, i, end) === end ? SCAN_VALID : SCAN_INVALID;
        if (pending >= 0 && depth === 1) {
          fields[pending + FIELD_END] = i;
          fields[pending + FIELD_ESCAPED] = fields[pending + FIELD_KIND] === KIND_STRING ? this.escaped : 0;
          pending = -1;
        }
        if (i >= end) return SCAN_INVALID;
        let d = b[i] as number;
        if (d <= SPACE) {
          i = skipWs(b, i, end);
          if (i >= end) return SCAN_INVALID;
          d = b[i] as number;
        }
        const inObject = stack[depth - 1] === IN_OBJECT;
        if (d === COMMA) {
          i++;
          if (i < end && (b[i] as number) <= SPACE) i = skipWs(b, i, end);
          key = inObject;
          break;
        }
        if (d === (inObject ? RBRACE : RBRACKET)) {
          i++;
          depth--;
          continue;
        }
        return SCAN_INVALID;
      }
    }
  }

  /** Slot of the key whose raw bytes are `b[start, end)`, or -1. */
  private lookup(b: Uint8Array, start: number, end: number): number {
    const len = end - start;
    const keyBytes = this.keyBytes;
    let h = hashKey(b, start, end) & this.mask;
    for (;;) {
      const entry = this.table[h] as number;
      if (entry === 0) return -1;
      const slot = entry - 1;
      const ks = this.keyStart[slot] as number;
      if ((this.keyEnd[slot] as number) - ks === len) {
        if (len >= 4) {
          // Word compares against the key's precomputed words, the last one overlapping.
          const view = this.view;
          const at = this.base + start;
          const keyWords = this.keyWords;
          let w = this.keyWordStart[slot] as number;
          let k = 0;
          while (k + 4 < len && keyWords[w] === view.getInt32(at + k, true)) {
            k += 4;
            w++;
          }
          if (k + 4 >= len && keyWords[w] === view.getInt32(at + len - 4, true)) return slot;
        } else {
          let k = 0;
          while (k < len && keyBytes[ks + k] === b[start + k]) k++;
          if (k === len) return slot;
        }
      }
      h = (h + 1) & this.mask;
    }
  }

  /**
   * Scans a string's content from just after its opening quote; returns the index after the
   * closing quote or -1. Sets `escaped`. The common case — plain printable ASCII up to the
   * quote — stays in this small function (the compiler inlines it); the rest goes to
   * `scanStringRest`.
   */
  private scanString(b: Uint8Array, i: number, end: number): number {
    i = this.skipPlainWords(i, end);
    while (i < end && PLAIN[b[i] as number] === 1) i++;
    if (i < end && b[i] === QUOTE) {
      this.escaped = 0;
      return i + 1;
    }
    return this.scanStringRest(b, i, end);
  }

  /** Skips runs of plain ASCII four bytes per word: no byte ≥ 0x80, < 0x20, '"' or '\\'. */
  private skipPlainWords(i: number, end: number): number {
    const view = this.view;
    const base = this.base;
    while (i + 4 <= end) {
      const x = view.getInt32(base + i, true);
      const q = x ^ 0x22222222;
      const s = x ^ 0x5c5c5c5c;
      if ((x | (((x - 0x20202020) | 0) & ~x) | (((q - 0x01010101) | 0) & ~q) | (((s - 0x01010101) | 0) & ~s)) & 0x80808080) break;
      i += 4;
    }
    return i;
  }

  /** `scanString` from the first byte that is not plain ASCII. */
  private scanStringRest(b: Uint8Array, i: number, end: number): number {
    let escaped = 0;
    while (i < end) {
      i = this.skipPlainWords(i, end);
      if (i >= end) break;
      const c = b[i] as number;
      if (PLAIN[c] === 1) {
        i++;
        continue;
      }
      if (c < 0x80) {
        if (c === QUOTE) {
          this.escaped = escaped;
          return i + 1;
        }
        if (c < 0x20) return -1;
        if (c === BACKSLASH) {
          if (i + 1 >= end) return -1;
          const e = b[i + 1] as number;
          escaped = 1;
          if (e === 0x75) {
            // \uXXXX
            if (i + 6 > end) return -1;
            if (HEX[b[i + 2] as number] === 0 || HEX[b[i + 3] as number] === 0 || HEX[b[i + 4] as number] === 0 || HEX[b[i + 5] as number] === 0) {
              return -1;
            }
            i += 6;
          } else if (SIMPLE_ESCAPE[e] === 1) {
            i += 2;
          } else {
            return -1;
          }
          continue;
        }
        i++;
        continue;
      }
      // Multi-byte UTF-8 sequence (WHATWG / Unicode Table 3-7 well-formed ranges).
      if (c < 0xc2) return -1;
      if (c < 0xe0) {
        if (i + 1 >= end || ((b[i + 1] as number) & 0xc0) !== 0x80) return -1;
        i += 2;
      } else if (c < 0xf0) {
        if (i + 2 >= end) return -1;
        const c1 = b[i + 1] as number;
        if (c === 0xe0 ? c1 < 0xa0 || c1 > 0xbf : c === 0xed ? c1 < 0x80 || c1 > 0x9f : (c1 & 0xc0) !== 0x80) return -1;
        if (((b[i + 2] as number) & 0xc0) !== 0x80) return -1;
        i += 3;
      } else if (c < 0xf5) {
        if (i + 3 >= end) return -1;
        const c1 = b[i + 1] as number;
        if (c === 0xf0 ? c1 < 0x90 || c1 > 0xbf : c === 0xf4 ? c1 < 0x80 || c1 > 0x8f : (c1 & 0xc0) !== 0x80) return -1;
        if (((b[i + 2] as number) & 0xc0) !== 0x80 || ((b[i + 3] as number) & 0xc0) !== 0x80) return -1;
        i += 4;
      } else {
        return -1;
      }
    }
    return -1;
  }
}

function kindOf(c: number): JsonKind {
  switch (c) {
    case QUOTE:
      return KIND_STRING;
    case LBRACE:
      return KIND_OBJECT;
    case LBRACKET:
      return KIND_ARRAY;
    case 0x74:
      return KIND_TRUE;
    case 0x66:
      return KIND_FALSE;
    case 0x6e:
      return KIND_NULL;
    default:
      return KIND_NUMBER;
  }
}

function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i] as number;
    if (c > SPACE || (c !== SPACE && c !== LF && c !== CR && c !== TAB)) return i;
    i++;
  }
  return i;
}

/** Scans a JSON number at i; returns the index after it or -1. */
export function scanNumber(b: Uint8Array, i: number, end: number): number {
  if (i < end && b[i] === MINUS) i++;
  if (i >= end) return -1;
  let c = b[i] as number;
  if (c === ZERO) {
    i++;
  } else if (c > ZERO && c <= NINE) {
    i++;
    while (i < end && (c = b[i] as number) >= ZERO && c <= NINE) i++;
  } else {
    return -1;
  }
  if (i < end && b[i] === DOT) {
    i++;
    const digits = i;
    while (i < end && (c = b[i] as number) >= ZERO && c <= NINE) i++;
    if (i === digits) return -1;
  }
  if (i < end && (b[i] === LOWER_E || b[i] === UPPER_E)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    const digits = i;
    while (i < end && (c = b[i] as number) >= ZERO && c <= NINE) i++;
    if (i === digits) return -1;
  }
  return i;
}

/** Whether `b[start, end)` (a scanned JSON number) is an integer literal: no fraction, no exponent. */
export function isIntegerLiteral(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c === DOT || c === LOWER_E || c === UPPER_E) return false;
  }
  return true;
}
