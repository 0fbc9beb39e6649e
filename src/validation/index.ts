/**
 * Byte-level validation: accept valid JSON events without decoding them to strings or
 * `JSON.parse` — for `routeErrors({ attachDecoded: false, acceptsBytes })`.
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
