import { Observable, Subject, concatMap } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type { PgTable } from '../sinks/postgres.ts';
import { PgSinkError } from '../sinks/postgres.ts';
import { retryingWrite } from './internal/retryingWrite.ts';
import { uniqueRecords } from './internal/uniqueRecords.ts';
import type { BatchChunk } from './bufferTime.ts';
import { isBatchChunk } from './bufferTime.ts';
import type { RecordRef, SinkAck } from '../types.ts';

export interface PgSinkOptions<Row> {
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
  /** Backoff for failed writes: `initialMs` (default 200), `maxMs` (default 30 000), `maxAttempts` (default Infinity). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number; readonly maxAttempts?: number };
  /** Called for every failed attempt (retriable or not), before waiting or erroring. */
  readonly onWriteError?: (err: Error, attempt: number) => void;
  /** Called for every acknowledged batch, before it is emitted. */
  readonly onWrite?: (ack: SinkAck) => void;
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
 * @param table The table, from `PgTable.openOrCreate`.
 * @param options `pipelineId`, `appId`, `refsOf`, `exactlyOnce`, `retry`, `onWriteError`, `onWrite`.
 * @return A function that returns an Observable of one `SinkAck` per non-empty batch.
 */
export function pgSink<Row extends RecordRef>(table: PgTable<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row extends RecordRef>(table: PgTable<Row>, options: PgSinkOptions<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row>(
  table: PgTable<Row>,
  options: PgSinkOptions<Row> & { readonly refsOf: (row: Row) => readonly RecordRef[] },
): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function pgSink<Row>(table: PgTable<Row>, options: PgSinkOptions<Row> = {}): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck> {
  const { pipelineId = 'rxlake', refsOf, retry = {} } = options;
  const exactlyOnce = options.exactlyOnce ?? refsOf === undefined;
  const appId = options.appId ?? ((ref: RecordRef): string => `${pipelineId}-${ref.topic}-${ref.partition}`);

  const refsFor = (rows: readonly Row[]): readonly RecordRef[] => {
    if (refsOf) return rows.flatMap((row) => refsOf(row));
    for (const row of rows) {
      const r = row as Partial<RecordRef> | null;
      if (typeof r?.topic !== 'string' || typeof r.partition !== 'number' || typeof r.offset !== 'bigint') {
        throw new PgSinkError(`PostgreSQL table ${table.qualifiedName}: rows that are not Kafka records need refsOf`);
      }
    }
    return rows as unknown as readonly RecordRef[];
  };

  /** Writes one batch (retrying as configured) and emits its ack. */
  const write = (batch: readonly Row[]): Observable<SinkAck> => {
    let refs: readonly RecordRef[] | undefined;
    let rows = batch;
    let repeats = 0;
    return retryingWrite(
      'pgSink',
      async (signal) => {
        if (refs === undefined) {
          refs = refsFor(batch);
          if (exactlyOnce) {
            // Defence in depth: a batch never writes a (topic, partition, offset) twice.
            const u = uniqueRecords(batch as unknown as readonly RecordRef[]);
            rows = u.rows as unknown as readonly Row[];
            repeats = u.dropped;
          }
        }
        const r = await table.write(rows, exactlyOnce ? { appId, signal } : { signal });
        return { table: table.qualifiedName, version: null, rows: r.rows, skipped: r.skipped + repeats, bytes: 0, refs };
      },
      retry,
      options,
    );
  };

  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      const jobs = new Subject<Observable<SinkAck>>();
      const writes = jobs.pipe(concatMap((job) => job)).subscribe(subscriber);
      /** Rows of the batch being received in chunks. */
      let open: Row[] = [];
      const upstream = source.subscribe({
        next: (input) => {
          if (!isBatchChunk(input)) {
            if (input.length) jobs.next(write(input));
            return;
          }
          for (const row of input.records) open.push(row);
          if (input.last) {
            const rows = open;
            open = [];
            if (rows.length) jobs.next(write(rows));
          }
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          if (open.length) jobs.next(write(open));
          open = [];
          jobs.complete();
        },
      });
      return () => {
        upstream.unsubscribe();
        writes.unsubscribe();
        open = [];
      };
    });
}
