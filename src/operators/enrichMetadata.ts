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
 * Total: no record makes it throw. A Kafka timestamp that is not a finite number of epoch ms
 * within the `Date` range (±8.64e15 ms; producers choose it) reads as Kafka's "no timestamp",
 * `_kafka_timestamp = -1000n` (-1 ms), whose µs every table can hold.
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
  const ingestedAt = microsCache();
  const kafkaTimestamp = kafkaMicrosCache();
  return map((record: T): T & KafkaMetadataColumns => {
    const ms = now();
    // Hot path: a record straight from the source gets an object literal of a fixed shape
    // (an order of magnitude cheaper than a spread); anything else keeps its extra fields.
    if (isPlainKafkaRecord(record)) {
      return {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.key,
        value: record.value,
        headers: record.headers,
        size: record.size,
        _kafka_partition: record.partition,
        _kafka_offset: record.offset,
        _kafka_timestamp: kafkaTimestamp(record.timestamp),
        _ingested_at: ingestedAt(ms),
        _ingestion_date: dateOf(ms),
      } as T & KafkaMetadataColumns;
    }
    return {
      ...record,
      _kafka_partition: record.partition,
      _kafka_offset: record.offset,
      _kafka_timestamp: kafkaTimestamp(record.timestamp),
      _ingested_at: ingestedAt(ms),
      _ingestion_date: dateOf(ms),
    };
  });
}

const KAFKA_RECORD_KEYS = 8;

/** True when the record has exactly the `KafkaRecord` fields (as the source emits them). */
function isPlainKafkaRecord(record: KafkaRecord): boolean {
  let n = 0;
  for (const _ in record) n += 1;
  return n === KAFKA_RECORD_KEYS && 'headers' in record && 'size' in record && 'key' in record;
}

/** Kafka's "no timestamp" (-1 ms), in µs. */
const NO_TIMESTAMP_MICROS = -1000n;
/** Largest |epoch ms| of a JavaScript `Date` (±275,760 years): µs of it fit a Delta timestamp (int64). */
const MAX_DATE_MS = 8.64e15;

/**
 * Like `microsCache`, for the producer-chosen Kafka timestamp: one that is not a finite number
 * within the `Date` range (a producer may send any int64, e.g. 9e18 ms, whose µs no int64
 * holds) becomes Kafka's "no timestamp", -1 ms, so the record stays writable to every table.
 */
function kafkaMicrosCache(): (ms: number) => bigint {
  const micros = microsCache();
  return (ms: number): bigint => (ms >= -MAX_DATE_MS && ms <= MAX_DATE_MS ? micros(ms) : NO_TIMESTAMP_MICROS);
}

/** Epoch ms → µs as bigint, remembering the last conversion (records of a batch share instants). */
function microsCache(): (ms: number) => bigint {
  let lastMs = Number.NaN;
  let lastMicros = 0n;
  return (ms: number): bigint => {
    if (ms !== lastMs) {
      lastMs = ms;
      lastMicros = BigInt(Math.trunc(ms * 1000));
    }
    return lastMicros;
  };
}

function clockOf(options: EnrichMetadataOptions | SchedulerLike | undefined): () => number {
  if (options === undefined) return () => asyncScheduler.now();
  if ('schedule' in options) return () => options.now();
  const { now } = options;
  return now ?? (() => asyncScheduler.now());
}
