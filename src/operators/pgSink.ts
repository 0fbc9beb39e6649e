import type { OperatorFunction } from 'rxjs';
import type { PgSinkTarget } from '../sinks/postgres.ts';
import { PgSinkError } from '../sinks/postgres.ts';
import { sinkCore } from './internal/sinkCore.ts';
import type { SinkCoreOptions } from './internal/sinkCore.ts';
import type { BatchChunk } from './bufferTime.ts';
import type { RecordRef, SinkAck } from '../types.ts';

/** Also `retry`, `onWriteError`, `onWrite` and `scheduler`, as every sink takes them (see `SinkCoreOptions`). */
export interface PgSinkOptions<Row> extends SinkCoreOptions {
  /** Pipeline id; the default appId of a record is `${pipelineId}-${topic}-${partition}` (default `'rxlake'`). */
  readonly pipelineId?: string;
  /** The offsets key of a record, overriding the default built from `pipelineId`. */
  readonly appId?: (ref: RecordRef) => string;
  /**
   * The source records a row covers, for rows that are not records themselves (e.g. a window
   * aggregate): the ack lists them. Default: the row itself.
   */
  readonly refsOf?: (row: Row) => readonly RecordRef[];
  /**
   * Record the last offset written per (appId, topic, partition) in the batch's transaction and
   * skip rows at or below it; rows must be Kafka records. Default: true without `refsOf`,
   * false with it (the upsert's idempotence is then the guarantee).
   */
  readonly exactlyOnce?: boolean;
}

/**
 * Writes each batch to a PostgreSQL table in one transaction — a multi-row upsert on the
 * table's primary key — and emits a `SinkAck` once it is committed (`table`: the qualified name, `version: null`,
 * `bytes: 0`).
 *
 * Exactly-once for rows that are Kafka records (the default): the transaction locks the
 * batch's rows of the offsets table (key: table, appId, topic, partition), skips records at or
 * below the recorded offset, writes the rest and records the new last offset, so a replayed
 * batch never writes twice and a concurrent writer of the same partitions waits its turn. For
 * rows that are not records (`refsOf`), nothing is recorded: a replay upserts the same rows
 * again, which leaves the table as it was only if the rows are the same — deterministic
 * aggregates of the same records are; rows that depend on arrival order or wall time are not.
 *
 * Several rows of one primary key in a batch collapse to one before the insert (the last, or
 * with `onConflict: 'nothing'` the first). Batches are written strictly one at a time, in
 * order; empty batches are skipped (no ack). Retriable failures (lost or refused connections,
 * serialization failures, deadlocks, server restarts, too many connections) roll the
 * transaction back and are retried with jittered exponential backoff — `onWriteError` hears of
 * every failed attempt — and a failed batch is never acknowledged. A non-retriable failure (bad
 * data, a constraint or schema error), or running out of `maxAttempts`, errors the stream with
 * a `PgSinkError` naming the table and the cause. The ack's `refs` are the batch's rows (or
 * their `refsOf`), skipped rows included: they are durable too.
 *
 * Chunks (`bufferTime({ chunkRecords })`) are collected and their batch written at its last
 * chunk: a transaction is never held open while a batch fills.
 *
 * ## Example
 * ```ts
 * const table = await PgTable.openOrCreate(pool, paymentsSpec);
 * records$.pipe(
 *   bufferTime({ timeSpan: 5_000 }),
 *   pgSink(table, { pipelineId: 'payments', onWriteError: (err) => log.warn(err.message) }),
 *   commitOffsets(source),
 * );
 * ```
 *
 * @param table The table, from `PgTable.openOrCreate` (or any `PgSinkTarget`: an in-memory table in tests).
 * @param options `pipelineId`, `appId`, `refsOf`, `exactlyOnce`, `retry`, `onWriteError`, `onWrite`, `scheduler` (of the backoff waits and `durationMs`).
 * @return A function that returns an Observable of one `SinkAck` per non-empty batch.
 */
export function pgSink<Row extends RecordRef>(table: PgSinkTarget<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row extends RecordRef>(table: PgSinkTarget<Row>, options: PgSinkOptions<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row>(
  table: PgSinkTarget<Row>,
  options: PgSinkOptions<Row> & { readonly refsOf: (row: Row) => readonly RecordRef[] },
): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row>(table: PgSinkTarget<Row>, options: PgSinkOptions<Row> = {}): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck> {
  const { pipelineId = 'rxlake', refsOf } = options;
  const exactlyOnce = options.exactlyOnce ?? refsOf === undefined;
  const appId = options.appId ?? ((ref: RecordRef): string => `${pipelineId}-${ref.topic}-${ref.partition}`);
  const name = table.qualifiedName;
  return sinkCore<Row>(
    {
      sink: 'pgSink',
      table: name,
      // Defence in depth: a batch never writes a (topic, partition, offset) twice.
      dropRepeats: exactlyOnce,
      refs: (rows) => {
        if (refsOf) return rows.flatMap((row) => refsOf(row));
        for (const row of rows) {
          const r = row as Partial<RecordRef> | null;
          if (typeof r?.topic !== 'string' || typeof r.partition !== 'number' || typeof r.offset !== 'bigint') {
            throw new PgSinkError(`PostgreSQL table ${name}: rows that are not Kafka records need refsOf`);
          }
        }
        return rows as unknown as readonly RecordRef[];
      },
      write: (rows, signal) => table.write(rows, exactlyOnce ? { appId, signal } : { signal }),
    },
    options,
  );
}
