import { asyncScheduler, map } from 'rxjs';
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import type { KafkaMetadataColumns, KafkaRecord } from '../types.ts';
import { utcDateFormatter } from './internal/utcDate.ts';

export interface EnrichMetadataOptions {
  /** Clock in epoch milliseconds; defaults to `asyncScheduler.now()`. */
  readonly now?: () => number;
}

export function enrichMetadata<T extends KafkaRecord>(): OperatorFunction<T, T & KafkaMetadataColumns>;
export function enrichMetadata<T extends KafkaRecord>(
  options: EnrichMetadataOptions | SchedulerLike,
): OperatorFunction<T, T & KafkaMetadataColumns>;
/**
 * Adds the bronze metadata columns to every record: `_kafka_partition`, `_kafka_offset`,
 * `_kafka_timestamp` (µs), `_ingested_at` (µs, when the record passed here) and
 * `_ingestion_date` (UTC `YYYY-MM-DD` of `_ingested_at`).
 *
 * The clock is a scheduler's `now()` (or a `now` function), so marble tests pin it. The
 * date string is computed once per day, not per record.
 *
 * ## Example
 * ```ts
 * source.records$.pipe(enrichMetadata()).subscribe((r) => console.log(r._ingestion_date));
 * ```
 *
 * @param options A scheduler whose `now()` is the clock, or `{ now }` in epoch milliseconds.
 * @return A function that returns an Observable of the records with metadata columns added.
 */
export function enrichMetadata<T extends KafkaRecord>(
  options?: EnrichMetadataOptions | SchedulerLike,
): OperatorFunction<T, T & KafkaMetadataColumns> {
  const now = clockOf(options);
  const dateOf = utcDateFormatter();
  return map((record: T): T & KafkaMetadataColumns => {
    const ms = now();
    return {
      ...record,
      _kafka_partition: record.partition,
      _kafka_offset: record.offset,
      _kafka_timestamp: BigInt(Math.trunc(record.timestamp)) * 1000n,
      _ingested_at: BigInt(Math.trunc(ms * 1000)),
      _ingestion_date: dateOf(ms),
    };
  });
}

function clockOf(options: EnrichMetadataOptions | SchedulerLike | undefined): () => number {
  if (options === undefined) return () => asyncScheduler.now();
  if ('schedule' in options) return () => options.now();
  const { now } = options;
  return now ?? (() => asyncScheduler.now());
}
