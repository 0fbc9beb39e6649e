import { Observable, Subject, asyncScheduler, from, map, mergeMap, pipe } from 'rxjs';
import type { ObservableInput, Observer, OperatorFunction, SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import type { RecordRef, SinkAck } from '../types.ts';
import { bufferTime } from './bufferTime.ts';

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
  readonly initialWatermark?: number | undefined;
  /**
   * Receives each late record (one whose window the watermark had already closed), e.g. to count
   * them. Completed with the source, errored with the output, untouched by unsubscribing.
   */
  readonly late?: Partial<Observer<T>> | undefined;
  /**
   * How far (ms, finite, ≥ 0) a record's event time may lie ahead of `now()`: a record further
   * ahead (a producer with a wrong clock, a timestamp of year 2099) neither moves the watermark
   * nor enters a window, and goes to `tooFarAhead`. Unset: no limit — one such record moves the
   * watermark past every open window and makes every later record of its source late.
   */
  readonly maxEventTimeLead?: number | undefined;
  /** The clock `maxEventTimeLead` is measured from, epoch ms; default `scheduler.now()`. */
  readonly now?: (() => number) | undefined;
  /**
   * Receives each record `maxEventTimeLead` keeps out (see there), e.g. to dead-letter it.
   * Completed with the source, errored with the output, untouched by unsubscribing.
   */
  readonly tooFarAhead?: Partial<Observer<T>> | undefined;
  /**
   * The watermark source of a record, e.g. `` (r) => `${r.topic}/${r.partition}` ``. Given: each
   * source has its own watermark (its largest event time − `watermarkDelay`) and the operator's
   * watermark is the minimum over the sources that are not idle (see `idleTimeout`), so a
   * partition read ahead of the others does not make their records late.
   */
  readonly watermarkBy?: ((record: T) => string) | undefined;
  /**
   * Sources expected before they send anything, as they change: e.g. the Kafka partitions
   * assigned to the consumer (`KafkaSource.assignment$`, `topic/partition` as `watermarkBy`
   * names them), subscribed with the operator. A source first named by an emission holds the
   * watermark back (its watermark is `-Infinity`) until it sends or goes idle; a source no longer
   * named (a partition revoked) stops holding it back once idle. Only used with `watermarkBy`.
   */
  readonly watermarkSources?: ObservableInput<Iterable<string>> | undefined;
  /**
   * A source with no record for this long (ms, scheduler time) no longer holds the watermark
   * back, until its next record; default 30_000 (> 0; `Infinity`: never idle). Idleness of an
   * expected source that has sent nothing counts from when it was first expected. Only used with
   * `watermarkBy`.
   */
  readonly idleTimeout?: number | undefined;
  /**
   * Scheduler for `now()` (idleness, and `maxEventTimeLead` unless `now` is given) and the
   * idleness check timer (with `watermarkBy`), and for `sinkTimeSpan`; default `asyncScheduler`.
   */
  readonly scheduler?: SchedulerLike | undefined;
}

