import { Observable } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type * as t from 'io-ts';
import { PathReporter } from 'io-ts/lib/PathReporter.js';
import type { DeadLetterErrorType, DeadLetterRow, EnrichedRecord } from '../types.ts';

export interface RouteErrorsOptions {
  /** Reject values that are not valid JSON (`JSON_PARSE_ERROR`); default true. */
  readonly validateJson?: boolean;
  /** Decode the parsed JSON with the codec (`SCHEMA_VALIDATION_ERROR`); default true. */
  readonly validateSchema?: boolean;
  /** Reject values longer than this many bytes (`OVERSIZED_PAYLOAD`). */
  readonly maxPayloadBytes?: number;
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
   * usual path would certainly accept — valid UTF-8, valid JSON, and accepted by the codec —
   * and, like `accepts`, only stands in for codecs whose `decode` returns its input unchanged.
   * See `compileBytesGuard`; the bronze pipeline's guards are `bronzeBytesGuards`.
   */
  readonly acceptsBytes?: (value: Uint8Array) => boolean;
}

/** A valid record with its decoded value (`undefined` when nothing was decoded). */
export type Routed<T, A> = T & { readonly decoded: A | undefined };

/** Thrown (as the stream's error) by `routeErrors({ enabled: false })` for the first bad record. */
export class DeadLetterError extends Error {
  readonly row: DeadLetterRow;
  constructor(row: DeadLetterRow) {
    super(`${row.error_type} at ${row.kafka_topic}/${row.partition}@${row.offset}: ${row.error_message}`);
    this.name = 'DeadLetterError';
    this.row = row;
  }
}

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
/**
 * Splits a stream of records into valid ones (passed on, with their decoded value) and bad
 * ones (sent to `deadLetters` as `DeadLetterRow`s with the original payload, Kafka metadata,
 * an error type and message). Bad input never errors the main stream.
 *
 * Checks, in order: null value (`NULL_VALUE`, unless `nullValue: 'pass'`), size over
 * `maxPayloadBytes` (`OVERSIZED_PAYLOAD`), UTF-8 (`ENCODING_ERROR`), `JSON.parse`
 * (`JSON_PARSE_ERROR`, if `validateJson`), codec decode — extra fields allowed —
 * (`SCHEMA_VALIDATION_ERROR` with the `PathReporter` text, if `validateSchema` and a codec is
 * given). With `attachDecoded: false`, an `acceptsBytes` guard may pass a value before the
 * decode. When neither JSON nor schema validation is on, values are not decoded at all: bytes
 * pass untouched and `decoded` is `undefined`.
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
 * @param options Which checks run, the size limit, tombstone handling, fail-loud mode.
 * @return A function that returns an Observable of the valid records with `decoded` set.
 */
export function routeErrors<A, T extends EnrichedRecord = EnrichedRecord>(
  codec: t.Decoder<unknown, A> | null,
  deadLetters: Observer<DeadLetterRow>,
  options: RouteErrorsOptions = {},
): OperatorFunction<T, Routed<T, A>> {
  const {
    validateJson = true,
    validateSchema = true,
    maxPayloadBytes = Number.POSITIVE_INFINITY,
    nullValue = 'dead-letter',
    enabled = true,
    attachDecoded = true,
    accepts,
    acceptsBytes,
  } = options;
  const schema = validateSchema && codec !== null ? codec : null;
  const decode = validateJson || schema !== null;
  const fastAccept = attachDecoded ? undefined : acceptsBytes;
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  return (source) =>
    new Observable<Routed<T, A>>((subscriber) => {
      const reject = (
        record: T,
        type: DeadLetterErrorType,
        message: string,
        parsed?: unknown,
      ): void => {
        const row = deadLetterRow(record, type, message, parsed);
        if (!enabled) {
          const err = new DeadLetterError(row);
          deadLetters.error(err);
          subscriber.error(err);
          return;
        }
        deadLetters.next(row);
      };

      const pass = (record: T, decoded: A | undefined): void => {
        subscriber.next(attachDecoded ? { ...record, decoded } : (record as Routed<T, A>));
      };
      return source.subscribe({
        next: (record) => {
          const value = record.value;
          if (value === null) {
            if (nullValue === 'pass') pass(record, undefined);
            else reject(record, 'NULL_VALUE', 'null value (tombstone)');
            return;
          }
          if (value.byteLength > maxPayloadBytes) {
            reject(record, 'OVERSIZED_PAYLOAD', `payload of ${value.byteLength} bytes exceeds ${maxPayloadBytes}`);
            return;
          }
          if (!decode || fastAccept?.(value) === true) {
            pass(record, undefined);
            return;
          }
          let text: string;
          try {
            text = strict.decode(value);
          } catch {
            reject(record, 'ENCODING_ERROR', 'payload is not valid UTF-8');
            return;
          }
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch (err) {
            reject(record, 'JSON_PARSE_ERROR', err instanceof Error ? err.message : String(err));
            return;
          }
          if (schema === null) {
            pass(record, parsed as A);
            return;
          }
          if (accepts?.(parsed) === true) {
            pass(record, parsed as A);
            return;
          }
          const result = schema.decode(parsed);
          if (result._tag === 'Left') {
            reject(record, 'SCHEMA_VALIDATION_ERROR', PathReporter.report(result).join('; '), parsed);
            return;
          }
          pass(record, result.right);
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

function deadLetterRow(record: EnrichedRecord, type: DeadLetterErrorType, message: string, parsed: unknown): DeadLetterRow {
  const value = record.value;
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    size: record.size,
    error_type: type,
    error_message: message,
    original_payload: value === null ? null : lenient.decode(value),
    original_payload_bytes: value,
    kafka_topic: record.topic,
    _kafka_partition: record._kafka_partition,
    _kafka_offset: record._kafka_offset,
    _kafka_timestamp: record._kafka_timestamp,
    _ingested_at: record._ingested_at,
    session_id: stringField(parsed, 'session_id'),
    correlation_id: stringField(parsed, 'correlation_id'),
    causation_id: stringField(parsed, 'causation_id'),
  };
}

function stringField(parsed: unknown, name: string): string | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const v = (parsed as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : null;
}
