import type { OperatorFunction } from 'rxjs';
import type { DeltaTable } from '../sinks/delta/table.ts';
import type { BatchChunk } from './bufferTime.ts';
import { sinkCore } from './internal/sinkCore.ts';
import type { SinkCoreOptions } from './internal/sinkCore.ts';
import type { RecordRef, SinkAck } from '../types.ts';

/** Also `retry`, `onWriteError`, `onWrite` and `scheduler`, as every sink takes them (see `SinkCoreOptions`). */
export interface DeltaSinkOptions extends SinkCoreOptions {
  /** Pipeline id; the default appId of a record is `${pipelineId}-${topic}-${partition}` (default `'rxlake'`). */
  readonly pipelineId?: string;
  /** The `txn` appId of a record, overriding the default built from `pipelineId`. */
  readonly appId?: (ref: RecordRef) => string;
}

/**
 * Writes each batch to a Delta table as one commit and emits a `SinkAck` once the commit is
 * durable. Exactly-once: each commit records a `txn` per source partition (appId from
 * `pipelineId`, topic and partition; version = last offset written) and rows at or below the
 * table's recorded version are skipped, so a replayed batch never duplicates.
 *
 * Defence in depth: a batch never commits a (topic, partition, offset) twice — a second copy
 * inside one batch is dropped before encoding (counted in the ack's `skipped`). The Kafka source
 * never emits one (see `OffsetTracker`); this holds for any upstream.
 *
 * Batches are written strictly one at a time, in order; empty batches are skipped (no ack).
 * Retriable failures (network, 5xx, throttling, a full disk, lost commit races) are retried
 * with jittered exponential backoff — `onWriteError` hears of every failed attempt — and a
 * failed batch is never acknowledged. A non-retriable failure, or running out of
 * `maxAttempts`, errors the stream. The ack's `refs` are the batch's rows themselves (skipped
 * rows included: they are durable too).
 *
 * Chunks (`bufferTime({ chunkRecords })`) are encoded into the batch's files as they arrive
 * (`DeltaTable.stage`), so a batch's records need not all be held until it is complete; the
 * batch is committed at its last chunk, in order with other batches, and its ack lists the
 * records as `{ topic, partition, offset }`. While a commit is in progress the next batch's
 * chunks are already being encoded.
 *
 * ## Example
 * ```ts
 * records$.pipe(
 *   enrichMetadata(),
 *   bufferTime({ timeSpan: 10_000 }),
 *   deltaSink(table, { pipelineId: 'bronze', onWriteError: () => health.down() }),
 *   commitOffsets(consumer),
 * );
 * ```
 *
 * @param table The table, from `DeltaTable.openOrCreate`.
 * @param options `pipelineId`, `appId`, `retry`, `onWriteError`, `onWrite`, `scheduler` (of the backoff waits and `durationMs`).
 * @return A function that returns an Observable of one `SinkAck` per non-empty batch.
 */
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>, options: DeltaSinkOptions): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>, options: DeltaSinkOptions = {}): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck> {
  const { pipelineId = 'rxlake' } = options;
  const appId = options.appId ?? ((ref: RecordRef): string => `${pipelineId}-${ref.topic}-${ref.partition}`);
  // Rows of one partition come in runs: remember the last appId instead of building a string per row.
  let lastTopic: string | undefined;
  let lastPartition = -1;
  let lastId = '';
  const cachedAppId = (row: Row): string => {
    if (row.partition !== lastPartition || row.topic !== lastTopic) {
      lastTopic = row.topic;
      lastPartition = row.partition;
      lastId = appId(row);
    }
    return lastId;
  };
  const dedupe = { appId: options.appId ? (row: Row): string => appId(row) : cachedAppId, offset: (row: Row): bigint => row.offset };
  return sinkCore<Row>(
    {
      sink: 'deltaSink',
      table: table.name,
      dropRepeats: true,
      write: (rows) => table.append(rows, { dedupe }),
      stage: () => table.stage({ dedupe }),
    },
    options,
  );
}
