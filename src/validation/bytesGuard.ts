/**
 * Byte-level accept guards compiled from io-ts codecs: a fast path that says "certainly valid"
 * for a JSON record without decoding it to a string or parsing it.
 */
import * as t from 'io-ts';
import {
  FIELD_END,
  FIELD_ESCAPED,
  FIELD_KIND,
  FIELD_START,
  FIELD_STRIDE,
  JsonBytesScanner,
  KIND_ABSENT,
  KIND_FALSE,
  KIND_NUMBER,
  KIND_OBJECT,
  KIND_STRING,
  KIND_TRUE,
  KIND_NULL,
  SCAN_VALID,
  isIntegerLiteral,
} from './jsonBytes.ts';
import type { JsonKind } from './jsonBytes.ts';

/**
 * A byte-level test of one JSON value that the scanner already found well-formed (valid UTF-8,
 * valid grammar). `bytes[start, end)` is the value's JSON text — a string with its quotes;
 * `escaped` tells whether a string holds a backslash escape (then its raw bytes are not its
 * text). Must return `true` only when the codec's `is` would certainly accept the value
 * `JSON.parse` makes of that text; `false` when unsure.
 */
export type FieldCheck = (bytes: Uint8Array, kind: JsonKind, start: number, end: number, escaped: boolean) => boolean;

/** A compiled guard: `true` only when the slow path (UTF-8 decode, `JSON.parse`, `codec.is`) would accept. */
export type BytesGuard = (bytes: Uint8Array) => boolean;

/** Largest count of integer digits for which a decimal without exponent is surely finite. */
const MAX_FINITE_DIGITS = 300;

const utf8 = new TextEncoder();
const roundTrip = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Compiles a byte-level accept guard for a codec of JSON objects.
 *
 * Understood: `t.intersection`, `t.type` (required keys), `t.partial` (optional keys),
 * `t.union` of understood members (also at the top level), `t.string`, `t.number`,
 * `t.boolean`, `t.null`, `t.keyof` and string `t.literal` (raw bytes compared with the
 * literals; escaped strings → false), number and boolean `t.literal`, `t.Int` (integer literals
 * without fraction or exponent), nested object codecs, and any codec found in `custom` (brands
 * and custom types whose predicates cannot be read). Anything else makes the whole codec
 * unsupported.
 *
 * The guard returns `true` only when the bytes are valid UTF-8, `JSON.parse` of their text
 * gives a non-null, non-array object and `codec.is` accepts it; `false` when that is not
 * certain (a registered key twice, an escaped key, unusual number forms …) — the caller then
 * runs the slow path, which decides and explains.
 *
 * ## Example
 * ```ts
 * const guard = compileBytesGuard(GpsPingEvent, new Map([[LatLon, latLonBytes]]));
 * routeErrors(GpsPingEvent, dlq, { attachDecoded: false, acceptsBytes: guard });
 * ```
 *
 * @param codec io-ts codec of the record's JSON object.
 * @param custom Byte checks for codecs the compiler cannot look into, by codec identity.
 * @return The guard, or `undefined` when the codec (or part of it) is not understood.
 */
export function compileBytesGuard(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck> = new Map()): BytesGuard | undefined {
  const objects = topLevelObjects(codec, custom);
  if (objects === undefined) return undefined;
  if (objects.length === 1) {
    const only = objects[0] as ObjectGuard;
    return (bytes) => only(bytes, 0, bytes.length);
  }
  return (bytes) => {
    for (const g of objects) if (g(bytes, 0, bytes.length)) return true;
    return false;
  };
}

/** Tests `bytes[start, end)` as a whole JSON document that must be an accepted object. */
type ObjectGuard = (bytes: Uint8Array, start: number, end: number) => boolean;

function topLevelObjects(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck>): ObjectGuard[] | undefined {
  if (codec instanceof t.UnionType) {
    const out: ObjectGuard[] = [];
    for (const member of (codec as t.UnionType<t.Mixed[]>).types) {
      const gs = topLevelObjects(member, custom);
      if (gs === undefined) return undefined;
      out.push(...gs);
    }
    return out.length > 0 ? out : undefined;
  }
  const g = compileObject(codec, custom);
  return g === undefined ? undefined : [g];
}

interface FieldSpec {
  required: boolean;
  checks: FieldCheck[];
}

/** Collects the keys of an object codec (type / partial / intersection of them). */
function collectFields(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck>, into: Map<string, FieldSpec>): boolean {
  if (codec instanceof t.IntersectionType) {
    for (const member of (codec as t.IntersectionType<t.Mixed[]>).types) {
      if (!collectFields(member, custom, into)) return false;
    }
    return true;
  }
  const required = codec instanceof t.InterfaceType;
  if (!required && !(codec instanceof t.PartialType)) return false;
  const props = (codec as t.InterfaceType<t.Props> | t.PartialType<t.Props>).props;
  for (const key of Object.keys(props)) {
    // A missing key would be read from Object.prototype by `codec.is`: not worth modelling.
    if (key in Object.prototype) return false;
    const check = compileValue(props[key] as t.Mixed, custom);
    if (check === undefined) return false;
    let spec = into.get(key);
    if (spec === undefined) {
      spec = { required: false, checks: [] };
      into.set(key, spec);
    }
    spec.required ||= required;
    spec.checks.push(check);
  }
  return true;
}

