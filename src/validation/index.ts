/**
 * ISO-8601 timestamps as producers send them (`T` or a space, with or without a zone and its
 * colon, up to nanoseconds) parsed to epoch µs or ms, and their io-ts codec.
 *
 * Byte-level validation: accept valid JSON events without decoding them to strings or
 * `JSON.parse` — for `routeErrors({ attachDecoded: false, acceptsBytes })`; and the bounds on
 * the work one record may cause (nesting depth, length of error texts).
 */
export { compileBytesGuard, intBytes } from './bytesGuard.ts';
export type { BytesGuard, FieldCheck } from './bytesGuard.ts';
export {
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
} from './jsonBytes.ts';
export type { JsonKind, ScanResult } from './jsonBytes.ts';
export {
  MAX_ERROR_MESSAGE_CHARS,
  MAX_JSON_DEPTH,
  MAX_REPORTED_ERRORS,
  MAX_VALUE_PREVIEW_CHARS,
  errorText,
  jsonDepthExceeds,
  previewValue,
  reportValidationErrors,
  truncateText,
} from './limits.ts';
export { IsoTimestamp, isIsoTimestamp, parseIsoTimestampMicros, parseIsoTimestampMs } from './isoTimestamp.ts';
export type { IsoTimestampBrand } from './isoTimestamp.ts';
