import { Observable, asyncScheduler, from } from 'rxjs';
import type { ObservableInput, OperatorFunction, SchedulerLike, Subscription } from 'rxjs';

export interface BufferTimeOptions<T> {
  /** Milliseconds from the first record of a batch until the batch is emitted; default 10 000. */
  readonly timeSpan?: number;
  /** Emit as soon as a batch holds this many records. */
  readonly maxRecords?: number;
  /** Emit as soon as a batch holds at least this many bytes (as counted by `sizeOf`). */
  readonly maxBytes?: number;
  /** Bytes of one record; default its `size` property, or 0. */
  readonly sizeOf?: (value: T) => number;
  /** Scheduler for the time span; default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /**
   * Each emission emits the partial batch at once (if it holds anything). To write batches early
   * while a Kafka source waits for acknowledgements, use `batchInto(sink, { pressure: source })`:
   * it cuts on the source's `saturated$` only while its sink has no write in progress.
   */
  readonly flush?: ObservableInput<unknown>;
  /**
   * Emit each batch in chunks of this many records as it fills (`BatchChunk`s, the batch's
   * last one marked), instead of one array when it is complete: a sink can encode a chunk at
   * once and let its records go, committing the batch at its last chunk (`deltaSink` does).
   * The batch itself — time span, `maxRecords`, `maxBytes`, `flush` — is cut as without it.
   * 0: whole batches, as without it (so a configured number can be passed as it is).
   */
  readonly chunkRecords?: number;
}

/**
 * What `bufferTime` emits for a `chunkRecords` of type `N`: arrays for 0, chunks for another
 * literal, either for a number known only at run time.
 */
export type Batches<T, N extends number> = N extends 0 ? T[] : number extends N ? T[] | BatchChunk<T> : BatchChunk<T>;

/** Part of a batch (see `BufferTimeOptions.chunkRecords`). */
export interface BatchChunk<T> {
  readonly records: T[];
  /** The batch's last chunk (its records may be empty when the batch ended on a chunk boundary). */
  readonly last: boolean;
}

/** Whether a value is a `BatchChunk` (rather than a whole batch as an array). */
export function isBatchChunk<T>(value: readonly T[] | BatchChunk<T>): value is BatchChunk<T> {
  return !Array.isArray(value);
}

/**
 * Collects records into micro-batches and emits a batch when `timeSpan` has elapsed since its
 * first record, or when it reaches `maxRecords` records or `maxBytes` bytes — whichever comes
 * first — or when `flush` emits. Never emits an empty batch.
 *
 * The timer starts with the first record of a batch, so an idle stream emits nothing and a
 * batch never waits longer than `timeSpan`. On completion the partial batch is emitted, then
 * the completion. On error the partial batch is discarded and the error passes on: those
 * records were never acknowledged by a sink, so their offsets are not committed and Kafka
 * delivers them again after a restart — nothing is lost, but nothing is emitted after an error.
 * Unsubscribing cancels the timer and drops the partial batch the same way.
 *
 * ## Example
 * ```ts
 * records$.pipe(
 *   bufferTime({ timeSpan: 10_000, maxRecords: 50_000, maxBytes: 64 << 20 }),
 *   deltaSink(table),
 * );
 * ```
 *
 * With `chunkRecords`, each batch is emitted in chunks as it fills:
 * ```ts
 * records$.pipe(
 *   bufferTime({ timeSpan: 10_000, maxRecords: 50_000, chunkRecords: 10_000 }),
 *   deltaSink(table), // encodes each chunk on arrival, commits at the batch's last chunk
 * );
 * ```
 *
 * A `chunkRecords` read from configuration (a `number`, 0 for whole batches) gives
 * `T[] | BatchChunk<T>`, which `deltaSink` and `pgSink` take as they come.
 *
 * @param options `timeSpan` (ms, default 10 000), `maxRecords`, `maxBytes`, `sizeOf`, `scheduler`, `flush`, `chunkRecords`.
 * @return A function that returns an Observable of non-empty arrays of records (or, with
 * `chunkRecords` > 0, of `BatchChunk`s).
 */
export function bufferTime<T>(options?: BufferTimeOptions<T> & { readonly chunkRecords?: undefined }): OperatorFunction<T, T[]>;
export function bufferTime<T, N extends number = number>(options: BufferTimeOptions<T> & { readonly chunkRecords: N }): OperatorFunction<T, Batches<T, N>>;
export function bufferTime<T>(options: BufferTimeOptions<T>): OperatorFunction<T, T[] | BatchChunk<T>>;
export function bufferTime<T>(options: BufferTimeOptions<T> = {}): OperatorFunction<T, T[] | BatchChunk<T>> {
  const {
    timeSpan = 10_000,
    maxRecords = Number.POSITIVE_INFINITY,
    maxBytes = Number.POSITIVE_INFINITY,
    sizeOf = defaultSizeOf,
    scheduler = asyncScheduler,
  } = options;
  if (!(timeSpan > 0)) throw new RangeError('bufferTime: timeSpan must be > 0');
  if (!(maxRecords >= 1)) throw new RangeError('bufferTime: maxRecords must be >= 1');
  if (!(maxBytes > 0)) throw new RangeError('bufferTime: maxBytes must be > 0');
  if (options.chunkRecords !== undefined && !(Number.isInteger(options.chunkRecords) && options.chunkRecords >= 0)) {
    throw new RangeError(`bufferTime: chunkRecords must be a whole number >= 0 (0: whole batches), got ${options.chunkRecords}`);
  }
  const chunkRecords = options.chunkRecords === 0 ? undefined : options.chunkRecords;
  const countBytes = maxBytes !== Number.POSITIVE_INFINITY;

  return (source) =>
    new Observable<T[] | BatchChunk<T>>((subscriber) => {
      /** Records of the batch not emitted yet (with `chunkRecords`: of its current chunk). */
      let batch: T[] = [];
      /** Records in the whole batch. */
      let count = 0;
      let bytes = 0;
      let timer: Subscription | undefined;

      const flush = (): void => {
        timer?.unsubscribe();
        timer = undefined;
        if (count === 0) return;
        const out = batch;
        batch = [];
        count = 0;
        bytes = 0;
        subscriber.next(chunkRecords === undefined ? out : { records: out, last: true });
      };

      const flushes = options.flush === undefined ? undefined : from(options.flush).subscribe({ next: flush, error: (err: unknown) => subscriber.error(err) });
      const subscription = source.subscribe({
        next: (value) => {
          batch.push(value);
          count += 1;
          if (countBytes) bytes += sizeOf(value);
          if (count >= maxRecords || (countBytes && bytes >= maxBytes)) {
            flush();
            return;
          }
          if (timer === undefined) timer = scheduler.schedule(flush, timeSpan);
          if (chunkRecords !== undefined && batch.length >= chunkRecords) {
            const out = batch;
            batch = [];
            subscriber.next({ records: out, last: false });
          }
        },
        error: (err: unknown) => {
          batch = [];
          count = 0;
          subscriber.error(err);
        },
        complete: () => {
          flush();
          subscriber.complete();
        },
      });

      return () => {
        flushes?.unsubscribe();
        subscription.unsubscribe();
        timer?.unsubscribe();
        timer = undefined;
        batch = [];
        count = 0;
      };
    });
}

function defaultSizeOf(value: unknown): number {
  if (typeof value === 'object' && value !== null) {
    const size = (value as { readonly size?: unknown }).size;
    if (typeof size === 'number') return size;
  }
  return 0;
}
