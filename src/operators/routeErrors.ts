import { isUtf8 } from 'node:buffer';
import { Observable } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type * as t from 'io-ts';
import { RxlakeError } from '../core/errors.ts';
import type { DeadLetterErrorType, DeadLetterRow, EnrichedRecord, RecordRef } from '../types.ts';
import { MAX_ERROR_MESSAGE_CHARS, MAX_JSON_DEPTH, errorText, jsonDepthExceeds, reportValidationErrors, truncateText } from '../validation/limits.ts';

export interface RouteErrorsOptions {
  /** Reject values that are not valid JSON (`JSON_PARSE_ERROR`); default true. */
  readonly validateJson?: boolean;
  /** Decode the parsed JSON with the codec (`SCHEMA_VALIDATION_ERROR`); default true. */
  readonly validateSchema?: boolean;
  /**
   * With JSON and schema validation both off: still reject values that are not valid UTF-8
   * (`ENCODING_ERROR`) — their bytes would land in string columns that readers refuse (DuckDB,
   * Python). Default true; `false` passes any bytes (binary payloads).
   */
  readonly validateUtf8?: boolean;
  /** Reject values longer than this many bytes (`OVERSIZED_PAYLOAD`). */
  readonly maxPayloadBytes?: number;
  /**
   * Reject valid JSON that nests arrays/objects deeper than this (`NESTING_TOO_DEEP`), before
   * any decoder walks it. Default `MAX_JSON_DEPTH` (512).
   */
  readonly maxDepth?: number;
  /**
   * A record whose handling throws (a codec, `accepts`, `acceptsBytes` …) is dead-lettered as
   * `PROCESSING_ERROR` and the stream goes on. When this many records **in a row** throw, the
   * failure is not about records but hits every one of them (a bug, a broken codec): the
   * stream errors with a `SystematicProcessingError` instead of dead-lettering everything.
   * Default 1000; `Infinity` never stops.
   */
  readonly maxConsecutiveProcessingErrors?: number;
  /** Tombstones (null values): dead-letter them (`NULL_VALUE`, default) or pass them on. */
  readonly nullValue?: 'dead-letter' | 'pass';
  /** `false`: fail loudly — error the stream with a `DeadLetterError` instead of dead-lettering. */
  readonly enabled?: boolean;
  /**
   * `false`: pass valid records on as they came (same object, no `decoded` field) — for sinks
   * that store the raw bytes, this saves a copy per record. Default true.
   */
  readonly attachDecoded?: boolean;
  /**
   * A cheap test run before `codec.decode`: a value it accepts passes without decoding (no
   * allocations); a value it rejects is decoded to tell why. Only for codecs whose `decode`
   * returns its input unchanged — e.g. `codec.is` of a non-transforming io-ts type. The bronze
   * pipeline passes its codecs' `is`; a test pins that `is` and `decode` agree on its events.
   */
  readonly accepts?: (value: unknown) => boolean;
  /**
   * A cheaper test run on the raw value bytes, before any decoding: a value it accepts passes
   * at once (no UTF-8 decode, no `JSON.parse`); a value it rejects takes the usual path, which
   * decides and explains. Consulted only with `attachDecoded: false` (nothing decoded is passed
   * on then) and when JSON or schema validation is on. It must return `true` only for bytes the
   * usual path would certainly accept — valid UTF-8, valid JSON no deeper than `maxDepth`, and
   * accepted by the codec — and, like `accepts`, only stands in for codecs whose `decode`
   * returns its input unchanged. See `compileBytesGuard` (its scanner stops at
   * `MAX_JSON_DEPTH`); the bronze pipeline's guards are `bronzeBytesGuards`.
   */
  readonly acceptsBytes?: (value: Uint8Array) => boolean;
}

/** A valid record with its decoded value (`undefined` when nothing was decoded). */
export type Routed<T, A> = T & { readonly decoded: A | undefined };

/**
 * Thrown (as the stream's error) by `routeErrors({ enabled: false })` for the first bad record:
 * code `DEAD_LETTER`, not retriable (the same record fails again).
 */
