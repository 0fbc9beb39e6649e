import { Observable, asyncScheduler } from 'rxjs';
import type { Observer, OperatorFunction, SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
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
  /**
   * The watermark source of a record, e.g. `` (r) => `${r.topic}/${r.partition}` ``. Given: each
   * source has its own watermark (its largest event time − `watermarkDelay`) and the operator's
   * watermark is the minimum over the sources that are not idle (see `idleTimeout`), so a
   * partition read ahead of the others does not make their records late.
   */
  readonly watermarkBy?: (record: T) => string;
  /**
   * Sources expected before they send anything (e.g. the Kafka partitions assigned), asked at
   * every watermark evaluation (each record and each idleness check), so it should be cheap. An
   * expected source that has sent nothing yet holds the watermark back (its watermark is
   * `-Infinity`) until it sends or goes idle. Only used with `watermarkBy`.
   */
  readonly watermarkSources?: () => Iterable<string>;
  /**
   * A source with no record for this long (ms, scheduler time) no longer holds the watermark
   * back, until its next record; default 30_000 (> 0; `Infinity`: never idle). Idleness of an
   * expected source that has sent nothing counts from when it was first expected. Only used with
   * `watermarkBy`.
   */
  readonly idleTimeout?: number;
  /** Scheduler for `now()` and the idleness check timer; default `asyncScheduler`. Only used with `watermarkBy`. */
  readonly scheduler?: SchedulerLike;
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
 * Per-source watermarks: with `watermarkBy` (e.g. one source per Kafka partition) each source
 * has its own watermark, its largest event time minus `watermarkDelay`, and the operator's
 * watermark is `max(previous watermark, initialWatermark, min over the sources not idle)`: a
 * partition read far ahead of the others (a consumer catching up receives one partition's batch,
 * then the next's) does not close the windows the others still feed. A source sending nothing
 * for `idleTimeout` ms of scheduler time is idle and holds nothing back until its next record;
 * when every source is idle the watermark holds. Sources listed by `watermarkSources` hold the
 * watermark at `-Infinity` from when they are first listed until they send or go idle. Since
 * idleness comes with time rather than records, while windows are open a timer on `scheduler`
 * re-evaluates the watermark every `max(1, min(idleTimeout / 2, 1000))` ms and emits the
 * windows it passes; the watermark is also re-evaluated on each record, before its lateness test
 * when a source has gone idle since the last evaluation, and after it.
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
 * drops the open windows and leaves `late` as it is. The idleness timer stops on each of these.
 *
 * Errors: an event time that is not a finite number (`NaN`, `±Infinity`, not a number) errors
 * the stream with a `TypeError` naming the record's key — it would otherwise put the record in
 * no window, or move the watermark past every window. So does a record without
 * `topic`/`partition`/`offset` when no `refOf` is given.
 *
 * State is one entry per open window (key × start); a closed window is deleted. Per record the
 * work is two map lookups; only when the watermark passes the earliest open window's end are
 * windows closed (a heap of open window starts keeps that end at hand). With `watermarkBy` there
 * is also one entry per source (never forgotten), and each record scans them for the minimum.
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
 * optionally `refOf`, `initialWatermark`, the `late` observer, and per-source watermarks
 * (`watermarkBy`, `watermarkSources`, `idleTimeout`, `scheduler`).
 * @return A function that returns an Observable of the closed windows.
 */
export function tumblingWindow<T extends RecordRef, A>(options: TumblingWindowOptions<T, A>): OperatorFunction<T, WindowResult<A>>;
export function tumblingWindow<T, A>(
  options: TumblingWindowOptions<T, A> & { readonly refOf: (record: T) => RecordRef },
): OperatorFunction<T, WindowResult<A>>;
export function tumblingWindow<T, A>(options: TumblingWindowOptions<T, A>): OperatorFunction<T, WindowResult<A>> {
  const { size, eventTime, key: keyOf, watermarkDelay, aggregate, late, watermarkBy, watermarkSources } = options;
  const initialWatermark = options.initialWatermark ?? Number.NEGATIVE_INFINITY;
  const refOf = options.refOf ?? defaultRefOf;
  const idleTimeout = options.idleTimeout ?? 30_000;
  const scheduler = options.scheduler ?? asyncScheduler;
  if (!(Number.isFinite(size) && size > 0)) throw new RangeError(`tumblingWindow: size must be a finite number > 0, got ${size}`);
  if (!(Number.isFinite(watermarkDelay) && watermarkDelay >= 0)) {
    throw new RangeError(`tumblingWindow: watermarkDelay must be a finite number >= 0, got ${watermarkDelay}`);
  }
  if (Number.isNaN(initialWatermark) || initialWatermark === Number.POSITIVE_INFINITY) {
    throw new RangeError(`tumblingWindow: initialWatermark must be a number < Infinity, got ${initialWatermark}`);
  }
  if (!(idleTimeout > 0)) throw new RangeError(`tumblingWindow: idleTimeout must be a number > 0, got ${idleTimeout}`);
  /** How often open windows are checked for sources gone idle; none when sources never go idle. */
  const idleCheckPeriod = Number.isFinite(idleTimeout) ? Math.max(1, Math.min(idleTimeout / 2, 1000)) : undefined;

  return (source) =>
    new Observable<WindowResult<A>>((subscriber) => {
      /** Open windows by start, then by key. */
      const open = new Map<number, Map<string, OpenWindow<A>>>();
      /** Min-heap of the starts in `open`. */
      const starts: number[] = [];
      let watermark = initialWatermark;
      let lateDropped = 0;
      /** Per watermark source (only with `watermarkBy`). */
      const sources = watermarkBy === undefined ? undefined : new Map<string, SourceState>();
      /** Earliest time a source not idle at the last evaluation goes idle. */
      let nextIdleAt = Number.POSITIVE_INFINITY;
      /** The idleness check, while there are open windows (only with `watermarkBy`). */
      let timer: Subscription | undefined;

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

      const stopTimer = (): void => {
        timer?.unsubscribe();
        timer = undefined;
      };

      const fail = (err: unknown): void => {
        stopTimer();
        late?.error(err);
        subscriber.error(err);
      };

      const dropLate = (record: T): void => {
        lateDropped += 1;
        late?.next(record);
      };

      const addToWindow = (record: T, key: string, start: number): void => {
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
      };

      /**
       * Raises the watermark to the minimum of the watermarks of the sources not idle at `now`
       * (if that is higher; holds when all are idle) and closes the windows it passes.
       */
      const evaluate = (known: Map<string, SourceState>, now: number): void => {
        if (watermarkSources !== undefined) {
          for (const id of watermarkSources()) {
            if (!known.has(id)) known.set(id, { maxTime: Number.NEGATIVE_INFINITY, lastSeen: now });
          }
        }
        let min = Number.POSITIVE_INFINITY;
        let idleAt = Number.POSITIVE_INFINITY;
        for (const s of known.values()) {
          const until = s.lastSeen + idleTimeout;
          if (now >= until) continue;
          if (until < idleAt) idleAt = until;
          const sourceWatermark = s.maxTime - watermarkDelay;
          if (sourceWatermark < min) min = sourceWatermark;
        }
        nextIdleAt = idleAt;
        if (min !== Number.POSITIVE_INFINITY && min > watermark) {
          watermark = min;
          closeUpTo(watermark);
        }
      };

      const startTimer = (known: Map<string, SourceState>, period: number): void => {
        if (timer !== undefined || subscriber.closed) return;
        timer = scheduler.schedule(function (this: SchedulerAction<undefined>) {
          try {
            evaluate(known, scheduler.now());
          } catch (err) {
            fail(err);
            return;
          }
          if (subscriber.closed) return;
          if (starts.length > 0) this.schedule(undefined, period);
          else timer = undefined;
        }, period);
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
            if (sources === undefined || watermarkBy === undefined) {
              if (start + size <= watermark) {
                dropLate(record);
                return;
              }
              addToWindow(record, key, start);
              const candidate = t - watermarkDelay;
              if (candidate > watermark) {
                watermark = candidate;
                closeUpTo(watermark);
              }
              return;
            }
            const id = watermarkBy(record);
            const now = scheduler.now();
            // Sources gone idle since the last evaluation count for this record's lateness.
            if (now >= nextIdleAt) evaluate(sources, now);
            if (start + size <= watermark) {
              dropLate(record);
            } else {
              addToWindow(record, key, start);
            }
            const s = sources.get(id);
            if (s === undefined) {
              sources.set(id, { maxTime: t, lastSeen: now });
            } else {
              if (t > s.maxTime) s.maxTime = t;
              s.lastSeen = now;
            }
            evaluate(sources, now);
            if (idleCheckPeriod !== undefined && starts.length > 0) startTimer(sources, idleCheckPeriod);
          } catch (err) {
            fail(err);
          }
        },
        error: fail,
        complete: () => {
          stopTimer();
          closeUpTo(Number.POSITIVE_INFINITY);
          if (subscriber.closed) return;
          late?.complete();
          subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        stopTimer();
      };
    });
}

/** What the operator knows of one watermark source. */
interface SourceState {
  /** Largest event time seen, `-Infinity` before the first record. */
  maxTime: number;
  /** Scheduler time of the last record, or of when the source was first expected. */
  lastSeen: number;
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
