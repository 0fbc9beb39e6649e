/**
 * The one core of the sink operators. A sink (`deltaSink`, `pgSink`) is a `SinkTarget` — how to
 * write a whole batch, and optionally how to stage a batch that arrives in chunks — and this core
 * does the rest the same way for every sink: the ordered write queue, chunk handling, repeat
 * dropping, retry with backoff, the `onWrite`/`onWriteError` hooks, flush on complete, error
 * pass-through and teardown.
 */
import { Observable, Subject, catchError, concatMap, defer, from, map, take, throwError, throwIfEmpty } from 'rxjs';
import type { ObservableInput, OperatorFunction, SchedulerLike } from 'rxjs';
import { asError } from '../../core/errors.ts';
import { retryWith } from '../../core/retry.ts';
import type { RetryPolicy } from '../../core/retry.ts';
import type { BatchChunk } from '../bufferTime.ts';
import { isBatchChunk } from '../bufferTime.ts';
import { BatchRecords, uniqueRecords } from './uniqueRecords.ts';
import type { RecordRef, SinkAck } from '../../types.ts';

/**
 * Backoff of a sink's failed writes: the library's `RetryPolicy`, with `initialMs` 200 and
 * `maxMs` 30 000 by default here.
 */
export type WriteRetry = RetryPolicy;

/** The options every sink operator shares. */
export interface SinkCoreOptions {
  /** Backoff for failed writes: `initialMs` (default 200), `maxMs` (default 30 000), `maxAttempts` (default Infinity). */
  readonly retry?: WriteRetry;
  /** Called for every failed attempt (retriable or not), before waiting or erroring. */
  readonly onWriteError?: (err: Error, attempt: number) => void;
  /** Called for every acknowledged batch, before it is emitted. */
  readonly onWrite?: (ack: SinkAck) => void;
  /**
   * Where the waits between attempts run, and the clock of the ack's `durationMs` (default: the
   * async scheduler and `performance.now()`). A `TestScheduler` makes both virtual in tests.
   */
  readonly scheduler?: SchedulerLike;
}

/** What one write of a batch reports: its ack without the refs and the duration. */
export interface Written {
  /** The table version committed, if the table has versions (default `null`). */
  readonly version?: number | null;
  /** Rows written. */
  readonly rows: number;
  /** Rows not written because the table already held them. */
  readonly skipped: number;
  /** Bytes of data written, if the table counts them (default 0). */
  readonly bytes?: number;
}

/** A batch received in chunks, staged as they come and committed at its last chunk. */
export interface StagedBatch<Row> {
  /** Takes a chunk's rows (repeats dropped); throws on a value the table cannot take (not retriable). */
  add(rows: readonly Row[]): unknown;
  /** One attempt at committing the staged rows (called again after a retriable failure). */
  commit(signal: AbortSignal): ObservableInput<Written>;
  /** Drops what was staged: the batch will not be committed (the stream ended first). */
  discard(): void;
}

/** The table-specific half of a sink. */
export interface SinkTarget<Row> {
  /** The operator's name, for messages. */
  readonly sink: string;
  /** The ack's `table`. */
  readonly table: string;
  /**
   * Rows are Kafka records, and a second copy of a (topic, partition, offset) inside one batch
   * is dropped before writing (counted in the ack's `skipped`): defence in depth, as the Kafka
   * source never emits one (see `OffsetTracker`).
   */
  readonly dropRepeats: boolean;
  /**
   * The records a whole batch's ack lists, computed before its first attempt (a throw fails the
   * attempt, as bad input). Default: the rows written, repeats dropped (rows are then records).
   */
  refs?(batch: readonly Row[]): readonly RecordRef[];
  /** One attempt at writing a whole batch (repeats dropped), atomically. */
  write(rows: readonly Row[], signal: AbortSignal): ObservableInput<Written>;
  /**
   * Stages a batch that arrives in chunks (rows are then records; the ack lists them). Without
   * it, the chunks are collected and their batch written whole at its last chunk.
   */
  stage?(): StagedBatch<Row>;
}

/** A batch being received in chunks by a target that stages them. */
interface OpenStaged<Row> {
  readonly staged: StagedBatch<Row>;
  /** The staged records, by reference only (the rows themselves can go). */
  readonly refs: RecordRef[];
  readonly records: BatchRecords | undefined;
  received: number;
}

/**
 * A sink operator over `target`. Batches are written strictly one at a time, in order (a batch
 * that comes while another is written waits its turn, so acks come in batch order); empty
 * batches are skipped (no ack). Chunks (`bufferTime({ chunkRecords })`) are staged as they come
 * when the target can (`stage`), else collected, and their batch committed at its last chunk,
 * in order with the others; a partial batch is committed when the input completes. Retriable
 * failures are retried with jittered exponential backoff and a failed batch is never
 * acknowledged; a non-retriable failure, or running out of `maxAttempts`, errors the stream.
 * Upstream errors pass on at once. Unsubscribing drops whatever is staged and not committed.
 */
