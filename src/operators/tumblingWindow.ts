import { Observable } from 'rxjs';
import type { Observer, OperatorFunction } from 'rxjs';
import type { RecordRef } from '../types.ts';

/**
 * How the records of one window are folded into a value. `init` makes the value of a new
 * window (a fresh one per window); `add` folds one record in and returns the new value — it may
 * update `acc` in place and return it, since each window owns its value.
 */
export interface WindowAggregate<T, A> {
  readonly init: () => A;
  readonly add: (acc: A, record: T) => A;
}

export interface TumblingWindowOptions<T, A> {
  /** Window length in ms (finite, > 0). Windows are `[start, start + size)`, aligned to the epoch. */
  readonly size: number;
  /** Event time of a record, epoch ms; must be a finite number (see the operator's errors). */
  readonly eventTime: (record: T) => number;
  /** Grouping key of a record: each key has its own windows. */
  readonly key: (record: T) => string;
  /** The watermark trails the largest event time seen by this many ms (finite, ≥ 0). */
  readonly watermarkDelay: number;
  /** What each window computes, e.g. `amountStats((r) => r.amount)`. */
  readonly aggregate: WindowAggregate<T, A>;
  /**
   * Where a record came from, for `WindowResult.refs`. Default: the record's own `topic`,
   * `partition` and `offset` (copied, so a window does not keep whole records alive); a record
   * without them errors the stream.
   */
  readonly refOf?: (record: T) => RecordRef;
  /** Watermark to start from, e.g. the last `WindowResult.watermark` before a restart; default `-Infinity`. */
  readonly initialWatermark?: number;
  /**
   * Receives each late record (one whose window the watermark had already closed). Completed
   * with the source, errored with the output, untouched by unsubscribing.
   */
  readonly late?: Observer<T>;
}

/** One closed window of one key. */
export interface WindowResult<A> {
  readonly key: string;
  /** Window start, epoch ms (inclusive). */
  readonly start: number;
  /** Window end, epoch ms (exclusive): `start + size`. */
  readonly end: number;
  /** The aggregate's value over the window's records. */
  readonly value: A;
  /** Records in the window (≥ 1); `refs.length`. */
  readonly count: number;
  /** Where each record of the window came from, in arrival order. */
  readonly refs: readonly RecordRef[];
  /**
   * The watermark when the window was emitted: `>= end` when the watermark closed it, `< end`
   * when the source completed while it was still open.
   */
  readonly watermark: number;
  /** Late records dropped so far by this subscription (all keys), as of this emission. */
  readonly lateDropped: number;
}

/** What `amountStats` computes per window. */
export interface AmountStats {
  readonly count: number;
  readonly sum: number;
  /** `sum / count`. */
  readonly avg: number;
  readonly max: number;
}

interface MutableAmountStats {
  count: number;
  sum: number;
  avg: number;
  max: number;
}

/**
 * A `WindowAggregate` of count, sum, average and maximum of a numeric field. The average is
 * `sum / count` of JS numbers (no rounding). An amount that is not a finite number errors the
 * stream with a `TypeError` rather than turning the window's sum into `NaN`.
 *
 * ## Example
 * ```ts
 * transactions$.pipe(
 *   tumblingWindow({ size: 60_000, watermarkDelay: 10_000, key: (t) => t.account,
 *     eventTime: (t) => t.ts, aggregate: amountStats((t) => t.amount) }),
 * );
 * ```
 *
 * @param amountOf The number to aggregate of each record.
 * @return A `WindowAggregate` whose value is `{ count, sum, avg, max }`.
 */
export function amountStats<T>(amountOf: (record: T) => number): WindowAggregate<T, AmountStats> {
  return {
    init: (): AmountStats => ({ count: 0, sum: 0, avg: Number.NaN, max: Number.NEGATIVE_INFINITY }),
    add: (acc, record) => {
      const amount = amountOf(record);
      if (typeof amount !== 'number' || !Number.isFinite(amount)) {
        throw new TypeError(`amountStats: amount ${String(amount)} is not a finite number`);
      }
      const s = acc as MutableAmountStats;
      s.count += 1;
      s.sum += amount;
      s.avg = s.sum / s.count;
      if (amount > s.max) s.max = amount;
      return s;
    },
  };
}

