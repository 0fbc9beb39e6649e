import { Observable } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type { DeadLetterRow, RecordRef } from '../types.ts';
import { errorText } from '../validation/limits.ts';
import { utcDateFormatter } from './internal/utcDate.ts';
import { deadLetterRowOf } from './routeErrors.ts';
import type { DeadLetterSource } from './routeErrors.ts';

/** A timestamp: epoch microseconds as `bigint`, epoch milliseconds as `number`, or a `Date`. */
export type Timestamp = bigint | number | Date;

export interface PartitionByDateOptions<T, K extends string> {
  /** Partition column to set; default `'_ingestion_date'`. */
  readonly column?: K;
  /** Where the timestamp comes from; default the record's `_ingested_at` (µs). */
  readonly from?: (record: T) => Timestamp;
  /**
   * Where a record goes whose timestamp gives no partition value (`from` throws, or the
   * instant is not a finite one in years 0001–9999): a `PROCESSING_ERROR` dead-letter row, and
   * the stream goes on. Records must then be `RecordRef`s (enriched records are). Typically the
   * chain's `routeErrors` observer (`withDeadLetters`). Without it, such a record errors the
   * stream.
   */
  readonly deadLetters?: T extends RecordRef ? Observer<DeadLetterRow> : never;
}

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants whose date is a `YYYY-MM-DD`. */
const MIN_MS = -62_135_596_800_000;
const MAX_MS = 253_402_300_799_999;

/**
 * Sets a Delta partition column to the UTC date (`YYYY-MM-DD`) of a timestamp of each record,
 * so a date-partitioned sink writes Hive-style `column=YYYY-MM-DD/` folders.
 *
 * `bigint` timestamps are epoch microseconds (Delta's unit), `number` ones epoch milliseconds.
 * The date string is computed once per day, not per record.
 *
 * A partition value is a `YYYY-MM-DD` date of years 0001–9999 (what Delta readers, Spark and
 * PostgreSQL take). A record whose timestamp has none — `from` throws, or gives an instant that
 * is not finite or lies outside those years — goes to `deadLetters` as `PROCESSING_ERROR` when
 * that option is given (the stream goes on); without it, it errors the stream with a
 * `RangeError`. Completion and error of the source are forwarded to `deadLetters` too (as
 * `routeErrors` does; a second `complete` of the same `Subject` is a no-op).
 *
 * ## Example
 * ```ts
 * records$.pipe(
 *   enrichMetadata(),
 *   partitionByDate({ column: 'event_date', from: (r) => r._kafka_timestamp }),
 * );
 * ```
 *
 * @param options `column` to set (default `_ingestion_date`), `from`, the timestamp to use
 * (default `_ingested_at`), and `deadLetters` for records whose timestamp gives no date.
 * @return A function that returns an Observable of the records with the partition column set.
 */
export function partitionByDate<T extends { readonly _ingested_at: bigint }>(): OperatorFunction<
  T,
  T & { readonly _ingestion_date: string }
>;
export function partitionByDate<T extends { readonly _ingested_at: bigint }, K extends string = '_ingestion_date'>(
  options: { readonly column?: K; readonly from?: undefined },
): OperatorFunction<T, T & { readonly [P in K]: string }>;
export function partitionByDate<T, K extends string = '_ingestion_date'>(
  options: PartitionByDateOptions<T, K> & { readonly from: (record: T) => Timestamp },
): OperatorFunction<T, T & { readonly [P in K]: string }>;
export function partitionByDate<T extends RecordRef & { readonly _ingested_at: bigint }, K extends string = '_ingestion_date'>(
  options: PartitionByDateOptions<T, K> & { readonly deadLetters: Observer<DeadLetterRow> },
): OperatorFunction<T, T & { readonly [P in K]: string }>;
export function partitionByDate<T, K extends string = '_ingestion_date'>(
  options: {
    readonly column?: K;
    readonly from?: ((record: T) => Timestamp) | undefined;
    readonly deadLetters?: Observer<DeadLetterRow> | undefined;
  } = {},
): OperatorFunction<T, T & { readonly [P in K]: string }> {
  type Out = T & { readonly [P in K]: string };
  const column = options.column ?? '_ingestion_date';
  const from = options.from ?? ((r: T) => (r as { readonly _ingested_at: bigint })._ingested_at);
  const { deadLetters } = options;
  const dateOf = utcDateFormatter();
  const invalid = `partitionByDate: invalid timestamp for column ${column}`;
  // Default timestamp (`_ingested_at`): records of a run share the µs bigint, so its date is
  // looked up by that value and the record passes on without a conversion per record.
  const byIngestedAt = options.from === undefined;
  return (source) =>
    new Observable<Out>((subscriber) => {
      let lastTs: bigint | undefined;
      let lastDate = '';
      return source.subscribe({
        next: (record) => {
          if (byIngestedAt) {
            const ts = (record as { readonly _ingested_at?: unknown })._ingested_at;
            if (ts === lastTs && ts !== undefined) {
              if ((record as Record<string, unknown>)[column] === lastDate) subscriber.next(record as Out);
              else subscriber.next({ ...record, [column]: lastDate } as Out);
              return;
            }
          }
          let ms: number;
          let failure: string | null = null;
          try {
            ms = toEpochMs(from(record));
            if (!(ms >= MIN_MS && ms <= MAX_MS)) failure = invalid;
          } catch (err) {
            ms = Number.NaN;
            failure = `${invalid}: ${errorText(err)}`;
          }
          if (failure !== null) {
            if (deadLetters === undefined) {
              subscriber.error(new RangeError(failure));
              return;
            }
            deadLetters.next(deadLetterRowOf(record as DeadLetterSource, 'PROCESSING_ERROR', failure));
            return;
          }
          const date = dateOf(ms);
          if (byIngestedAt) {
            lastTs = (record as { readonly _ingested_at: bigint })._ingested_at;
            lastDate = date;
          }
          // Already right (e.g. `_ingestion_date` from enrichMetadata): pass the record on, no copy.
          if ((record as Record<string, unknown>)[column] === date) subscriber.next(record as Out);
          else subscriber.next({ ...record, [column]: date } as Out);
        },
        error: (err: unknown) => {
          deadLetters?.error(err);
          subscriber.error(err);
        },
        complete: () => {
          deadLetters?.complete();
          subscriber.complete();
        },
      });
    });
}

function toEpochMs(ts: Timestamp): number {
  // µs → ms without BigInt arithmetic on the per-record path (exact to the day for any
  // instant within ±285 years of 1970); floor also for negative instants.
  if (typeof ts === 'bigint') return Math.floor(Number(ts) / 1000);
  if (typeof ts === 'number') return ts;
  return ts instanceof Date ? ts.getTime() : Number.NaN;
}
