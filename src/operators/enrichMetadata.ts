import { Observable, asyncScheduler } from 'rxjs';
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import type { KafkaMetadataColumns, KafkaRecord } from '../types.ts';

export interface EnrichMetadataOptions {
  /** Clock in epoch milliseconds; defaults to `asyncScheduler.now()`. */
  readonly now?: () => number;
}

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
export function enrichMetadata<T extends KafkaRecord>(): OperatorFunction<T, T & KafkaMetadataColumns>;
export function enrichMetadata<T extends KafkaRecord>(
  options: EnrichMetadataOptions | SchedulerLike,
): OperatorFunction<T, T & KafkaMetadataColumns>;
export function enrichMetadata<T extends KafkaRecord>(
  options?: EnrichMetadataOptions | SchedulerLike,
): OperatorFunction<T, T & KafkaMetadataColumns> {
  // The default clock is called right here (not through a closure), so optimized code keeps the
  // instant unboxed: nothing is allocated per record but the record itself.
  const clock = options === undefined ? undefined : clockOf(options);
  return (source) =>
    new Observable<T & KafkaMetadataColumns>((subscriber) => {
      // Per-record conversions remembered from the last record: records of a fetch share
      // instants, so µs bigints and the date string are made once per millisecond / day.
      let lastMs = Number.NaN;
      let lastMicros = 0n;
      let dayStart = Number.NaN;
      let date = '';
      let lastTs = Number.NaN;
      let lastTsMicros = NO_TIMESTAMP_MICROS;
      return source.subscribe({
        next: (record) => {
          const ms = clock === undefined ? asyncScheduler.now() : clock();
          if (ms !== lastMs) {
            lastMs = ms;
            lastMicros = BigInt(Math.trunc(ms * 1000));
            if (!(ms >= dayStart && ms < dayStart + DAY_MS)) {
              date = dateOf(ms);
              dayStart = Math.floor(ms / DAY_MS) * DAY_MS;
            }
          }
          const ts = record.timestamp;
          if (ts !== lastTs) {
            lastTs = ts;
            // Not a finite instant within the Date range: Kafka's "no timestamp" (see above).
            lastTsMicros = ts >= -MAX_DATE_MS && ts <= MAX_DATE_MS ? BigInt(Math.trunc(ts * 1000)) : NO_TIMESTAMP_MICROS;
          }
          // Hot path: a record straight from the source gets an object literal of a fixed shape
          // (an order of magnitude cheaper than a spread); anything else keeps its extra fields.
          subscriber.next(
            isPlainKafkaRecord(record)
              ? ({
                  topic: record.topic,
                  partition: record.partition,
                  offset: record.offset,
                  timestamp: ts,
                  key: record.key,
                  value: record.value,
                  headers: record.headers,
                  size: record.size,
                  _kafka_partition: record.partition,
                  _kafka_offset: record.offset,
                  _kafka_timestamp: lastTsMicros,
                  _ingested_at: lastMicros,
                  _ingestion_date: date,
                } as T & KafkaMetadataColumns)
              : {
                  ...record,
                  _kafka_partition: record.partition,
                  _kafka_offset: record.offset,
                  _kafka_timestamp: lastTsMicros,
                  _ingested_at: lastMicros,
                  _ingestion_date: date,
                },
          );
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
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
const DAY_MS = 86_400_000;

/** UTC `YYYY-MM-DD` of an instant (called once per day). */
function dateOf(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

function clockOf(options: EnrichMetadataOptions | SchedulerLike | undefined): () => number {
  if (options === undefined) return () => asyncScheduler.now();
  if ('schedule' in options) return () => options.now();
  const { now } = options;
  return now ?? (() => asyncScheduler.now());
}