interface OpenWindow<A> {
  readonly key: string;
  value: A;
  readonly refs: RecordRef[];
}

export function tumblingWindow<T extends RecordRef, A>(options: TumblingWindowOptions<T, A>): OperatorFunction<T, WindowResult<A>>;
export function tumblingWindow<T, A>(
  options: TumblingWindowOptions<T, A> & { readonly refOf: (record: T) => RecordRef },
): OperatorFunction<T, WindowResult<A>>;
/**
 * Event-time tumbling windows per key, closed by a watermark: e.g. per account, 1-minute
 * windows of count, sum, average and maximum amount.
 *
 * A record belongs to the window `[start, start + size)` of its key, where
 * `start = floor(t / size) * size` and `t` is its event time. The watermark is the largest event time seen minus `watermarkDelay`, never less than
 * `initialWatermark`, and never goes down. A window is emitted once, final, as soon as the
 * watermark reaches its end (`watermark >= end`); one record may close several windows, which
 * come out ordered by end, then by key (string order).
 *
 * A record whose window is still open counts even when its event time is below the watermark.
 * A record whose window had already been closed when it arrived (`end <= watermark`) is late:
 * it is not added anywhere, `lateDropped` counts it, and it is passed to `late` if given.
 *
 * Offsets: every record ends up either in the `refs` of exactly one emitted window or in
 * `late` — never both, never neither — so a sink that acknowledges the `refs` of what it wrote,
 * plus an acknowledgement of the late records, lets `commitOffsets` advance past every record.
 * Without `late`, late records are only counted and their offsets are never acknowledged, so a
 * pipeline that commits offsets must pass `late`.
 *
 * Lifecycle: on completion of the source the still-open windows are emitted (same order, with
 * `watermark < end`), `late` completes, then the output. On an error — of the source, of a
 * callback, or a bad event time — `late` and the output error at once and open windows are
 * dropped (their records were never acknowledged, so Kafka delivers them again). Unsubscribing
 * drops the open windows and leaves `late` as it is.
 *
 * Errors: an event time that is not a finite number (`NaN`, `±Infinity`, not a number) errors
 * the stream with a `TypeError` naming the record's key — it would otherwise put the record in
 * no window, or move the watermark past every window. So does a record without
 * `topic`/`partition`/`offset` when no `refOf` is given.
 *
 * State is one entry per open window (key × start); a closed window is deleted. Per record the
 * work is two map lookups; only when the watermark passes the earliest open window's end are
 * windows closed (a heap of open window starts keeps that end at hand).
 *
 * ## Example
 * ```ts
 * const late = new Subject<Transaction>();
 * transactions$.pipe(
 *   tumblingWindow({
 *     size: 60_000,
 *     watermarkDelay: 10_000,
 *     key: (t) => t.account,
 *     eventTime: (t) => t.ts,
 *     aggregate: amountStats((t) => t.amount),
 *     late,
 *   }),
 * ); // WindowResult<AmountStats>: { key, start, end, value: { count, sum, avg, max }, count, refs, … }
 * ```
 *
 * @param options Window `size`, `eventTime`, `key`, `watermarkDelay`, the `aggregate`, and
 * optionally `refOf`, `initialWatermark` and the `late` observer.
 * @return A function that returns an Observable of the closed windows.
 */
