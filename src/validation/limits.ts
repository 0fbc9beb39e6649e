/**
 * Bounds on the work one record may cause, whatever its payload: how deep its JSON may nest,
 * and how long the texts that describe a rejected record may grow. A record beyond a bound is
 * a dead letter (`NESTING_TOO_DEEP`), or its description is cut short; it never costs work or
 * stack in proportion to what an attacker chose.
 */
import type * as t from 'io-ts';

/**
 * Deepest nesting of arrays and objects a JSON payload may have (`[[1]]` has depth 2). Deeper
 * valid JSON is rejected with `NESTING_TOO_DEEP` before any decoder walks it; the byte-level
 * scanner's default limit is the same.
 */
export const MAX_JSON_DEPTH = 512;

/** Longest `error_message` of a dead-letter row, in UTF-16 code units (longer ones end in `…`). */
export const MAX_ERROR_MESSAGE_CHARS = 2048;

/** Longest preview of one offending value inside a validation message. */
export const MAX_VALUE_PREVIEW_CHARS = 120;

/** At most this many validation errors are spelled out (then `… and N more`). */
export const MAX_REPORTED_ERRORS = 8;

/** Levels of arrays/objects a value preview opens (deeper ones read `[…]` / `{…}`). */
const PREVIEW_DEPTH = 2;
/** Members of one array/object a value preview shows. */
const PREVIEW_ITEMS = 6;
/** Longest key or type name in a validation path. */
const MAX_PATH_PART_CHARS = 80;
/** Path entries shown (the first two and the last ones; the middle reads `…`). */
const MAX_PATH_ENTRIES = 12;

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether the JSON document in `bytes` nests arrays/objects deeper than `limit`. One pass over
 * the bytes, no allocation, no recursion; brackets inside strings do not count. Meant for
 * documents known to be valid JSON (on other input it answers about the brackets it sees).
 *
 * Valid JSON of depth `d` takes at least `2d` bytes, so documents of up to `2 * limit` bytes
 * are answered at once, without reading them.
 */
export function jsonDepthExceeds(bytes: Uint8Array, limit = MAX_JSON_DEPTH): boolean {
  const end = bytes.length;
  if (end <= 2 * limit) return false;
  let depth = 0;
  let i = 0;
  while (i < end) {
    const c = bytes[i] as number;
    i++;
    if (c === QUOTE) {
      // Skip the string: up to the next quote not escaped by a backslash.
      while (i < end) {
        const s = bytes[i] as number;
        i++;
        if (s === QUOTE) break;
        if (s === BACKSLASH) i++;
      }
    } else if (c === OPEN || c === OPEN_BRACE) {
      depth++;
      if (depth > limit) return true;
    } else if (c === CLOSE || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/** `s` cut to at most `max` code units, ending in `…` when cut (a surrogate pair is not split). */
export function truncateText(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max <= 1) return '…'.slice(0, Math.max(0, max));
  let cut = max - 1;
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${s.slice(0, cut)}…`;
}

/**
 * A short, JSON-like preview of any value, at most `maxChars` long: strings quoted and cut,
 * arrays and objects opened two levels deep and six members wide. Never throws, never walks
 * more of the value than it shows (no `JSON.stringify` of the whole value).
 */
export function previewValue(value: unknown, maxChars = MAX_VALUE_PREVIEW_CHARS): string {
  const parts: string[] = [];
  let left = maxChars;
  const push = (s: string): void => {
    if (left <= 0) return;
    parts.push(s);
    left -= s.length;
  };
  const write = (v: unknown, depth: number): void => {
    if (left <= 0) return;
    switch (typeof v) {
      case 'string':
        push(JSON.stringify(v.length > left ? v.slice(0, left) : v));
        return;
      case 'number':
      case 'boolean':
        push(String(v));
        return;
      case 'bigint':
        push(`${v}n`);
        return;
      case 'undefined':
        push('undefined');
        return;
      case 'symbol':
        push('<symbol>');
        return;
      case 'function':
        push('<function>');
        return;
    }
    if (v === null) {
      push('null');
      return;
    }
    if (Array.isArray(v)) {
      if (v.length === 0) return push('[]');
      if (depth >= PREVIEW_DEPTH) return push('[…]');
      push('[');
      const n = Math.min(v.length, PREVIEW_ITEMS);
      for (let i = 0; i < n && left > 0; i++) {
        if (i > 0) push(',');
        write(v[i], depth + 1);
      }
      if (v.length > n) push(',…');
      push(']');
      return;
    }
    if (depth >= PREVIEW_DEPTH) return push('{…}');
    push('{');
    let i = 0;
    for (const key in v as object) {
      if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
      if (i > 0) push(',');
      if (i === PREVIEW_ITEMS || left <= 0) {
        push('…');
        break;
      }
      push(`${JSON.stringify(key.length > MAX_PATH_PART_CHARS ? key.slice(0, MAX_PATH_PART_CHARS) : key)}:`);
      write((v as Record<string, unknown>)[key], depth + 1);
      i++;
    }
    push('}');
  };
  try {
    write(value, 0);
  } catch {
    return '<unprintable value>';
  }
  return truncateText(parts.join(''), maxChars);
}

/**
 * The text of an exception, cut to `maxChars`: `name: message` for errors, a preview of
 * anything else thrown. Never throws.
 */
export function errorText(err: unknown, maxChars = MAX_ERROR_MESSAGE_CHARS): string {
  try {
    if (err instanceof Error) {
      const message = typeof err.message === 'string' ? err.message : previewValue(err.message);
      return truncateText(`${err.name}: ${message}`, maxChars);
    }
    return truncateText(typeof err === 'string' ? err : previewValue(err), maxChars);
  } catch {
    return 'unprintable exception';
  }
}

/** `key: Type/key: Type…` of a validation context, each part and the number of parts bounded. */
function contextPath(context: t.Context): string {
  const part = (e: t.ContextEntry): string =>
    `${truncateText(String(e.key), MAX_PATH_PART_CHARS)}: ${truncateText(String(e.type.name), MAX_PATH_PART_CHARS)}`;
  if (context.length <= MAX_PATH_ENTRIES) return context.map(part).join('/');
  const head = context.slice(0, 2).map(part);
  const tail = context.slice(context.length - (MAX_PATH_ENTRIES - 3)).map(part);
  return [...head, '…', ...tail].join('/');
}

/**
 * What io-ts' `PathReporter` says about validation errors — `Invalid value <v> supplied to
 * <path>` per error, joined by `; ` — with every part bounded: value previews (see
 * {@link previewValue}), path parts and their number, the number of errors spelled out
 * ({@link MAX_REPORTED_ERRORS}, then `… and N more`) and the whole text (`maxChars`). Its cost
 * does not depend on the size or depth of the rejected value.
 */
export function reportValidationErrors(errors: t.Errors, maxChars = MAX_ERROR_MESSAGE_CHARS): string {
  const lines: string[] = [];
  let length = 0;
  const n = Math.min(errors.length, MAX_REPORTED_ERRORS);
  for (let i = 0; i < n && length < maxChars; i++) {
    const e = errors[i] as t.ValidationError;
    const line =
      e.message !== undefined ? truncateText(String(e.message), MAX_VALUE_PREVIEW_CHARS * 2) : `Invalid value ${previewValue(e.value)} supplied to ${contextPath(e.context)}`;
    lines.push(line);
    length += line.length + 2;
  }
  if (errors.length > lines.length) lines.push(`… and ${errors.length - lines.length} more`);
  if (lines.length === 0) lines.push('invalid value');
  return truncateText(lines.join('; '), maxChars);
}
