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
  KIND_ARRAY,
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

/**
 * A compiled value check: the value's kind must be in `mask` (bit `1 << kind`), and then `fn`,
 * when there is one, must accept it. Most checks are a mask alone: no call per field.
 */
interface Compiled {
  readonly mask: number;
  readonly fn: FieldCheck | null;
}

const bit = (kind: JsonKind): number => 1 << kind;
/** Every kind of present value. */
const ANY_VALUE = bit(KIND_STRING) | bit(KIND_NUMBER) | bit(KIND_TRUE) | bit(KIND_FALSE) | bit(KIND_NULL) | bit(KIND_ARRAY) | bit(KIND_OBJECT);

function toFn(c: Compiled): FieldCheck {
  const { mask, fn } = c;
  if (fn === null) return (_b, kind) => ((mask >> kind) & 1) === 1;
  return (b, kind, start, end, escaped) => ((mask >> kind) & 1) === 1 && fn(b, kind, start, end, escaped);
}

function allOf(checks: readonly Compiled[]): Compiled {
  let mask = ANY_VALUE;
  const fns: FieldCheck[] = [];
  for (const c of checks) {
    mask &= c.mask;
    if (c.fn !== null) fns.push(c.fn);
  }
  if (fns.length <= 1) return { mask, fn: fns[0] ?? null };
  return {
    mask,
    fn: (b, kind, start, end, escaped) => {
      for (const f of fns) if (!f(b, kind, start, end, escaped)) return false;
      return true;
    },
  };
}

function anyOf(checks: readonly Compiled[]): Compiled {
  let mask = 0;
  for (const c of checks) mask |= c.mask;
  if (checks.every((c) => c.fn === null)) return { mask, fn: null };
  const fns = checks.map(toFn);
  return {
    mask,
    fn: (b, kind, start, end, escaped) => {
      for (const f of fns) if (f(b, kind, start, end, escaped)) return true;
      return false;
    },
  };
}

interface FieldSpec {
  required: boolean;
  checks: Compiled[];
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
  const compiled = keys.map((k) => {
    const spec = specs.get(k) as FieldSpec;
    const c = allOf(spec.checks);
    // An optional key may be absent (then its checks do not run).
    return spec.required ? c : { mask: c.mask | bit(KIND_ABSENT), fn: c.fn };
  });
  const masks = Int32Array.from(compiled, (c) => c.mask);
  const fns = compiled.map((c) => c.fn);
  return (bytes, start, end) => {
    if (scanner.scan(bytes, start, end) !== SCAN_VALID || scanner.topKind !== KIND_OBJECT) return false;
    for (let s = 0; s < n; s++) {
      const at = s * FIELD_STRIDE;
      const kind = fields[at + FIELD_KIND] as JsonKind;
      if ((((masks[s] as number) >> kind) & 1) === 0) return false;
      const fn = fns[s];
      if (fn !== null && fn !== undefined && kind !== KIND_ABSENT) {
        if (!fn(bytes, kind, fields[at + FIELD_START] as number, fields[at + FIELD_END] as number, fields[at + FIELD_ESCAPED] === 1)) return false;
      }
    }
    return true;
  };
}

/** `t.Int`: an integer literal (no fraction, no exponent) short enough to be finite. */
export const intBytes: FieldCheck = (b, kind, start, end) =>
  kind === KIND_NUMBER && end - start <= MAX_FINITE_DIGITS && isIntegerLiteral(b, start, end);

/** A check matching an unescaped string whose raw bytes equal one of `texts`. */
function stringOneOf(texts: readonly string[]): Compiled {
  // A text with a lone surrogate has no UTF-8 form; an unescaped JSON string can never equal it.
  const encoded = texts.map((s) => utf8.encode(s)).filter((e, i) => roundTrip.decode(e) === texts[i]);
  return {
    mask: bit(KIND_STRING),
    fn: (b, _kind, start, end, escaped) => {
      if (escaped) return false;
      const len = end - start - 2;
      for (const e of encoded) {
        if (e.length !== len) continue;
        let k = 0;
        while (k < len && e[k] === b[start + 1 + k]) k++;
        if (k === len) return true;
      }
      return false;
    },
  };
}

/** A check matching a number value whose JSON text is exactly `text`. */
function numberText(text: string): Compiled {
  const e = utf8.encode(text);
  return {
    mask: bit(KIND_NUMBER),
    fn: (b, _kind, start, end) => {
      if (end - start !== e.length) return false;
      for (let i = 0; i < e.length; i++) if (b[start + i] !== e[i]) return false;
      return true;
    },
  };
}

function compileValue(codec: t.Mixed, custom: ReadonlyMap<t.Mixed, FieldCheck>): Compiled | undefined {
  const own = custom.get(codec);
  if (own !== undefined) return { mask: ANY_VALUE, fn: own };
  if (codec === (t.Int as t.Mixed)) return { mask: bit(KIND_NUMBER), fn: intBytes };
  if (codec instanceof t.StringType) return { mask: bit(KIND_STRING), fn: null };
  if (codec instanceof t.NumberType) return { mask: bit(KIND_NUMBER), fn: null };
  if (codec instanceof t.BooleanType) return { mask: bit(KIND_TRUE) | bit(KIND_FALSE), fn: null };
  if (codec instanceof t.NullType) return { mask: bit(KIND_NULL), fn: null };
  if (codec instanceof t.KeyofType) {
    return stringOneOf(Object.keys((codec as t.KeyofType<Record<string, unknown>>).keys));
  }
  if (codec instanceof t.LiteralType) {
    const value = (codec as t.LiteralType<string | number | boolean>).value;
    if (typeof value === 'string') return stringOneOf([value]);
    if (typeof value === 'boolean') return { mask: bit(value ? KIND_TRUE : KIND_FALSE), fn: null };
    // String(n) of a finite number is valid JSON that parses back to n (-0 prints as 0, equal under ===).
    return Number.isFinite(value) ? numberText(String(value)) : { mask: 0, fn: null };
  }
  if (codec instanceof t.UnionType) {
    const members: Compiled[] = [];
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
    return { mask: bit(KIND_OBJECT), fn: (b, _kind, start, end) => nested(b, start, end) };
  }
  return undefined;
}