export class DeadLetterError extends RxlakeError {
  readonly row: DeadLetterRow;
  constructor(row: DeadLetterRow) {
    super(`${row.error_type} at ${row.kafka_topic}/${row.partition}@${row.offset}: ${row.error_message}`, { code: 'DEAD_LETTER' });
    this.name = 'DeadLetterError';
    this.row = row;
  }
}

/**
 * The stream's error when `maxConsecutiveProcessingErrors` records in a row threw while being
 * handled: the failure hits every record (a bug or a broken codec), so routing them all to the
 * dead-letter table would only hide it. `row` is the last record's dead-letter row (not sent).
 * Code `SYSTEMATIC_PROCESSING_ERROR`, not retriable.
 */
export class SystematicProcessingError extends RxlakeError {
  readonly row: DeadLetterRow;
  readonly count: number;
  constructor(row: DeadLetterRow, count: number) {
    super(
      `${count} records in a row failed while being handled, the last at ${row.kafka_topic}/${row.partition}@${row.offset}: ${row.error_message}. ` +
        'A failure that hits every record is not about one record (a bug or a broken codec): stopping instead of dead-lettering everything. ' +
        `The ${count - 1} before it are in the dead-letter table as PROCESSING_ERROR.`,
      { code: 'SYSTEMATIC_PROCESSING_ERROR' },
    );
    this.name = 'SystematicProcessingError';
    this.row = row;
    this.count = count;
  }
}

/**
 * Splits a stream of records into valid ones (passed on, with their decoded value) and bad
 * ones (sent to `deadLetters` as `DeadLetterRow`s with the original payload, Kafka metadata,
 * an error type and message). Bad input never errors the main stream.
 *
 * Checks, in order: null value (`NULL_VALUE`, unless `nullValue: 'pass'`), size over
 * `maxPayloadBytes` (`OVERSIZED_PAYLOAD`), UTF-8 (`ENCODING_ERROR`), `JSON.parse`
 * (`JSON_PARSE_ERROR`, if `validateJson`), nesting deeper than `maxDepth` (`NESTING_TOO_DEEP`),
 * codec decode — extra fields allowed — (`SCHEMA_VALIDATION_ERROR` with a `PathReporter`-style
 * text, if `validateSchema` and a codec is given). With `attachDecoded: false`, an
 * `acceptsBytes` guard may pass a value before the decode. When neither JSON nor schema
 * validation is on, values are not decoded at all: bytes pass untouched (after a UTF-8 check,
 * unless `validateUtf8: false`) and `decoded` is `undefined`.
 *
 * Fault isolation: any exception while handling one record (the codec, `accepts`,
 * `acceptsBytes`, the error text) sends that record to `deadLetters` as `PROCESSING_ERROR`
 * with the exception's message, and the stream goes on — unless `maxConsecutiveProcessingErrors`
 * records in a row fail so (see `SystematicProcessingError`).
 *
 * Bounded work: error messages are built with bounded depth and length (at most
 * `MAX_ERROR_MESSAGE_CHARS`; no `JSON.stringify` of a payload's value), and nothing recurses
 * deeper than `maxDepth` levels of a payload.
 *
 * Tracing fields: `session_id`, `correlation_id`, `causation_id` of a dead-letter row are taken from
 * the parsed JSON's top level when present and strings, else `null`.
 *
 * Lifecycle rule: completion and error of the source are forwarded to `deadLetters` (it is
 * completed / errored right before the main output), so a dead-letter branch flushes and ends
 * with the main one. Unsubscribing from the output does not touch `deadLetters`.
 * With `enabled: false` the first bad record errors both with a `DeadLetterError`.
 *
 * ## Example
 * ```ts
 * const deadLetters = new Subject<DeadLetterRow>();
 * merge(
 *   deadLetters.pipe(bufferTime(), deltaSink(dlqTable)),
 *   records$.pipe(enrichMetadata(), routeErrors(Trip, deadLetters), bufferTime(), deltaSink(table)),
 * ).pipe(commitOffsets(source));
 * ```
 *
 * @param codec io-ts decoder of the value's JSON, or `null` for JSON (or no) validation only.
 * @param deadLetters Receives one `DeadLetterRow` per rejected record.
 * @param options Which checks run, the size and depth limits, tombstone handling, fail-loud mode.
 * @return A function that returns an Observable of the valid records with `decoded` set.
 */