/** Where `tumblingWindow` writes its windows, and so what it emits: acknowledgements of the records. */
export interface WindowSinkOptions<A> {
  /**
   * Writes closed windows and acknowledges the records they hold: each of its acks lists the
   * `refs` of the windows it made durable (`pgSink(table, { refsOf: (w) => w.refs })`, or any
   * sink inside `ackSources(sink, (w) => w.refs)`; several with `fanOut`). It receives the
   * windows one watermark advance closes as one array — never split, so windows of one end go
   * into one write — in order of end, then key.
   */
  readonly sink: OperatorFunction<readonly WindowResult<A>[], SinkAck>;
  /**
   * Closed windows are gathered for this long (ms, from the first) and handed to `sink` as one
   * array, whole groups in order (one write per batch rather than per watermark advance, e.g.
   * per minute of event time while catching up); 0 or unset: each group on its own.
   */
  readonly sinkTimeSpan?: number | undefined;
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
  /**
   * The source records the window covers, in arrival order (`refOf` of each): what writing the
   * window acknowledges.
   */
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

/**
 * A `watermarkBy` for Kafka records: their `topic/partition`, as `KafkaSource.assignment$` names
 * partitions (so the assignment can be the `watermarkSources`); the string is built once per run
 * of records of one partition, not per record.
 *
 * ## Example
 * ```ts
 * tumblingWindow({ size: 60_000, watermarkDelay: 10_000, key: (t) => t.account, eventTime: (t) => t.ts,
 *   aggregate: amountStats((t) => t.amount), watermarkBy: kafkaPartition(), watermarkSources: source.assignment$ });
 * ```
 *
 * @return A function from a record to its `topic/partition`.
 */
export function kafkaPartition(): (record: RecordRef) => string {
  let topic: string | undefined;
  let partition = -1;
  let key = '';
  return (record) => {
    if (record.partition !== partition || record.topic !== topic) {
      topic = record.topic;
      partition = record.partition;
      key = `${topic}/${partition}`;
    }
    return key;
  };
}

interface OpenWindow<A> {
  readonly key: string;
  value: A;
  readonly refs: RecordRef[];
}

/**
 * Event-time tumbling windows per key, closed by a watermark: e.g. per account, 1-minute
 * windows of count, sum, average and maximum amount — emitted, or written to a sink with every
 * record acknowledged.
 *
 * A record belongs to the window `[start, start + size)` of its key, where
 * `start = floor(t / size) * size` and `t` is its event time. The watermark is the largest event
 * time seen minus `watermarkDelay`, never less than `initialWatermark`, and never goes down. A
 * window is closed once, final, as soon as the watermark reaches its end (`watermark >= end`);
 * one record may close several windows, which come out ordered by end, then by key (string
 * order).
 *
 * Per-source watermarks: with `watermarkBy` (e.g. one source per Kafka partition) each source
 * has its own watermark, its largest event time minus `watermarkDelay`, and the operator's
 * watermark is `max(previous watermark, initialWatermark, min over the sources not idle)`: a
 * partition read far ahead of the others (a consumer catching up receives one partition's batch,
 * then the next's) does not close the windows the others still feed. A source sending nothing
 * for `idleTimeout` ms of scheduler time is idle and holds nothing back until its next record;
 * when every source is idle the watermark holds. Sources named by `watermarkSources` (the
 * partitions assigned, as they change) hold the watermark at `-Infinity` from when they are first
 * named until they send or go idle. Since idleness comes with time rather than records, while
 * windows are open a timer on `scheduler` re-evaluates the watermark every
 * `max(1, min(idleTimeout / 2, 1000))` ms and closes the windows it passes; the watermark is also
 * re-evaluated on each record, before its lateness test when a source has gone idle since the
 * last evaluation, and after it.
 *
 * Records too far ahead: with `maxEventTimeLead`, a record whose event time `t` is more than
 * that far ahead of the clock (`t - now() > maxEventTimeLead`; `now` defaults to the scheduler's)
 * is kept out altogether — one bad timestamp (year 2099, a producer with a wrong clock) would
 * otherwise move its source's watermark past every open window and make every later record of
 * that source late. It enters no window, moves no watermark, does not count as a record of its
 * source for idleness, and is passed to `tooFarAhead`. Later records are judged as if it had never
 * come. Unset, there is no limit.
 *
 * A record whose window is still open counts even when its event time is below the watermark.
 * A record whose window had already been closed when it arrived (`end <= watermark`) is late:
 * it is not added anywhere, `lateDropped` counts it, and it is passed to `late` if given.
 *
 * **Emitting windows** (no `sink`): each closed window is emitted; on completion of the source
 * the still-open windows are emitted too (same order, with `watermark < end`), then `late`
 * completes (and `tooFarAhead`), then the output. Every record ends up in exactly one of: the
 * `refs` of one emitted window, `late`, `tooFarAhead`.
 *
 * **Writing windows** (`sink`): the output is acknowledgements, ready for `fanOut` or
 * `commitOffsets`. The windows each watermark advance closes go to `sink` as one array (gathered
 * for `sinkTimeSpan` ms when given), and `sink`'s acks — which list the windows' `refs` —
 * are emitted; a late record is acknowledged at once, by an ack of its own
 * (`table: '(late)'`, `rows: 0`, `skipped: 1`, `refs: [its ref]`), since no window will ever
 * hold it. A record kept out by `maxEventTimeLead` is not acknowledged by the operator: it is
 * handed to `tooFarAhead`, which must see it acknowledged once it is durable where it goes — the
 * dead-letter observer of `withDeadLetters`, say, whose sink's ack covers it (so with a `sink`,
 * `maxEventTimeLead` requires `tooFarAhead`). Under `fanOut`, where each branch must acknowledge
 * every record it receives, keep such records out before the fan-out instead. Windows still
 * open when the source completes are not written: their records stay
 * unacknowledged, so Kafka delivers them again to the next run. The output completes when
 * `sink` has written what was closed.
 *
 * On an error — of the source, of a callback, of `watermarkSources`, of `sink`, or a bad event
 * time — `late`, `tooFarAhead` and the output error at once and open windows are dropped (their records were
 * never acknowledged, so Kafka delivers them again). Unsubscribing drops the open windows, tears
 * `sink` down and leaves `late` and `tooFarAhead` as they are. The idleness timer stops on each of these.
 *
 * `maxEventTimeLead` that is not a finite number ≥ 0 throws a `RangeError` at once; with a `sink`
 * but without `tooFarAhead`, a `TypeError`.
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
 * const source = fromKafka({ brokers, groupId: 'tx', topics: ['transactions'] });
 * transactions$.pipe(
 *   tumblingWindow({
 *     size: 60_000,
 *     watermarkDelay: 10_000,
 *     key: (t) => t.account,
 *     eventTime: (t) => t.ts,
 *     aggregate: amountStats((t) => t.amount),
 *     watermarkBy: kafkaPartition(),
 *     watermarkSources: source.assignment$,
 *     sink: pgSink(perAccount, { refsOf: (w) => w.refs }), // a window's ack covers its records
 *   }),
 *   commitOffsets(source), // past windows written and late records alike
 * );
 * ```
 * Without `sink`, the windows themselves:
 * ```ts
 * transactions$.pipe(
 *   tumblingWindow({ size: 60_000, watermarkDelay: 10_000, key: (t) => t.account, eventTime: (t) => t.ts,
 *     aggregate: amountStats((t) => t.amount) }),
 * ); // WindowResult<AmountStats>: { key, start, end, value: { count, sum, avg, max }, count, refs, … }
 * ```
 *
 * @param options Window `size`, `eventTime`, `key`, `watermarkDelay`, the `aggregate`, and
 * optionally `refOf`, `initialWatermark`, the `late` observer, the max-lead rule
 * (`maxEventTimeLead`, `now`, the `tooFarAhead` observer), per-source watermarks
 * (`watermarkBy`, `watermarkSources`, `idleTimeout`), `scheduler`, and where to write the windows
 * (`sink`, `sinkTimeSpan`).
 * @return A function that returns an Observable of the closed windows, or with `sink` of
 * acknowledgements of the records (windows written, late records).
 */
export function tumblingWindow<T extends RecordRef, A>(options: TumblingWindowOptions<T, A> & { readonly sink?: undefined }): OperatorFunction<T, WindowResult<A>>;
export function tumblingWindow<T, A>(
  options: TumblingWindowOptions<T, A> & { readonly refOf: (record: T) => RecordRef; readonly sink?: undefined },
): OperatorFunction<T, WindowResult<A>>;
export function tumblingWindow<T extends RecordRef, A>(options: TumblingWindowOptions<T, A> & WindowSinkOptions<A>): OperatorFunction<T, SinkAck>;
export function tumblingWindow<T, A>(
  options: TumblingWindowOptions<T, A> & WindowSinkOptions<A> & { readonly refOf: (record: T) => RecordRef },
): OperatorFunction<T, SinkAck>;
export function tumblingWindow<T, A>(
  options: TumblingWindowOptions<T, A> & { readonly sink?: WindowSinkOptions<A>['sink'] | undefined; readonly sinkTimeSpan?: number | undefined },
): OperatorFunction<T, WindowResult<A> | SinkAck> {
  const settings = resolve(options);
  const { sink } = options;
  if (sink === undefined) return pipe(closingWindows(settings, true), mergeMap((group) => group));
  if (settings.maxEventTimeLead !== undefined && settings.tooFarAhead?.next === undefined) {
    throw new TypeError(
      'tumblingWindow: with a sink, maxEventTimeLead needs a tooFarAhead observer: the records it keeps out are acknowledged by where that observer ' +
        'writes them (e.g. the dead-letter observer of withDeadLetters), not by the operator. Pass tooFarAhead, or leave maxEventTimeLead unset.',
    );
  }
  const sinkTimeSpan = options.sinkTimeSpan ?? 0;
  if (!(sinkTimeSpan >= 0)) throw new RangeError(`tumblingWindow: sinkTimeSpan must be a number >= 0, got ${sinkTimeSpan}`);
  const toSink: OperatorFunction<readonly WindowResult<A>[], SinkAck> =
    sinkTimeSpan > 0
      ? pipe(
          bufferTime<readonly WindowResult<A>[]>({ timeSpan: sinkTimeSpan, scheduler: settings.scheduler }),
          map((groups) => groups.flat()),
          sink,
        )
      : sink;
  return (source) =>
    new Observable<SinkAck>((subscriber) => {
      const closed = new Subject<readonly WindowResult<A>[]>();
      const written = closed.pipe(toSink).subscribe(subscriber);
      const windows = source
        .pipe(closingWindows(settings, false, (ref) => subscriber.next(lateAck(ref))))
        .subscribe({ next: (group) => closed.next(group), error: (err: unknown) => subscriber.error(err), complete: () => closed.complete() });
      return () => {
        windows.unsubscribe();
        written.unsubscribe();
      };
    });
}

/** The acknowledgement of a late record: no window will hold it. */
function lateAck(ref: RecordRef): SinkAck {
  return { table: '(late)', version: null, rows: 0, skipped: 1, bytes: 0, durationMs: 0, refs: [ref] };
}

/** `TumblingWindowOptions` checked, with their defaults. */
interface Settings<T, A> {
  readonly size: number;
  readonly eventTime: (record: T) => number;
  readonly keyOf: (record: T) => string;
  readonly watermarkDelay: number;
  readonly aggregate: WindowAggregate<T, A>;
  readonly refOf: (record: T) => RecordRef;
  readonly initialWatermark: number;
  readonly late: Partial<Observer<T>> | undefined;
  readonly maxEventTimeLead: number | undefined;
  readonly now: () => number;
  readonly tooFarAhead: Partial<Observer<T>> | undefined;
  readonly watermarkBy: ((record: T) => string) | undefined;
  readonly watermarkSources: ObservableInput<Iterable<string>> | undefined;
  readonly idleTimeout: number;
  readonly scheduler: SchedulerLike;
  /** How often open windows are checked for sources gone idle; none when sources never go idle. */
  readonly idleCheckPeriod: number | undefined;
}

function resolve<T, A>(options: TumblingWindowOptions<T, A>): Settings<T, A> {
  const { size, watermarkDelay } = options;
  const initialWatermark = options.initialWatermark ?? Number.NEGATIVE_INFINITY;
  const idleTimeout = options.idleTimeout ?? 30_000;
  if (!(Number.isFinite(size) && size > 0)) throw new RangeError(`tumblingWindow: size must be a finite number > 0, got ${size}`);
  if (!(Number.isFinite(watermarkDelay) && watermarkDelay >= 0)) {
    throw new RangeError(`tumblingWindow: watermarkDelay must be a finite number >= 0, got ${watermarkDelay}`);
  }
  if (Number.isNaN(initialWatermark) || initialWatermark === Number.POSITIVE_INFINITY) {
    throw new RangeError(`tumblingWindow: initialWatermark must be a number < Infinity, got ${initialWatermark}`);
  }
  if (!(idleTimeout > 0)) throw new RangeError(`tumblingWindow: idleTimeout must be a number > 0, got ${idleTimeout}`);
  const { maxEventTimeLead } = options;
  if (maxEventTimeLead !== undefined && !(Number.isFinite(maxEventTimeLead) && maxEventTimeLead >= 0)) {
    throw new RangeError(`tumblingWindow: maxEventTimeLead must be a finite number >= 0 (ms), or unset for no limit; got ${maxEventTimeLead}`);
  }
  const scheduler = options.scheduler ?? asyncScheduler;
  return {
    size,
    eventTime: options.eventTime,
    keyOf: options.key,
    watermarkDelay,
    aggregate: options.aggregate,
    refOf: options.refOf ?? defaultRefOf,
    initialWatermark,
    late: options.late,
    maxEventTimeLead,
    now: options.now ?? (() => scheduler.now()),
    tooFarAhead: options.tooFarAhead,
    watermarkBy: options.watermarkBy,
    watermarkSources: options.watermarkSources,
    idleTimeout,
    scheduler,
    idleCheckPeriod: Number.isFinite(idleTimeout) ? Math.max(1, Math.min(idleTimeout / 2, 1000)) : undefined,
  };
}

/**
 * The windowing: emits the windows each record (or idleness check) closes as one array, in
 * order of end then key; with `flushOpen`, the windows still open at completion as one more.
 * `onLate` hears of each late record's ref (after `late`).
 */
function closingWindows<T, A>(o: Settings<T, A>, flushOpen: boolean, onLate?: (ref: RecordRef) => void): OperatorFunction<T, WindowResult<A>[]> {
  const { size, eventTime, keyOf, watermarkDelay, aggregate, refOf, late, watermarkBy, idleTimeout, scheduler, idleCheckPeriod, maxEventTimeLead, now: clock, tooFarAhead } = o;
  return (source) =>
    new Observable<WindowResult<A>[]>((subscriber) => {
      /** Open windows by start, then by key. */
      const open = new Map<number, Map<string, OpenWindow<A>>>();
      /** Min-heap of the starts in `open`. */
      const starts: number[] = [];
      let watermark = o.initialWatermark;
      let lateDropped = 0;
      /** Windows closed and not emitted yet: emitted together once the record (or check) is handled. */
      let group: WindowResult<A>[] = [];
      /** Per watermark source (only with `watermarkBy`). */
      const sources = watermarkBy === undefined ? undefined : new Map<string, SourceState>();
      /** Earliest time a source not idle at the last evaluation goes idle. */
      let nextIdleAt = Number.POSITIVE_INFINITY;
      /** The idleness check, while there are open windows (only with `watermarkBy`). */
      let timer: Subscription | undefined;

      const emitGroup = (): void => {
        if (group.length === 0 || subscriber.closed) return;
        const out = group;
        group = [];
        subscriber.next(out);
      };

      /** Closes (and forgets) every open window whose end is at most `limit`. */
      const closeUpTo = (limit: number): void => {
        let first = starts[0];
        while (first !== undefined && first + size <= limit) {
          heapPop(starts);
          const windows = open.get(first) as Map<string, OpenWindow<A>>;
          open.delete(first);
          const end = first + size;
          for (const w of [...windows.values()].sort(byKey)) {
            group.push({ key: w.key, start: first, end, value: w.value, count: w.refs.length, refs: w.refs, watermark, lateDropped });
          }
          first = starts[0];
        }
      };

      const stopTimer = (): void => {
        timer?.unsubscribe();
        timer = undefined;
      };

      const fail = (err: unknown): void => {
        stopTimer();
        group = [];
        late?.error?.(err);
        tooFarAhead?.error?.(err);
        subscriber.error(err);
      };

      const dropLate = (record: T): void => {
        lateDropped += 1;
        late?.next?.(record);
        onLate?.(refOf(record));
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

      /** Sources named by `watermarkSources` that were not known start holding the watermark back now. */
      const expect = (known: Map<string, SourceState>, ids: Iterable<string>): void => {
        const now = scheduler.now();
        for (const id of ids) {
          if (known.has(id)) continue;
          known.set(id, { maxTime: Number.NEGATIVE_INFINITY, lastSeen: now });
          if (now + idleTimeout < nextIdleAt) nextIdleAt = now + idleTimeout;
        }
      };

      /**
       * Raises the watermark to the minimum of the watermarks of the sources not idle at `now`
       * (if that is higher; holds when all are idle) and closes the windows it passes.
       */
      const evaluate = (known: Map<string, SourceState>, now: number): void => {
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
          emitGroup();
          if (subscriber.closed) return;
          if (starts.length > 0) this.schedule(undefined, period);
          else timer = undefined;
        }, period);
      };

      const expected =
        sources === undefined || o.watermarkSources === undefined
          ? undefined
          : from(o.watermarkSources).subscribe({ next: (ids) => expect(sources, ids), error: fail });

      const subscription = source.subscribe({
        next: (record) => {
          try {
            const key = keyOf(record);
            const t = eventTime(record);
            if (typeof t !== 'number' || !Number.isFinite(t)) {
              fail(new TypeError(`tumblingWindow: event time ${String(t)} of a record with key ${JSON.stringify(key)} is not a finite number`));
              return;
            }
            // Too far ahead of the clock: kept out of the windows and the watermark altogether.
            if (maxEventTimeLead !== undefined && t - clock() > maxEventTimeLead) {
              tooFarAhead?.next?.(record);
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
                emitGroup();
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
            emitGroup();
            if (idleCheckPeriod !== undefined && starts.length > 0) startTimer(sources, idleCheckPeriod);
          } catch (err) {
            fail(err);
          }
        },
        error: fail,
        complete: () => {
          stopTimer();
          if (flushOpen) {
            closeUpTo(Number.POSITIVE_INFINITY);
            emitGroup();
          }
          if (subscriber.closed) return;
          late?.complete?.();
          tooFarAhead?.complete?.();
          subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        expected?.unsubscribe();
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