export function tumblingWindow<T, A>(options: TumblingWindowOptions<T, A>): OperatorFunction<T, WindowResult<A>> {
  const { size, eventTime, key: keyOf, watermarkDelay, aggregate, late } = options;
  const initialWatermark = options.initialWatermark ?? Number.NEGATIVE_INFINITY;
  const refOf = options.refOf ?? defaultRefOf;
  if (!(Number.isFinite(size) && size > 0)) throw new RangeError(`tumblingWindow: size must be a finite number > 0, got ${size}`);
  if (!(Number.isFinite(watermarkDelay) && watermarkDelay >= 0)) {
    throw new RangeError(`tumblingWindow: watermarkDelay must be a finite number >= 0, got ${watermarkDelay}`);
  }
  if (Number.isNaN(initialWatermark) || initialWatermark === Number.POSITIVE_INFINITY) {
    throw new RangeError(`tumblingWindow: initialWatermark must be a number < Infinity, got ${initialWatermark}`);
  }

  return (source) =>
    new Observable<WindowResult<A>>((subscriber) => {
      /** Open windows by start, then by key. */
      const open = new Map<number, Map<string, OpenWindow<A>>>();
      /** Min-heap of the starts in `open`. */
      const starts: number[] = [];
      let watermark = initialWatermark;
      let lateDropped = 0;

      const emitStart = (start: number, windows: Map<string, OpenWindow<A>>): void => {
        const end = start + size;
        const sorted = [...windows.values()].sort(byKey);
        for (const w of sorted) {
          if (subscriber.closed) return;
          subscriber.next({
            key: w.key,
            start,
            end,
            value: w.value,
            count: w.refs.length,
            refs: w.refs,
            watermark,
            lateDropped,
          });
        }
      };

      /** Emits (and forgets) every open window whose end is at most `limit`. */
      const closeUpTo = (limit: number): void => {
        let first = starts[0];
        while (first !== undefined && first + size <= limit && !subscriber.closed) {
          heapPop(starts);
          const windows = open.get(first) as Map<string, OpenWindow<A>>;
          open.delete(first);
          emitStart(first, windows);
          first = starts[0];
        }
      };

      const fail = (err: unknown): void => {
        late?.error(err);
        subscriber.error(err);
      };

      const subscription = source.subscribe({
        next: (record) => {
          try {
            const key = keyOf(record);
            const t = eventTime(record);
            if (typeof t !== 'number' || !Number.isFinite(t)) {
              fail(new TypeError(`tumblingWindow: event time ${String(t)} of a record with key ${JSON.stringify(key)} is not a finite number`));
              return;
            }
            const start = Math.floor(t / size) * size;
            if (start + size <= watermark) {
              lateDropped += 1;
              late?.next(record);
              return;
            }
            const ref = refOf(record);
            let windows = open.get(start);
            if (windows === undefined) {
              windows = new Map();
              open.set(start, windows);
              heapPush(starts, start);
            }
            let w = windows.get(key);
            if (w === undefined) {
              w = { key, value: aggregate.init(), refs: [] };
              windows.set(key, w);
            }
            w.value = aggregate.add(w.value, record);
            w.refs.push(ref);
            const candidate = t - watermarkDelay;
            if (candidate > watermark) {
              watermark = candidate;
              closeUpTo(watermark);
            }
          } catch (err) {
            fail(err);
          }
        },
        error: fail,
        complete: () => {
          closeUpTo(Number.POSITIVE_INFINITY);
          if (subscriber.closed) return;
          late?.complete();
          subscriber.complete();
        },
      });
      return subscription;
    });
}

function defaultRefOf(record: unknown): RecordRef {
  const r = record as Partial<RecordRef> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.topic !== 'string' ||
    typeof r.partition !== 'number' ||
    typeof r.offset !== 'bigint'
  ) {
    throw new TypeError('tumblingWindow: record has no topic/partition/offset; pass refOf');
  }
  return { topic: r.topic, partition: r.partition, offset: r.offset };
}

function byKey(a: { readonly key: string }, b: { readonly key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function heapPush(heap: number[], value: number): void {
  let i = heap.length;
  heap.push(value);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent] as number;
    if (p <= value) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  const n = heap.length;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && (heap[r] as number) < (heap[l] as number) ? r : l;
    const child = heap[c] as number;
    if (child >= last) break;
    heap[i] = child;
    i = c;
  }
  heap[i] = last;
}