export function routeErrors<A, T extends EnrichedRecord = EnrichedRecord>(
  codec: t.Decoder<unknown, A>,
  deadLetters: Observer<DeadLetterRow>,
  options?: RouteErrorsOptions,
): OperatorFunction<T, Routed<T, A>>;
export function routeErrors<T extends EnrichedRecord = EnrichedRecord>(
  codec: null,
  deadLetters: Observer<DeadLetterRow>,
  options?: RouteErrorsOptions,
): OperatorFunction<T, Routed<T, unknown>>;
export function routeErrors<A, T extends EnrichedRecord = EnrichedRecord>(
  codec: t.Decoder<unknown, A> | null,
  deadLetters: Observer<DeadLetterRow>,
  options: RouteErrorsOptions = {},
): OperatorFunction<T, Routed<T, A>> {
  const {
    validateJson = true,
    validateSchema = true,
    validateUtf8 = true,
    maxPayloadBytes = Number.POSITIVE_INFINITY,
    maxDepth = MAX_JSON_DEPTH,
    maxConsecutiveProcessingErrors = 1000,
    nullValue = 'dead-letter',
    enabled = true,
    attachDecoded = true,
    accepts,
    acceptsBytes,
  } = options;
  if (!(maxDepth >= 1)) throw new RangeError('routeErrors: maxDepth must be at least 1');
  if (!(maxConsecutiveProcessingErrors >= 1)) throw new RangeError('routeErrors: maxConsecutiveProcessingErrors must be at least 1');
  const schema = validateSchema && codec !== null ? codec : null;
  const decode = validateJson || schema !== null;
  const fastAccept = attachDecoded ? undefined : acceptsBytes;
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  return (source) =>
    new Observable<Routed<T, A>>((subscriber) => {
      // What `classify` found out about the current record, besides its verdict.
      let message = '';
      let parsed: unknown;
      let decoded: A | undefined;
      let failuresInARow = 0;

      /** The record's error type, or `null` when it is valid (then `decoded` is set). May throw. */
      const classify = (record: T): DeadLetterErrorType | null => {
        const value = record.value;
        parsed = undefined;
        decoded = undefined;
        if (value === null) {
          if (nullValue === 'pass') return null;
          message = 'null value (tombstone)';
          return 'NULL_VALUE';
        }
        if (value.byteLength > maxPayloadBytes) {
          message = `payload of ${value.byteLength} bytes exceeds ${maxPayloadBytes}`;
          return 'OVERSIZED_PAYLOAD';
        }
        if (!decode) {
          if (validateUtf8 && !isUtf8(value)) {
            message = 'payload is not valid UTF-8';
            return 'ENCODING_ERROR';
          }
          return null;
        }
        if (fastAccept?.(value) === true) return null;
        let text: string;
        try {
          text = strict.decode(value);
        } catch {
          message = 'payload is not valid UTF-8';
          return 'ENCODING_ERROR';
        }
        let json: unknown;
        try {
          // V8's JSON.parse does not recurse: any depth parses without exhausting the stack.
          json = JSON.parse(text);
        } catch (err) {
          message = err instanceof Error ? truncateText(err.message, MAX_ERROR_MESSAGE_CHARS) : errorText(err);
          return 'JSON_PARSE_ERROR';
        }
        // Only documents longer than 2 × maxDepth bytes can be too deep: typical records skip this.
        if (jsonDepthExceeds(value, maxDepth)) {
          message = `JSON nested deeper than ${maxDepth} levels`;
          parsed = json;
          return 'NESTING_TOO_DEEP';
        }
        if (schema === null || accepts?.(json) === true) {
          decoded = json as A;
          return null;
        }
        const result = schema.decode(json);
        if (result._tag === 'Left') {
          message = reportValidationErrors(result.left);
          parsed = json;
          return 'SCHEMA_VALIDATION_ERROR';
        }
        decoded = result.right;
        return null;
      };

      const reject = (record: T, type: DeadLetterErrorType): void => {
        const row = deadLetterRow(record, type, message, parsed);
        parsed = undefined;
        if (!enabled) {
          const err = new DeadLetterError(row);
          deadLetters.error(err);
          subscriber.error(err);
          return;
        }
        deadLetters.next(row);
      };

      return source.subscribe({
        next: (record) => {
          let type: DeadLetterErrorType | null;
          try {
            type = classify(record);
          } catch (err) {
            type = 'PROCESSING_ERROR';
            message = errorText(err);
            parsed = undefined;
          }
          if (type === 'PROCESSING_ERROR') {
            failuresInARow += 1;
            if (failuresInARow >= maxConsecutiveProcessingErrors && enabled) {
              const err = new SystematicProcessingError(deadLetterRow(record, type, message, undefined), failuresInARow);
              deadLetters.error(err);
              subscriber.error(err);
              return;
            }
          } else {
            failuresInARow = 0;
          }
          // Outside the try: what happens downstream is not this record's processing.
          if (type !== null) {
            reject(record, type);
            return;
          }
          const value = decoded;
          decoded = undefined;
          subscriber.next(attachDecoded ? { ...record, decoded: value } : (record as Routed<T, A>));
        },
        error: (err: unknown) => {
          deadLetters.error(err);
          subscriber.error(err);
        },
        complete: () => {
          deadLetters.complete();
          subscriber.complete();
        },
      });
    });
}