export function sinkCore<Row>(target: SinkTarget<Row>, options: SinkCoreOptions = {}): OperatorFunction<readonly Row[] | BatchChunk<Row>, SinkAck> {
  const { onWriteError } = options;
  const ackOf = (w: Written, refs: readonly RecordRef[], repeats: number): Omit<SinkAck, 'durationMs'> => ({
    table: target.table,
    version: w.version ?? null,
    rows: w.rows,
    skipped: w.skipped + repeats,
    bytes: w.bytes ?? 0,
    refs,
  });

  /** A whole batch's write: its refs and repeats are settled before its first attempt. */
  const whole = (batch: readonly Row[]): Observable<SinkAck> => {
    let prepared: { readonly rows: readonly Row[]; readonly refs: readonly RecordRef[]; readonly repeats: number } | undefined;
    return retryingWrite(
      target.sink,
      (signal) => {
        if (prepared === undefined) {
          const refs = target.refs?.(batch);
          if (target.dropRepeats) {
            const u = uniqueRecords(batch as unknown as readonly RecordRef[]);
            prepared = { rows: u.rows as unknown as readonly Row[], refs: refs ?? u.rows, repeats: u.dropped };
          } else {
            prepared = { rows: batch, refs: refs ?? (batch as unknown as readonly RecordRef[]), repeats: 0 };
          }
        }
        const { rows, refs, repeats } = prepared;
        return from(target.write(rows, signal)).pipe(map((w) => ackOf(w, refs, repeats)));
      },
      options,
    );
  };

  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      const jobs = new Subject<Observable<SinkAck>>();
      const writes = jobs.pipe(concatMap((job) => job)).subscribe(subscriber);
      /** The batch being received in chunks, when the target stages. */
      let open: OpenStaged<Row> | undefined;
      /** Rows of the batch being received in chunks, when the target does not stage. */
      let collected: Row[] = [];
      /** Staged batches not committed yet (the open one included): dropped if the stream ends early. */
      const pending = new Set<StagedBatch<Row>>();

      const close = (): void => {
        if (!target.stage) {
          const batch = collected;
          collected = [];
          if (batch.length) jobs.next(whole(batch));
          return;
        }
        if (!open) return;
        const { staged, refs, records, received } = open;
        open = undefined;
        if (received === 0) {
          pending.delete(staged);
          staged.discard();
          return;
        }
        jobs.next(
          retryingWrite(
            target.sink,
            (signal) =>
              from(staged.commit(signal)).pipe(
                map((w) => {
                  pending.delete(staged);
                  return ackOf(w, refs, records?.dropped ?? 0);
                }),
              ),
            options,
          ),
        );
      };

      const upstream = source.subscribe({
        next: (input) => {
          if (!isBatchChunk(input)) {
            if (input.length) jobs.next(whole(input));
            return;
          }
          if (!target.stage) {
            for (const row of input.records) collected.push(row);
            if (input.last) close();
            return;
          }
          let rows: readonly Row[];
          try {
            if (!open) {
              open = { staged: target.stage(), refs: [], records: target.dropRepeats ? new BatchRecords() : undefined, received: 0 };
              pending.add(open.staged);
            }
            rows = open.records ? open.records.keep(input.records as unknown as readonly RecordRef[], open.refs) as unknown as readonly Row[] : input.records;
            open.staged.add(rows);
          } catch (err) {
            // A value the table cannot take: bad input, not retriable (as from a whole write).
            // (The teardown drops the staged batches.)
            open = undefined;
            const error = asError(err);
            onWriteError?.(error, 1);
            subscriber.error(error);
            return;
          }
          open.received += rows.length;
          const { refs } = open;
          for (const r of rows as unknown as readonly RecordRef[]) refs.push({ topic: r.topic, partition: r.partition, offset: r.offset });
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
        collected = [];
      };
    });
}

/**
 * One batch's write as an Observable: runs `attempt` until it yields — retrying failures
 * `isRetriable` accepts, with jittered exponential backoff on `options.scheduler` — then emits
 * the ack (with the write's `durationMs`, retries included) and completes. A non-retriable
 * failure, or the last allowed attempt failing, errors it. Unsubscribing aborts `signal` and any
 * wait, and emits nothing more. The one retry of the sinks.
 */
function retryingWrite(
  sink: string,
  attempt: (signal: AbortSignal) => ObservableInput<Omit<SinkAck, 'durationMs'>>,
  options: SinkCoreOptions,
): Observable<SinkAck> {
  const { retry: policy = {}, onWriteError, onWrite, scheduler } = options;
  const now = scheduler ? (): number => scheduler.now() : (): number => performance.now();
  return new Observable<SinkAck>((subscriber) => {
    const abort = new AbortController();
    const started = now();
    let n = 0;
    const run = defer(() => {
      n += 1;
      return from(attempt(abort.signal)).pipe(
        take(1),
        throwIfEmpty(() => new Error(`${sink}: a write ended without a result`)),
        catchError((err: unknown) => {
          const error = asError(err);
          onWriteError?.(error, n);
          return throwError(() => error);
        }),
      );
    })
      .pipe(retryWith({ initialMs: 200, maxMs: 30_000, ...policy, ...(scheduler === undefined ? {} : { scheduler }) }))
      .subscribe({
        next: (written) => {
          const ack: SinkAck = { ...written, durationMs: now() - started };
          onWrite?.(ack);
          subscriber.next(ack);
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    return () => {
      run.unsubscribe();
      abort.abort(new Error(`${sink}: unsubscribed`));
    };
  });
}
