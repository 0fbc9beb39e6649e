import { map } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { utcDateFormatter } from './internal/utcDate.ts';

/** A timestamp: epoch microseconds as `bigint`, epoch milliseconds as `number`, or a `Date`. */
export type Timestamp = bigint | number | Date;

export interface PartitionByDateOptions<T, K extends string> {
  /** Partition column to set; default `'_ingestion_date'`. */
  readonly column?: K;
  /** Where the timestamp comes from; default the record's `_ingested_at` (µs). */
  readonly from?: (record: T) => Timestamp;
}

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
/**
 * Sets a Delta partition column to the UTC date (`YYYY-MM-DD`) of a timestamp of each record,
 * so a date-partitioned sink writes Hive-style `column=YYYY-MM-DD/` folders.
 *
 * `bigint` timestamps are epoch microseconds (Delta's unit), `number` ones epoch milliseconds.
 * The date string is computed once per day, not per record.
 *
 * ## Example
 * ```ts
 * records$.pipe(
 *   enrichMetadata(),
 *   partitionByDate({ column: 'event_date', from: (r) => r._kafka_timestamp }),
 * );
 * ```
 *
 * @param options `column` to set (default `_ingestion_date`) and `from`, the timestamp to use
 * (default `_ingested_at`).
 * @return A function that returns an Observable of the records with the partition column set.
 */
export function partitionByDate<T, K extends string = '_ingestion_date'>(
  options: { readonly column?: K; readonly from?: ((record: T) => Timestamp) | undefined } = {},
): OperatorFunction<T, T & { readonly [P in K]: string }> {
  const column = options.column ?? '_ingestion_date';
  const from = options.from ?? ((r: T) => (r as { readonly _ingested_at: bigint })._ingested_at);
  const dateOf = utcDateFormatter();
  return map((record: T) => {
    const ms = toEpochMs(from(record));
    if (!Number.isFinite(ms)) throw new RangeError(`partitionByDate: invalid timestamp for column ${column}`);
    const date = dateOf(ms);
    // Already right (e.g. `_ingestion_date` from enrichMetadata): pass the record on, no copy.
    if ((record as Record<string, unknown>)[column] === date) return record as T & { readonly [P in K]: string };
    return { ...record, [column]: date } as T & { readonly [P in K]: string };
  });
}

function toEpochMs(ts: Timestamp): number {
  // µs → ms without BigInt arithmetic on the per-record path (exact to the day for any
  // instant within ±285 years of 1970); floor also for negative instants.
  if (typeof ts === 'bigint') return Math.floor(Number(ts) / 1000);
  if (typeof ts === 'number') return ts;
  return ts.getTime();
}
