import { Observable, Subject, concatMap } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import type { AppendResult, DeltaTable, StagedAppend } from '../sinks/delta/table.ts';
import type { BatchChunk } from './bufferTime.ts';
import { isBatchChunk } from './bufferTime.ts';
import { retryingWrite } from './internal/retryingWrite.ts';
import { BatchRecords, uniqueRecords } from './internal/uniqueRecords.ts';
import type { RecordRef, SinkAck } from '../types.ts';

export interface DeltaSinkOptions {
  /** Pipeline id; the default appId of a record is `${pipelineId}-${topic}-${partition}` (default `'rxlake'`). */
  readonly pipelineId?: string;
  /** The `txn` appId of a record, overriding the default built from `pipelineId`. */
  readonly appId?: (ref: RecordRef) => string;
  /** Backoff for failed writes: `initialMs` (default 200), `maxMs` (default 30 000), `maxAttempts` (default Infinity). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number; readonly maxAttempts?: number };
  /** Called for every failed attempt (retriable or not), before waiting or erroring. */
  readonly onWriteError?: (err: Error, attempt: number) => void;
  /** Called for every acknowledged batch, before it is emitted. */
  readonly onWrite?: (ack: SinkAck) => void;
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
 * @param options `pipelineId`, `appId`, `retry`, `onWriteError`, `onWrite`.
 * @return A function that returns an Observable of one `SinkAck` per non-empty batch.
 */
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>, options: DeltaSinkOptions): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck>;
export function deltaSink<Row extends RecordRef>(table: DeltaTable<Row>, options: DeltaSinkOptions = {}): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck> {
  const { pipelineId = 'rxlake', retry = {}, onWriteError } = options;
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

  /** Runs `append` (retrying as configured) and emits its ack; `repeats`: copies dropped before it. */
  const write = (append: () => Promise<AppendResult>, refs: readonly RecordRef[], repeats: number): Observable<SinkAck> =>
    retryingWrite(
      'deltaSink',
      async () => {
        const r = await append();
        return { table: table.name, version: r.version, rows: r.rows, skipped: r.skipped + repeats, bytes: r.bytes, refs };
      },
      retry,
      options,
    );

  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      // Whole batches and completed staged batches are written strictly one at a time, in order.
      const jobs = new Subject<Observable<SinkAck>>();
      const writes = jobs.pipe(concatMap((job) => job)).subscribe(subscriber);
      /** The batch being received in chunks: its rows are encoded as they come. */
      let open: { readonly staged: StagedAppend<Row>; readonly refs: RecordRef[]; readonly records: BatchRecords } | undefined;
      /** Staged batches not committed yet (the open one included): dropped if the stream ends early. */
      const pending = new Set<StagedAppend<Row>>();
      const close = (): void => {
        if (!open) return;
        const { staged, refs, records } = open;
        open = undefined;
        if (staged.received === 0) {
          pending.delete(staged);
          staged.discard();
          return;
        }
        jobs.next(
          write(async () => {
            const r = await staged.commit();
            pending.delete(staged);
            return r;
          }, refs, records.dropped),
        );
      };
      const upstream = source.subscribe({
        next: (input) => {
          if (!isBatchChunk(input)) {
            if (!input.length) return;
            // Defence in depth: a batch never holds a (topic, partition, offset) twice.
            const { rows, dropped } = uniqueRecords(input);
            jobs.next(write(() => table.append(rows, { dedupe }), rows, dropped));
            return;
          }
          let rows: readonly Row[];
          try {
            if (!open) {
              open = { staged: table.stage({ dedupe }), refs: [], records: new BatchRecords() };
              pending.add(open.staged);
            }
            rows = open.records.keep(input.records, open.refs);
            open.staged.add(rows);
          } catch (err) {
            // A value its column cannot take: bad input, not retriable (as from `append`).
            // (The teardown drops the staged batches.)
            open = undefined;
            const error = err instanceof Error ? err : new Error(String(err));
            onWriteError?.(error, 1);
            subscriber.error(error);
            return;
          }
          // The ack lists the records by reference only: the rows themselves can go.
          const { refs } = open;
          for (const r of rows) refs.push({ topic: r.topic, partition: r.partition, offset: r.offset });
          if (input.last) close();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          close();
          jobs.complete();
        },
      });
      return () => {
        upstream.unsubscribe();
        writes.unsubscribe();
        for (const staged of pending) staged.discard();
        pending.clear();
        open = undefined;
      };
    });
}