const lenient = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Kafka's "no timestamp" (-1 ms), in µs: what a record without a usable timestamp gets. */
const NO_TIMESTAMP_MICROS = -1000n;

/**
 * Fields a dead-letter row is built from: a record's reference, and whatever it carries of its
 * payload and Kafka metadata (an `EnrichedRecord` carries all of them).
 */
export type DeadLetterSource = RecordRef & {
  readonly value?: Uint8Array | null;
  readonly size?: number;
  readonly timestamp?: number;
  readonly _kafka_partition?: number;
  readonly _kafka_offset?: bigint;
  readonly _kafka_timestamp?: bigint;
  readonly _ingested_at?: bigint;
};

/**
 * The dead-letter row of a record, for operators that reject records themselves (as
 * `partitionByDate({ deadLetters })` does): its payload (when it carries one), Kafka metadata,
 * `type` and `message` (cut to `MAX_ERROR_MESSAGE_CHARS`). Missing metadata is derived from
 * the reference (`_kafka_partition` = `partition`, …; `_ingested_at` = now). Never throws.
 */
export function deadLetterRowOf(record: DeadLetterSource, type: DeadLetterErrorType, message: string): DeadLetterRow {
  return deadLetterRow(record, type, truncateText(message, MAX_ERROR_MESSAGE_CHARS), undefined);
}

function deadLetterRow(record: DeadLetterSource, type: DeadLetterErrorType, message: string, parsed: unknown): DeadLetterRow {
  const value = record.value instanceof Uint8Array ? record.value : null;
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    size: record.size ?? value?.byteLength ?? 0,
    error_type: type,
    error_message: message,
    original_payload: value === null ? null : lenient.decode(value),
    original_payload_bytes: value,
    kafka_topic: record.topic,
    _kafka_partition: record._kafka_partition ?? record.partition,
    _kafka_offset: record._kafka_offset ?? record.offset,
    _kafka_timestamp: record._kafka_timestamp ?? kafkaMicros(record.timestamp),
    _ingested_at: record._ingested_at ?? BigInt(Date.now()) * 1000n,
    session_id: stringField(parsed, 'session_id'),
    correlation_id: stringField(parsed, 'correlation_id'),
    causation_id: stringField(parsed, 'causation_id'),
  };
}

function kafkaMicros(ms: number | undefined): bigint {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && Math.abs(ms) <= 8.64e15 ? BigInt(ms) * 1000n : NO_TIMESTAMP_MICROS;
}

function stringField(parsed: unknown, name: string): string | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const v = (parsed as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : null;
}