function compileObject(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck>): ObjectGuard | undefined {
  const specs = new Map<string, FieldSpec>();
  if (!collectFields(codec, custom, specs)) return undefined;
  const keys = [...specs.keys()];
  const scanner = new JsonBytesScanner(keys);
  const fields = scanner.fields;
  const n = keys.length;
  const required = Uint8Array.from(keys, (k) => (specs.get(k)?.required === true ? 1 : 0));
  const checks = keys.map((k) => allOf(specs.get(k)?.checks ?? []));
  return (bytes, start, end) => {
    if (scanner.scan(bytes, start, end) !== SCAN_VALID || scanner.topKind !== KIND_OBJECT) return false;
    for (let s = 0; s < n; s++) {
      const at = s * FIELD_STRIDE;
      const kind = fields[at + FIELD_KIND] as JsonKind;
      if (kind === KIND_ABSENT) {
        if (required[s] === 1) return false;
        continue;
      }
      const check = checks[s] as FieldCheck;
      if (!check(bytes, kind, fields[at + FIELD_START] as number, fields[at + FIELD_END] as number, fields[at + FIELD_ESCAPED] === 1)) {
        return false;
      }
    }
    return true;
  };
}

function allOf(checks: readonly FieldCheck[]): FieldCheck {
  if (checks.length === 1) return checks[0] as FieldCheck;
  return (b, kind, start, end, escaped) => {
    for (const c of checks) if (!c(b, kind, start, end, escaped)) return false;
    return true;
  };
}

function anyOf(checks: readonly FieldCheck[]): FieldCheck {
  if (checks.length === 1) return checks[0] as FieldCheck;
  return (b, kind, start, end, escaped) => {
    for (const c of checks) if (c(b, kind, start, end, escaped)) return true;
    return false;
  };
}

const isString: FieldCheck = (_b, kind) => kind === KIND_STRING;
const isNumber: FieldCheck = (_b, kind) => kind === KIND_NUMBER;
const isBoolean: FieldCheck = (_b, kind) => kind === KIND_TRUE || kind === KIND_FALSE;
const isNull: FieldCheck = (_b, kind) => kind === KIND_NULL;

/**
 * `t.Int`: an integer literal (no fraction, no exponent) short enough to be finite. JSON.parse
 * turns such a literal into an integral double.
 */
export const intBytes: FieldCheck = (b, kind, start, end) =>
  kind === KIND_NUMBER && end - start <= MAX_FINITE_DIGITS && isIntegerLiteral(b, start, end);

/** A check matching an unescaped string whose raw bytes equal one of `texts`. */
function stringOneOf(texts: readonly string[]): FieldCheck | undefined {
  // A text with a lone surrogate has no UTF-8 form; an unescaped JSON string can never equal it.
  const encoded = texts.map((s) => utf8.encode(s)).filter((e, i) => roundTrip.decode(e) === texts[i]);
  return (b, kind, start, end, escaped) => {
    if (kind !== KIND_STRING || escaped) return false;
    const len = end - start - 2;
    for (const e of encoded) {
      if (e.length !== len) continue;
      let k = 0;
      while (k < len && e[k] === b[start + 1 + k]) k++;
      if (k === len) return true;
    }
    return false;
  };
}

/** A check matching a number value whose JSON text is exactly `text`. */
function rawEquals(kind: JsonKind, text: string): FieldCheck {
  const e = utf8.encode(text);
  return (b, k, start, end) => {
    if (k !== kind || end - start !== e.length) return false;
    for (let i = 0; i < e.length; i++) if (b[start + i] !== e[i]) return false;
    return true;
  };
}

const NEVER: FieldCheck = () => false;

function compileValue(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck>): FieldCheck | undefined {
  const own = custom.get(codec);
  if (own !== undefined) return own;
  if (codec === (t.Int as t.Mixed)) return intBytes;
  if (codec instanceof t.StringType) return isString;
  if (codec instanceof t.NumberType) return isNumber;
  if (codec instanceof t.BooleanType) return isBoolean;
  if (codec instanceof t.NullType) return isNull;
  if (codec instanceof t.KeyofType) {
    return stringOneOf(Object.keys((codec as t.KeyofType<Record<string, unknown>>).keys));
  }
  if (codec instanceof t.LiteralType) {
    const value = (codec as t.LiteralType<string | number | boolean>).value;
    if (typeof value === 'string') return stringOneOf([value]);
    if (typeof value === 'boolean') return value ? (_b, kind) => kind === KIND_TRUE : (_b, kind) => kind === KIND_FALSE;
    // String(n) of a finite number is valid JSON that parses back to n (-0 prints as 0, equal under ===).
    return Number.isFinite(value) ? rawEquals(KIND_NUMBER, String(value)) : NEVER;
  }
  if (codec instanceof t.UnionType) {
    const members: FieldCheck[] = [];
    for (const m of (codec as t.UnionType<t.Mixed[]>).types) {
      const c = compileValue(m, custom);
      if (c === undefined) return undefined;
      members.push(c);
    }
    return members.length > 0 ? anyOf(members) : undefined;
  }
  if (codec instanceof t.InterfaceType || codec instanceof t.PartialType || codec instanceof t.IntersectionType) {
    const nested = compileObject(codec, custom);
    if (nested === undefined) return undefined;
    return (b, kind, start, end) => kind === KIND_OBJECT && nested(b, start, end);
  }
  return undefined;
}
