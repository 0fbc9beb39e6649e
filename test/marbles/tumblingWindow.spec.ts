import { Subject, concatMap, delay, from, map, of, take, throwError } from 'rxjs';
import type { OperatorFunction, SchedulerAction, SchedulerLike } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { amountStats, kafkaPartition, tumblingWindow } from '../../src/operators/tumblingWindow.ts';
import { deadLetterRowOf } from '../../src/operators/routeErrors.ts';
import { withDeadLetters } from '../../src/operators/withDeadLetters.ts';
import type { AmountStats, TumblingWindowOptions, WindowResult } from '../../src/operators/tumblingWindow.ts';
import type { DeadLetterRow, RecordRef, SinkAck } from '../../src/types.ts';
import { testScheduler } from './records.ts';

interface Tx extends RecordRef {
  readonly account: string;
  /** Event time, epoch ms. */
  readonly ts: number;
  readonly amount: number;
}

const tx = (offset: number, account: string, ts: number, amount = 1): Tx => ({
  topic: 'transactions',
  partition: 0,
  offset: BigInt(offset),
  account,
  ts,
  amount,
});

const ref = (offset: number): RecordRef => ({ topic: 'transactions', partition: 0, offset: BigInt(offset) });

/** A record of partition `partition`. */
const ptx = (partition: number, offset: number, account: string, ts: number, amount = 1): Tx => ({
  ...tx(offset, account, ts, amount),
  partition,
});

/** One watermark source per partition: `p0`, `p1`, … */
const byPartition = (r: Tx): string => `p${r.partition}`;

type Extra = Pick<
  TumblingWindowOptions<Tx, AmountStats>,
  'initialWatermark' | 'late' | 'watermarkBy' | 'watermarkSources' | 'idleTimeout' | 'scheduler' | 'maxEventTimeLead' | 'now' | 'tooFarAhead'
>;

/** Windows of 10 ms per account, amount stats. */
const windows = (watermarkDelay: number, extra: Extra = {}) =>
  tumblingWindow<Tx, AmountStats>({
    size: 10,
    watermarkDelay,
    key: (r) => r.account,
    eventTime: (r) => r.ts,
    aggregate: amountStats((r) => r.amount),
    ...extra,
  });

/** `key@start:offsets` of a window, e.g. `x@0:0,2`. */
const show = (w: WindowResult<unknown>): string => `${w.key}@${w.start}:${w.refs.map((r) => r.offset).join(',')}`;

describe('tumblingWindow', () => {
  it('emits a window at the frame the watermark reaches its end, then flushes open ones on completion', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 9, 3), c: tx(2, 'x', 10), d: tx(3, 'x', 19) };
      const e1 = hot('  -a-b-c-d-|', values);
      const expected = '-----w---(v|)';
      expectObservable(e1.pipe(windows(0))).toBe(expected, {
        w: {
          key: 'x',
          start: 0,
          end: 10,
          value: { count: 2, sum: 4, avg: 2, max: 3 },
          count: 2,
          refs: [ref(0), ref(1)],
          watermark: 10,
          lateDropped: 0,
        },
        v: {
          key: 'x',
          start: 10,
          end: 20,
          value: { count: 2, sum: 2, avg: 1, max: 1 },
          count: 2,
          refs: [ref(2), ref(3)],
          watermark: 19,
          lateDropped: 0,
        },
      });
      expectSubscriptions(e1.subscriptions).toBe('^--------!');
    });
  });

  it('trails the watermark by the delay: a window closes only once max event time − delay >= end', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 12), c: tx(2, 'x', 13), d: tx(3, 'x', 11) };
      // b: watermark 9 (< 10); c: 10 closes [0,10); d (event time 11) leaves the watermark at 10.
      const e1 = hot('  -a-b-c-d-|', values);
      const expected = '-----w---(v|)';
      expectObservable(e1.pipe(windows(3), map(show))).toBe(expected, { w: 'x@0:0', v: 'x@10:1,2,3' });
    });
  });

  it('keeps windows per key; windows closing on one record come out by end, then by key', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = {
        a: tx(0, 'y', 2),
        b: tx(1, 'x', 15),
        c: tx(2, 'x', 3),
        d: tx(3, 'y', 11),
        e: tx(4, 'z', 45), // watermark 25: closes the ends 10 and 20 of x and y
      };
      const e1 = hot('  -a-b-c-d-e-------|', values);
      const expected = '---------(pqrs)--(t|)';
      expectObservable(e1.pipe(windows(20), map(show))).toBe(expected, {
        p: 'x@0:2',
        q: 'y@0:0',
        r: 'x@10:1',
        s: 'y@10:3',
        t: 'z@40:4',
      });
    });
  });

  it('counts a record below the watermark while its window is still open', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 8), b: tx(1, 'x', 14), c: tx(2, 'x', 2), d: tx(3, 'x', 15) };
      // After b the watermark is 9: c (event time 2) is below it, but [0,10) is still open.
      const e1 = hot('  -a-b-c-d-|', values);
      const expected = '-------w-(v|)';
      expectObservable(e1.pipe(windows(5, { late }), map((w) => `${show(w)} wm${w.watermark} late${w.lateDropped}`))).toBe(
        expected,
        { w: 'x@0:0,2 wm10 late0', v: 'x@10:1,3 wm10 late0' },
      );
      expectObservable(late).toBe('---------|');
    });
  });

  it('drops a record whose window is closed, counts it and sends it to late', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = {
        a: tx(0, 'x', 8),
        b: tx(1, 'x', 15), // watermark 10: closes [0,10)
        c: tx(2, 'x', 3), // late
        d: tx(3, 'y', 9), // late too: the watermark is per stream, not per key
        e: tx(4, 'x', 10), // on time: [10,20) is open
      };
      const e1 = hot('  -a-b-c-d-e-|', values);
      const expected = '---w-------(v|)';
      expectObservable(e1.pipe(windows(5, { late }), map((w) => `${show(w)} late${w.lateDropped}`))).toBe(expected, {
        w: 'x@0:0 late0',
        v: 'x@10:1,4 late2',
      });
      expectObservable(late).toBe('-----c-d---|', values);
    });
  });

  it('starts from initialWatermark: windows it has passed take no records', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 15), b: tx(1, 'x', 20), c: tx(2, 'x', 25) };
      const e1 = hot('  -a-b-c-|', values);
      const expected = '-------(v|)';
      expectObservable(
        e1.pipe(
          windows(0, { initialWatermark: 20, late }),
          map((w) => `${show(w)} wm${w.watermark} late${w.lateDropped}`),
        ),
      ).toBe(expected, { v: 'x@20:1,2 wm25 late1' });
      expectObservable(late).toBe('-a-----|', values);
    });
  });

  it('never lowers the watermark', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      // b moves the watermark to 30; c's smaller event time must not take it back to 15,
      // so d (window [20,30)) is late.
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 30), c: tx(2, 'x', 15), d: tx(3, 'x', 25) };
      const e1 = hot('  -a-b-c-d-|', values);
      expectObservable(e1.pipe(windows(0, { late }), map(show))).toBe('---w-----(v|)', { w: 'x@0:0', v: 'x@30:1' });
      expectObservable(late).toBe('-----c-d-|', values);
    });
  });

  it('on completion emits open windows by end then key, then completes late, then the output', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'b', 25), b: tx(1, 'a', 12), c: tx(2, 'b', 3), d: tx(3, 'a', 27), e: tx(4, 'c', 5) };
      const e1 = hot('  -a-b-c-d-e-|', values);
      const expected = '-----------(pqrst|)';
      expectObservable(e1.pipe(windows(1000), map(show))).toBe(expected, {
        p: 'b@0:2',
        q: 'c@0:4',
        r: 'a@10:1',
        s: 'a@20:3',
        t: 'b@20:0',
      });
    });
    const log: string[] = [];
    const late = { next: (r: Tx) => log.push(`late ${r.offset}`), error: () => log.push('late error'), complete: () => log.push('late complete') };
    from([tx(0, 'x', 50), tx(1, 'x', 5), tx(2, 'y', 12)])
      .pipe(windows(0, { late }))
      .subscribe({ next: (w) => log.push(show(w)), complete: () => log.push('complete') });
    expect(log).toEqual(['late 1', 'late 2', 'x@50:0', 'late complete', 'complete']);
  });

  it('errors at once on a source error: open windows are dropped, late is errored', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'y', 2) };
      const e1 = hot('  -a-b-#', values, new Error('broker gone'));
      expectObservable(e1.pipe(windows(0, { late }))).toBe('-----#', undefined, new Error('broker gone'));
      expectObservable(late).toBe('-----#', undefined, new Error('broker gone'));
      expectSubscriptions(e1.subscriptions).toBe('^----!');
    });
  });

  it('unsubscribing tears the source down and leaves late alone', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 2), c: tx(2, 'x', 20) };
      const e1 = hot('  -a-b-c-|', values);
      expectObservable(e1.pipe(windows(0, { late })), '----!').toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^---!');
      expectObservable(late).toBe('-');
    });
  });

  it('stops emitting as soon as the consumer unsubscribes in the middle of closing windows', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'y', 2), c: tx(2, 'x', 50) };
      const e1 = hot('  -a-b-c-|', values);
      expectObservable(e1.pipe(windows(0), take(1), map(show))).toBe('-----(p|)', { p: 'x@0:0' });
      expectSubscriptions(e1.subscriptions).toBe('^----!');
    });
  });

  it('errors with a TypeError naming the key on an event time that is not a finite number', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'acct-7', Number.NaN), c: tx(2, 'x', 20) };
      const e1 = hot('  -a-b-c-|', values);
      const err = new TypeError('tumblingWindow: event time NaN of a record with key "acct-7" is not a finite number');
      expectObservable(e1.pipe(windows(0, { late }))).toBe('---#', undefined, err);
      expectObservable(late).toBe('---#', undefined, err);
      expectSubscriptions(e1.subscriptions).toBe('^--!');

      const e2 = hot('-a-b-|', { a: tx(0, 'x', 1), b: tx(1, 'y', Number.POSITIVE_INFINITY) });
      expectObservable(e2.pipe(windows(0))).toBe(
        '---#',
        undefined,
        new TypeError('tumblingWindow: event time Infinity of a record with key "y" is not a finite number'),
      );
    });
  });

  it('amountStats: count, sum, avg = sum / count and max per window, a fresh value per window', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1, 5), b: tx(1, 'y', 2, -3), c: tx(2, 'x', 3, 1.5), d: tx(3, 'y', 4, -1), e: tx(4, 'x', 5, 10) };
      const e1 = hot('  -a-b-c-d-e-|', values);
      expectObservable(e1.pipe(windows(0), map((w) => w.value))).toBe('-----------(xy|)', {
        x: { count: 3, sum: 16.5, avg: 5.5, max: 10 },
        y: { count: 2, sum: -4, avg: -2, max: -1 },
      });
      // A bad amount errors instead of turning the sum into NaN.
      const e2 = hot('-a-b-|', { a: tx(0, 'x', 1, 5), b: tx(1, 'x', 2, Number.NaN) });
      expectObservable(e2.pipe(windows(0))).toBe('---#', undefined, new TypeError('amountStats: amount NaN is not a finite number'));
    });
    const stats = amountStats((n: number) => n);
    expect(stats.init()).not.toBe(stats.init());
  });

  it('takes refs from refOf, or copies topic/partition/offset, and errors when a record has none', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      type Plain = { id: number; t: number };
      const count = { init: () => 0, add: (n: number) => n + 1 };
      const base = { size: 10, watermarkDelay: 0, key: () => 'k', eventTime: (r: Plain) => r.t, aggregate: count };
      const e1 = hot('-a-b-|', { a: { id: 7, t: 1 }, b: { id: 8, t: 2 } });
      const refOf = (r: Plain): RecordRef => ({ topic: 'plain', partition: 3, offset: BigInt(r.id) });
      expectObservable(e1.pipe(tumblingWindow({ ...base, refOf }), map((w) => [w.value, w.refs]))).toBe('-----(v|)', {
        v: [2, [{ topic: 'plain', partition: 3, offset: 7n }, { topic: 'plain', partition: 3, offset: 8n }]],
      });
      // @ts-expect-error: a record type without topic/partition/offset needs refOf
      const noRefs: OperatorFunction<Plain, WindowResult<number>> = tumblingWindow(base);
      expectObservable(e1.pipe(noRefs)).toBe(
        '-#',
        undefined,
        new TypeError('tumblingWindow: record has no topic/partition/offset; pass refOf'),
      );
    });
    // Default refs are copies: a window keeps no whole record (payload) alive.
    const results: WindowResult<AmountStats>[] = [];
    const record = { ...tx(5, 'x', 1), payload: new Uint8Array(1000) };
    from([record]).pipe(windows(0)).subscribe((w) => results.push(w));
    expect(results[0]?.refs).toEqual([ref(5)]);
    expect(results[0]?.refs[0]).not.toBe(record);
  });

  it('rejects a bad size, delay or initial watermark when the operator is made', () => {
    const base = { key: (r: Tx) => r.account, eventTime: (r: Tx) => r.ts, aggregate: amountStats((r: Tx) => r.amount) };
    expect(() => tumblingWindow({ ...base, size: 0, watermarkDelay: 0 })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: Number.NaN, watermarkDelay: 0 })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: -1 })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, initialWatermark: Number.NaN })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, initialWatermark: 5 })).not.toThrow();
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, idleTimeout: 0 })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, idleTimeout: -5 })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, idleTimeout: Number.NaN })).toThrow(RangeError);
    expect(() => tumblingWindow({ ...base, size: 10, watermarkDelay: 0, idleTimeout: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});

describe('tumblingWindow with per-source watermarks (watermarkBy)', () => {
  const withWm = (w: WindowResult<unknown>): string => `${show(w)} wm${w.watermark}`;

  it('a source racing ahead does not close the windows another still feeds: its records are not late', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const late = new Subject<Tx>();
      const values = {
        a: ptx(0, 0, 'x', 1),
        b: ptx(1, 1, 'x', 2),
        c: ptx(0, 2, 'x', 30), // p0 races ahead: one watermark would be 30 and close [0,10) here
        d: ptx(1, 3, 'x', 5), // p1 lags: [0,10) is still open
        e: ptx(1, 4, 'x', 15), // min(30, 15) = 15 closes [0,10)
        f: ptx(1, 5, 'x', 31), // min(30, 31) = 30 closes [10,20)
      };
      const e1 = hot('  -a-b-c-d-e-f-|', values);
      const expected = '---------p-q-(r|)';
      expectObservable(e1.pipe(windows(0, { late, watermarkBy: byPartition }), map(withWm))).toBe(expected, {
        p: 'x@0:0,1,3 wm15',
        q: 'x@10:4 wm30',
        r: 'x@30:2,5 wm30',
      });
      expectObservable(late).toBe('-------------|');
      expectSubscriptions(e1.subscriptions).toBe('^------------!');
    });
  });

  it('takes the minimum over the sources: windows close once every source has passed their end', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = {
        a: ptx(0, 0, 'x', 5),
        b: ptx(1, 1, 'y', 25),
        c: ptx(2, 2, 'z', 40), // min(5, 25, 40) = 5
        d: ptx(0, 3, 'x', 22), // min(22, 25, 40) = 22 closes [0,10)
        e: ptx(1, 4, 'y', 50), // min(22, 50, 40) = 22
        f: ptx(0, 5, 'x', 45), // min(45, 50, 40) = 40 closes [20,30)
      };
      const e1 = hot('  -a-b-c-d-e-f----|', values);
      const expected = '-------p---(qr)-(stu|)';
      expectObservable(e1.pipe(windows(0, { watermarkBy: byPartition }), map(withWm))).toBe(expected, {
        p: 'x@0:0 wm22',
        q: 'x@20:3 wm40',
        r: 'y@20:1 wm40',
        s: 'x@40:5 wm40',
        t: 'z@40:2 wm40',
        u: 'y@50:4 wm40',
      });
    });
  });

  it('an expected source that sends nothing holds the watermark back until idleTimeout, then the timer closes windows', () => {
    const scheduler = testScheduler();
    scheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: ptx(0, 0, 'x', 1), b: ptx(0, 1, 'x', 15) };
      // p1 is expected from frame 0 (the subscription) and idle from frame 20; the timer (every
      // 10 frames from frame 1) sees it at frame 21 and the watermark becomes p0's: 15.
      const e1 = hot('  -a-b 36ms -|', values);
      const expected = '21ms p 19ms (q|)';
      const op = windows(0, { watermarkBy: byPartition, watermarkSources: of(['p0', 'p1']), idleTimeout: 20, scheduler });
      expectObservable(e1.pipe(op, map(withWm))).toBe(expected, { p: 'x@0:0 wm15', q: 'x@10:1 wm15' });
      expectSubscriptions(e1.subscriptions).toBe('^ 40ms !');
    });
  });

  it('an idle source that resumes holds the watermark back again; the watermark never goes down, its records below it are late', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = {
        a: ptx(0, 0, 'x', 1),
        b: ptx(1, 1, 'x', 3), // p1's last record for a while: idle from frame 22
        c: ptx(0, 2, 'x', 30),
        d: ptx(0, 3, 'x', 31), // min(31, 3) = 3
        // timer at frame 31: p1 idle, watermark 31 closes [0,10)
        e: ptx(1, 4, 'x', 12), // p1 resumes: [10,20) is closed, late; watermark stays 31
        f: ptx(1, 5, 'x', 25), // late
        g: ptx(0, 6, 'x', 50), // min(50, 25): p1 holds the watermark at 31 again, [30,40) stays open
        h: ptx(1, 7, 'x', 45), // min(50, 45) = 45 closes [30,40)
      };
      const e1 = hot('  -ab 7ms c 9ms d 14ms e-fg-h-|', values);
      const expected = '31ms p 8ms q-(rs|)';
      expectObservable(e1.pipe(windows(0, { late, watermarkBy: byPartition, idleTimeout: 20 }), map(withWm))).toBe(expected, {
        p: 'x@0:0,1 wm31',
        q: 'x@30:2,3 wm45',
        r: 'x@40:7 wm45',
        s: 'x@50:6 wm45',
      });
      expectObservable(late).toBe('35ms e-f 4ms |', values);
    });
  });

  it('holds the watermark while every source is idle', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      // Both idle from frame 21: the watermark stays 5 (not p1's 25, not Infinity), so c still
      // joins [0,10); after c, p0 alone is active: watermark 8.
      const values = { a: ptx(0, 0, 'x', 5), b: ptx(1, 1, 'y', 25), c: ptx(0, 2, 'x', 8) };
      const e1 = hot('  -(ab) 35ms c-|', values);
      const expected = '42ms (pq|)';
      expectObservable(e1.pipe(windows(0, { late, watermarkBy: byPartition, idleTimeout: 20 }), map(withWm))).toBe(expected, {
        p: 'x@0:0,2 wm8',
        q: 'y@20:1 wm8',
      });
      expectObservable(late).toBe('42ms |');
    });
  });

  it('stops the idleness timer on completion, error and unsubscription', () => {
    const scheduler = testScheduler();
    const ticks = { complete: [] as number[], error: [] as number[], unsubscribe: [] as number[] };
    /** The test scheduler, logging each run of the timer's action. */
    const logged = (log: number[]): SchedulerLike => ({
      now: () => scheduler.now(),
      schedule: <S>(work: (this: SchedulerAction<S>, state?: S) => void, delay?: number, state?: S) =>
        scheduler.schedule(
          function (this: SchedulerAction<S>, st?: S) {
            log.push(scheduler.now());
            // A timer left running would tick forever: end it with an error instead of hanging.
            if (log.length > 50) throw new Error('timer still running');
            work.call(this, st);
          },
          delay,
          state,
        ),
    });
    scheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: ptx(0, 0, 'x', 1) };
      const opts = (log: number[]): Extra => ({ watermarkBy: byPartition, watermarkSources: of(['p0', 'p1']), idleTimeout: 20, scheduler: logged(log) });

      const e1 = hot('-a 15ms -|', values);
      expectObservable(e1.pipe(windows(0, opts(ticks.complete)), map(withWm))).toBe('18ms (v|)', { v: 'x@0:0 wm-Infinity' });
      expectSubscriptions(e1.subscriptions).toBe('^ 17ms !');

      const e2 = hot('-a 12ms #', values, new Error('broker gone'));
      expectObservable(e2.pipe(windows(0, opts(ticks.error)))).toBe('14ms #', undefined, new Error('broker gone'));
      expectSubscriptions(e2.subscriptions).toBe('^ 13ms !');

      const e3 = hot('-a 30ms -|', values);
      expectObservable(e3.pipe(windows(0, opts(ticks.unsubscribe))), '^ 14ms !').toBe('-');
      expectSubscriptions(e3.subscriptions).toBe('^ 14ms !');
    });
    // The timer starts with the record (frame 1) and ticks every 10 frames: once, none after the end.
    expect(ticks).toEqual({ complete: [11], error: [11], unsubscribe: [11] });
  });

  it('watermarkSources as they change: a source first named later holds the watermark back from then; revoked ones until idle', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: ptx(0, 0, 'x', 1), b: ptx(0, 1, 'x', 15), c: ptx(0, 2, 'x', 25), d: ptx(0, 3, 'x', 35) };
      const sets = { s: ['p0'], t: ['p0', 'p1'], u: ['p0'] };
      // Only p0 is assigned: b closes [0,10). p1 is assigned at frame 4: c closes nothing (p1 holds
      // the watermark at -Infinity), nor do the idleness checks at 13 and 23, after p1 is revoked
      // at 6: it holds the watermark until idle (frame 24). By d (31) both are idle; d makes the
      // watermark p0's 35, closing [10,20) and [20,30).
      const e1 = hot('         -a-b-c 25ms d 5ms |', values);
      const assignment$ = hot('s---t-u-------', sets);
      const expected = '       ---p 27ms (qr) 2ms (s|)';
      const op = windows(0, { watermarkBy: byPartition, watermarkSources: assignment$, idleTimeout: 20 });
      expectObservable(e1.pipe(op, map(withWm))).toBe(expected, { p: 'x@0:0 wm15', q: 'x@10:1 wm35', r: 'x@20:2 wm35', s: 'x@30:3 wm35' });
      expectSubscriptions(assignment$.subscriptions).toBe('^ 36ms !');
    });
  });

  it('an error of watermarkSources errors the output and late', () => {
    testScheduler().run(({ hot, cold, expectObservable }) => {
      const late = new Subject<Tx>();
      const e1 = hot('-a---|', { a: ptx(0, 0, 'x', 1) });
      const op = windows(0, { late, watermarkBy: byPartition, watermarkSources: cold('--#', undefined, new Error('no metadata')) });
      expectObservable(e1.pipe(op)).toBe('--#', undefined, new Error('no metadata'));
      expectObservable(late).toBe('--#', undefined, new Error('no metadata'));
    });
  });

  it('never goes below initialWatermark: records of windows it has passed are late whatever the sources say', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = {
        a: ptx(0, 0, 'x', 15), // late: [10,20) ends at 20 <= 20
        b: ptx(1, 1, 'x', 25), // min(15, 25) = 15: the watermark stays 20
        c: ptx(1, 2, 'x', 12), // late
        d: ptx(0, 3, 'x', 35), // min(35, 25) = 25
        e: ptx(1, 4, 'x', 33), // min(35, 33) = 33 closes [20,30)
      };
      const e1 = hot('  -a-b-c-d-e-|', values);
      const expected = '9ms p-(q|)';
      const op = windows(0, { late, initialWatermark: 20, watermarkBy: byPartition, watermarkSources: of(['p0', 'p1']) });
      expectObservable(e1.pipe(op, map((w) => `${withWm(w)} late${w.lateDropped}`))).toBe(expected, {
        p: 'x@20:1 wm33 late2',
        q: 'x@30:3,4 wm33 late2',
      });
      expectObservable(late).toBe('-a---c-----|', values);
    });
  });
});

/** A sink of windows that takes `frames` per write, one at a time, and acknowledges the windows' records. */
function windowSink(frames: number, writes: string[] = []): OperatorFunction<readonly WindowResult<AmountStats>[], SinkAck> {
  return concatMap((ws) => {
    writes.push(ws.map(show).join(' '));
    return of<SinkAck>({ table: 'w', version: null, rows: ws.length, skipped: 0, bytes: 0, durationMs: 0, refs: ws.flatMap((w) => w.refs) }).pipe(delay(frames));
  });
}

/** `table:offsets` of an ack, e.g. `w:0,2`. */
const acked = (a: SinkAck): string => `${a.table}:${a.refs.map((r) => r.offset).join(',')}`;

const writing = (watermarkDelay: number, sink: OperatorFunction<readonly WindowResult<AmountStats>[], SinkAck>, extra: Extra & { sinkTimeSpan?: number } = {}) =>
  tumblingWindow<Tx, AmountStats>({
    size: 10,
    watermarkDelay,
    key: (r) => r.account,
    eventTime: (r) => r.ts,
    aggregate: amountStats((r) => r.amount),
    sink,
    ...extra,
  });

describe('tumblingWindow writing to a sink', () => {
  it('writes the windows one record closes as one array and emits the sink acks, which cover exactly their records', () => {
    const writes: string[] = [];
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'y', 2), c: tx(2, 'x', 5), d: tx(3, 'x', 12), e: tx(4, 'y', 25) };
      // A delay of 5: d (12) closes nothing, e (25) closes [0,10) of x and y and [10,20) of x:
      // one write, acked 2 frames later.
      const e1 = hot('  -a-b-c-d-e---|', values);
      const expected = '-----------x-|';
      expectObservable(e1.pipe(writing(5, windowSink(2, writes)), map(acked))).toBe(expected, { x: 'w:0,2,1,3' });
    });
    expect(writes).toEqual(['x@0:0,2 y@0:1 x@10:3']);
  });

  it('acknowledges a late record at once, by an ack of its own; late still hears of it', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 15), c: tx(2, 'x', 3), d: tx(3, 'y', 8) };
      const e1 = hot('  -a-b-c-d-|', values);
      const expected = '----wl-m-|';
      expectObservable(e1.pipe(writing(0, windowSink(1), { late }), map(acked))).toBe(expected, { w: 'w:0', l: '(late):2', m: '(late):3' });
      expectObservable(late).toBe('-----c-d-|', values);
    });
  });

  it('does not write windows still open when the source completes: their records stay unacknowledged', () => {
    const writes: string[] = [];
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 15) };
      const e1 = hot('  -a-b-|', values);
      // [0,10) is written at 3 (acked at 6); [10,20) is open at completion; the output completes
      // once the sink has written what was closed.
      const expected = '------(x|)';
      expectObservable(e1.pipe(writing(0, windowSink(3, writes)), map(acked))).toBe(expected, { x: 'w:0' });
    });
    expect(writes).toEqual(['x@0:0']);
  });

  it('sinkTimeSpan gathers whole groups for one write, in order', () => {
    const writes: string[] = [];
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'y', 11), c: tx(2, 'x', 21), d: tx(3, 'x', 45) };
      // b, c and d each close windows; b's and c's groups are gathered from 3 to 8, d's from 9.
      const e1 = hot('  -a-b-c---d-----------|', values);
      const expected = '--------x-----y------|';
      expectObservable(e1.pipe(writing(0, windowSink(0, writes), { sinkTimeSpan: 5 }), map(acked))).toBe(expected, { x: 'w:0,1', y: 'w:2' });
    });
    expect(writes).toEqual(['x@0:0 y@10:1', 'x@20:2']);
  });

  it('sinkTimeSpan: windows gathered when the source completes are still written, then the output completes', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 15) };
      const e1 = hot('  -a-b-|', values);
      expectObservable(e1.pipe(writing(0, windowSink(0), { sinkTimeSpan: 10 }), map(acked))).toBe('-----(x|)', { x: 'w:0' });
    });
  });

  it('kafkaPartition() names a record\'s partition as the assignment does, topic/partition', () => {
    const partitionOf = kafkaPartition();
    expect([ptx(0, 0, 'x', 1), ptx(0, 1, 'x', 1), ptx(2, 2, 'x', 1), { ...ptx(2, 3, 'x', 1), topic: 'refunds' }].map(partitionOf)).toEqual([
      'transactions/0',
      'transactions/0',
      'transactions/2',
      'refunds/2',
    ]);
  });

  it('closes windows from the idleness check with sources that go idle, and writes them', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: ptx(0, 0, 'x', 1), b: ptx(0, 1, 'x', 15) };
      const e1 = hot('  -a-b 36ms -|', values);
      const expected = '21ms x 19ms |';
      const op = writing(0, windowSink(0), { watermarkBy: byPartition, watermarkSources: of(['p0', 'p1']), idleTimeout: 20 });
      expectObservable(e1.pipe(op, map(acked))).toBe(expected, { x: 'w:0' });
    });
  });

  it('completes on empty and emits nothing on never', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold<Tx>('|');
      expectObservable(e1.pipe(writing(0, windowSink(1)))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
      const e2 = cold<Tx>('-');
      expectObservable(e2.pipe(writing(0, windowSink(1)))).toBe('-');
      expectSubscriptions(e2.subscriptions).toBe('^');
    });
  });

  it('errors on a source error (late too) or a sink error, dropping what was not written', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 15) };
      const e1 = hot('-a-b-#', values);
      expectObservable(e1.pipe(writing(0, windowSink(5), { late }), map(acked))).toBe('-----#');
      expectObservable(late).toBe('-----#');

      const e2 = hot('-a-b-----|', values);
      const failing: OperatorFunction<readonly WindowResult<AmountStats>[], SinkAck> = concatMap(() => throwError(() => new Error('disk full')));
      expectObservable(e2.pipe(writing(0, failing))).toBe('---#', undefined, new Error('disk full'));
      expectSubscriptions(e2.subscriptions).toBe('^--!');
    });
  });

  it('unsubscribing early tears down the source, the sink and watermarkSources', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 15) };
      const e1 = hot('         -a-b-----|', values);
      const assignment$ = hot('s--------', { s: ['p0'] });
      const writes = hot('     ---------');
      // The sink's writes never end: only unsubscribing ends them.
      const sink: OperatorFunction<readonly WindowResult<AmountStats>[], SinkAck> = concatMap(() => writes.pipe(map((): SinkAck => ({ table: 'w', version: null, rows: 0, skipped: 0, bytes: 0, durationMs: 0, refs: [] }))));
      const op = writing(0, sink, { watermarkBy: (r) => `p${r.partition}`, watermarkSources: assignment$ });
      expectObservable(e1.pipe(op), '^----!').toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^----!');
      expectSubscriptions(assignment$.subscriptions).toBe('^----!');
      expectSubscriptions(writes.subscriptions).toBe('---^-!');
    });
  });

  it('over generated streams, acknowledges every record whose window closed, and every late record, exactly once', () => {
    for (let seed = 1; seed <= 20; seed += 1) {
      const c = generate(seed);
      const acks: SinkAck[] = [];
      let completed = false;
      const windowsOf = new Map<bigint, string>();
      from(c.records)
        .pipe(
          tumblingWindow<Tx, AmountStats>({
            size: c.size,
            watermarkDelay: c.delay,
            initialWatermark: c.initialWatermark,
            key: (r) => r.account,
            eventTime: (r) => r.ts,
            aggregate: amountStats((r) => r.amount),
            sink: map((ws: readonly WindowResult<AmountStats>[]): SinkAck => {
              for (const w of ws) for (const r of w.refs) windowsOf.set(r.offset, `${w.key}@${w.start}`);
              return { table: 'w', version: null, rows: ws.length, skipped: 0, bytes: 0, durationMs: 0, refs: ws.flatMap((w) => w.refs) };
            }),
          }),
        )
        .subscribe({ next: (a) => acks.push(a), complete: () => (completed = true) });
      expect(completed).toBe(true);
      const expected = model(c);
      // The model's final windows (closed by the watermark, not by the end of the stream) and late records.
      const closed = expected.results.filter((r) => {
        const m = /@(-?\d+):.* wm(.+)$/.exec(r);
        return m !== null && Number(m[2]) >= Number(m[1]) + c.size;
      });
      const closedOffsets = closed.flatMap((r) => (/:([\d,]*) /.exec(r)?.[1] ?? '').split(',').filter(Boolean).map(BigInt));
      const ackedOffsets = acks.filter((a) => a.table === 'w').flatMap((a) => a.refs.map((r) => r.offset));
      const lateOffsets = acks.filter((a) => a.table === '(late)').flatMap((a) => a.refs.map((r) => r.offset));
      expect(ackedOffsets.sort(cmp), `seed ${seed}`).toEqual(closedOffsets.sort(cmp));
      expect(lateOffsets, `seed ${seed}`).toEqual(expected.late);
      expect(new Set([...ackedOffsets, ...lateOffsets]).size, `seed ${seed}: no record twice`).toBe(ackedOffsets.length + lateOffsets.length);
      expect(acks.filter((a) => a.table === '(late)').every((a) => a.refs.length === 1 && a.rows === 0 && a.skipped === 1)).toBe(true);
    }
  });
});

describe('tumblingWindow with maxEventTimeLead', () => {
  it('diverts a record too far ahead of the clock: no window, no watermark move, later records not late', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const tooFarAhead = new Subject<Tx>();
      // The clock is the scheduler's: frame n is now() = n. Lead limit 100.
      const values = {
        a: tx(0, 'x', 1),
        b: tx(1, 'x', 4_000_000_000_000), // "year 2099": 4e12 ahead; without the limit it closes every window
        c: tx(2, 'x', 5), // not late: the watermark is still 1
        d: tx(3, 'y', 7),
        e: tx(4, 'x', 15), // closes [0,10)
      };
      const e1 = hot('  -a-b-c-d-e---|', values);
      const expected = '---------(vw)(z|)';
      expectObservable(e1.pipe(windows(0, { late, tooFarAhead, maxEventTimeLead: 100 }), map((w) => `${show(w)} wm${w.watermark} late${w.lateDropped}`))).toBe(
        expected,
        { v: 'x@0:0,2 wm15 late0', w: 'y@0:3 wm15 late0', z: 'x@10:4 wm15 late0' },
      );
      expectObservable(tooFarAhead).toBe('---b---------|', values);
      expectObservable(late).toBe('-------------|');
    });
  });

  it('without the limit the same record closes every window and makes the later ones late (the failure it prevents)', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const late = new Subject<Tx>();
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 4_000_000_000_000), c: tx(2, 'x', 5), d: tx(3, 'y', 7), e: tx(4, 'x', 15) };
      const e1 = hot('  -a-b-c-d-e-|', values);
      expectObservable(e1.pipe(windows(0, { late }), map(show))).toBe('---w-------(v|)', { w: 'x@0:0', v: 'x@4000000000000:1' });
      expectObservable(late).toBe('-----c-d-e-|', values);
    });
  });

  it('measures the lead from now(): exactly maxEventTimeLead ahead is kept, one ms more is diverted; the scheduler\'s clock moves the limit', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const tooFarAhead = new Subject<Tx>();
      const values = {
        a: tx(0, 'x', 101), // frame 1: 100 ahead, kept
        b: tx(1, 'x', 103), // frame 2: 101 ahead, diverted
        c: tx(2, 'x', 105), // frame 5: 100 ahead, kept
      };
      const e1 = hot('  -ab--c-|', values);
      expectObservable(e1.pipe(windows(1000, { tooFarAhead, maxEventTimeLead: 100 }), map(show))).toBe('-------(v|)', { v: 'x@100:0,2' });
      expectObservable(tooFarAhead).toBe('--b----|', values);
    });
  });

  it('takes its clock from now when given (a fixed clock here); maxEventTimeLead 0 diverts anything ahead of it', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const tooFarAhead = new Subject<Tx>();
      const values = { a: tx(0, 'x', 999), b: tx(1, 'x', 1_001), c: tx(2, 'x', 1_000) };
      const e1 = hot('  -a-b-c-|', values);
      expectObservable(e1.pipe(windows(0, { tooFarAhead, maxEventTimeLead: 0, now: () => 1_000 }), map(show))).toBe('-----w-(v|)', { w: 'x@990:0', v: 'x@1000:2' });
      expectObservable(tooFarAhead).toBe('---b---|', values);
    });
  });

  it('with watermarkBy: the diverted record moves no source watermark and does not keep its source from going idle', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const tooFarAhead = new Subject<Tx>();
      const late = new Subject<Tx>();
      const values = {
        a: ptx(0, 0, 'x', 1),
        b: ptx(1, 1, 'x', 2),
        c: ptx(0, 2, 'x', 9_000_000), // p0 far ahead: diverted, p0's watermark stays 1
        d: ptx(1, 3, 'x', 12), // min(1, 12) = 1: nothing closes
        e: ptx(0, 4, 'x', 3), // p0 not late
        f: ptx(0, 5, 'x', 20), // min(20, 12) = 12 closes [0,10)
      };
      const e1 = hot('  -a-b-c-d-e-f-|', values);
      const op = windows(0, { tooFarAhead, late, maxEventTimeLead: 1_000, watermarkBy: byPartition, idleTimeout: Number.POSITIVE_INFINITY });
      expectObservable(e1.pipe(op, map((w) => `${show(w)} wm${w.watermark}`))).toBe('-----------p-(qr|)', {
        p: 'x@0:0,1,4 wm12',
        q: 'x@10:3 wm12',
        r: 'x@20:5 wm12',
      });
      expectObservable(tooFarAhead).toBe('-----c-------|', values);
      expectObservable(late).toBe('-------------|');
    });
  });

  it('completes tooFarAhead with the source and errors it with the output; unsubscribing leaves it alone', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 500) };
      const done = new Subject<Tx>();
      expectObservable(hot('-a-b-|', values).pipe(windows(0, { tooFarAhead: done, maxEventTimeLead: 10 }), map(show))).toBe('-----(w|)', { w: 'x@0:0' });
      expectObservable(done).toBe('---b-|', values);
      const failed = new Subject<Tx>();
      expectObservable(hot('-a-b-#', values).pipe(windows(0, { tooFarAhead: failed, maxEventTimeLead: 10 }))).toBe('-----#');
      expectObservable(failed).toBe('---b-#', values);
      const left = new Subject<Tx>();
      expectObservable(hot('-a-b---|', values).pipe(windows(0, { tooFarAhead: left, maxEventTimeLead: 10 })), '^----!').toBe('-');
      expectObservable(left).toBe('---b---', values);
    });
  });

  it('writing to a sink: the diverted record is acknowledged once, by where tooFarAhead writes it, after it is written', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: tx(0, 'x', 1), b: tx(1, 'x', 9_999_999), c: tx(2, 'x', 5), d: tx(3, 'x', 12) };
      const e1 = hot('  -a-b-c-d-|', values);
      // The dead-letter branch takes 3 frames to write; the window of x@[0,10) closes at d and
      // takes 1. Each ref is in exactly one ack; none is acknowledged by the operator itself.
      const deadLetterSink: OperatorFunction<DeadLetterRow, SinkAck> = concatMap((r) =>
        of<SinkAck>({ table: 'dlq', version: null, rows: 1, skipped: 0, bytes: 0, durationMs: 0, refs: [{ topic: r.topic, partition: r.partition, offset: r.offset }] }).pipe(delay(3)),
      );
      const chain = withDeadLetters<Tx, SinkAck, SinkAck>(
        (dlq) =>
          tumblingWindow<Tx, AmountStats>({
            size: 10,
            watermarkDelay: 0,
            key: (r) => r.account,
            eventTime: (r) => r.ts,
            aggregate: amountStats((r) => r.amount),
            maxEventTimeLead: 1_000,
            tooFarAhead: {
              next: (r) => dlq.next(deadLetterRowOf(r, 'PROCESSING_ERROR', `event time ${r.ts} too far ahead`)),
              complete: () => dlq.complete(),
              error: (e: unknown) => dlq.error(e),
            },
            sink: windowSink(1),
          }),
        deadLetterSink,
      );
      expectObservable(e1.pipe(chain, map(acked))).toBe('------d-w|', { d: 'dlq:1', w: 'w:0,2' });
    });
  });

  it('rejects a bad maxEventTimeLead, and a sink without tooFarAhead, when the operator is made', () => {
    const base = { size: 10, watermarkDelay: 0, key: (r: Tx) => r.account, eventTime: (r: Tx) => r.ts, aggregate: amountStats((r: Tx) => r.amount) };
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => tumblingWindow({ ...base, maxEventTimeLead: bad })).toThrow(/maxEventTimeLead must be a finite number >= 0/);
    }
    expect(() => tumblingWindow({ ...base, maxEventTimeLead: 0 })).not.toThrow();
    expect(() => tumblingWindow({ ...base, maxEventTimeLead: 10, sink: windowSink(1) })).toThrow(/with a sink, maxEventTimeLead needs a tooFarAhead observer/);
    expect(() => tumblingWindow({ ...base, maxEventTimeLead: 10, tooFarAhead: { next: () => undefined }, sink: windowSink(1) })).not.toThrow();
    expect(() => tumblingWindow({ ...base, sink: windowSink(1) })).not.toThrow();
  });
});

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  readonly records: Tx[];
  readonly size: number;
  readonly delay: number;
  readonly initialWatermark: number;
}

function generate(seed: number): Case {
  const rnd = random(seed);
  const size = 5 + Math.floor(rnd() * 50);
  const delay = Math.floor(rnd() * 3) === 0 ? 0 : Math.floor(rnd() * 200);
  const initialWatermark = rnd() < 0.3 ? Math.floor(rnd() * 100) : Number.NEGATIVE_INFINITY;
  const keys = 1 + Math.floor(rnd() * 6);
  const records: Tx[] = [];
  let clock = 0;
  for (let i = 0; i < 400; i += 1) {
    clock += Math.floor(rnd() * 6);
    // Mostly near the clock, sometimes far behind it (out of order, often late).
    const back = rnd() < 0.2 ? Math.floor(rnd() * 300) : Math.floor(rnd() * 10);
    records.push(tx(i, `k${Math.floor(rnd() * keys)}`, clock - back, Math.round(rnd() * 1000) / 10));
  }
  return { records, size, delay, initialWatermark };
}

/**
 * Three partitions of one topic, as a consumer catching up reads them: each partition's records
 * roughly in event-time order, the partitions covering the same event times, delivered in
 * batches of 50 records of one partition at a time, in random order.
 */
function generateBatched(seed: number): Case {
  const rnd = random(seed);
  const size = 5 + Math.floor(rnd() * 50);
  // Within a partition, records are out of order by less than the delay, except a few far behind.
  const delay = 10 + Math.floor(rnd() * 90);
  const keys = 1 + Math.floor(rnd() * 6);
  const perPartition: { account: string; ts: number; amount: number }[][] = [];
  for (let p = 0; p < 3; p += 1) {
    const rows: { account: string; ts: number; amount: number }[] = [];
    let clock = 0;
    for (let i = 0; i < 300; i += 1) {
      clock += Math.floor(rnd() * 6);
      const back = rnd() < 0.02 ? Math.floor(rnd() * 300) : Math.floor(rnd() * 10);
      rows.push({ account: `k${Math.floor(rnd() * keys)}`, ts: clock - back, amount: Math.round(rnd() * 1000) / 10 });
    }
    perPartition.push(rows);
  }
  const next = [0, 0, 0];
  const records: Tx[] = [];
  for (;;) {
    const pending = [0, 1, 2].filter((p) => (next[p] as number) < (perPartition[p] as unknown[]).length);
    if (pending.length === 0) break;
    const p = pending[Math.floor(rnd() * pending.length)] as number;
    const rows = perPartition[p] as { account: string; ts: number; amount: number }[];
    const from = next[p] as number;
    for (const r of rows.slice(from, from + 50)) records.push(ptx(p, records.length, r.account, r.ts, r.amount));
    next[p] = from + 50;
  }
  return { records, size, delay, initialWatermark: Number.NEGATIVE_INFINITY };
}

/**
 * The semantics, written the slow way: after every record, scan all windows for those the
 * watermark has passed. `bySource`: one watermark per partition, the stream's is their minimum
 * (partitions 0 to 2 expected from the start, none goes idle).
 */
function model(c: Case, bySource = false): { results: string[]; late: bigint[] } {
  const open: { key: string; start: number; offsets: bigint[]; sum: number }[] = [];
  const results: string[] = [];
  const late: bigint[] = [];
  let watermark = c.initialWatermark;
  const maxByPartition = new Map<number, number>(bySource ? [0, 1, 2].map((p) => [p, Number.NEGATIVE_INFINITY]) : []);
  const emit = (limit: number): void => {
    const closing = open.filter((w) => w.start + c.size <= limit);
    closing.sort((a, b) => a.start - b.start || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const w of closing) {
      open.splice(open.indexOf(w), 1);
      results.push(`${w.key}@${w.start}:${w.offsets.join(',')} sum${w.sum.toFixed(6)} wm${watermark}`);
    }
  };
  for (const r of c.records) {
    const start = Math.floor(r.ts / c.size) * c.size;
    if (bySource) maxByPartition.set(r.partition, Math.max(maxByPartition.get(r.partition) ?? Number.NEGATIVE_INFINITY, r.ts));
    if (start + c.size <= watermark) {
      late.push(r.offset);
      continue;
    }
    let w = open.find((o) => o.key === r.account && o.start === start);
    if (w === undefined) {
      w = { key: r.account, start, offsets: [], sum: 0 };
      open.push(w);
    }
    w.offsets.push(r.offset);
    w.sum += r.amount;
    watermark = Math.max(watermark, bySource ? Math.min(...maxByPartition.values()) - c.delay : r.ts - c.delay);
    emit(watermark);
  }
  emit(Number.POSITIVE_INFINITY);
  return { results, late };
}

describe('tumblingWindow over generated streams', () => {
  it('puts every record in exactly one window or in late, as the slow model does', () => {
    let lateSeen = 0;
    let windowsSeen = 0;
    for (let seed = 1; seed <= 40; seed += 1) {
      const c = generate(seed);
      const results: WindowResult<AmountStats>[] = [];
      const late: bigint[] = [];
      let completed = false;
      from(c.records)
        .pipe(
          tumblingWindow<Tx, AmountStats>({
            size: c.size,
            watermarkDelay: c.delay,
            initialWatermark: c.initialWatermark,
            key: (r) => r.account,
            eventTime: (r) => r.ts,
            aggregate: amountStats((r) => r.amount),
            late: { next: (r) => late.push(r.offset), error: () => undefined, complete: () => undefined },
          }),
        )
        .subscribe({ next: (w) => results.push(w), complete: () => (completed = true) });
      expect(completed).toBe(true);

      // Every input offset exactly once across window refs ∪ late.
      const seen = [...results.flatMap((w) => w.refs.map((r) => r.offset)), ...late].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(seen, `seed ${seed}`).toEqual(c.records.map((r) => r.offset));

      // Same windows, contents, order and watermarks as the model; late records likewise.
      const expected = model(c);
      expect(
        results.map((w) => `${w.key}@${w.start}:${w.refs.map((r) => r.offset).join(',')} sum${w.value.sum.toFixed(6)} wm${w.watermark}`),
        `seed ${seed}`,
      ).toEqual(expected.results);
      expect(late, `seed ${seed}`).toEqual(expected.late);

      for (const [i, w] of results.entries()) {
        expect(w.end - w.start).toBe(c.size);
        expect(w.count).toBe(w.refs.length);
        expect(w.value.count).toBe(w.count);
        expect(w.value.avg).toBeCloseTo(w.value.sum / w.count, 9);
        const prev = results[i - 1];
        if (prev !== undefined) expect(prev.end < w.end || (prev.end === w.end && prev.key < w.key), `seed ${seed}`).toBe(true);
      }
      lateSeen += late.length;
      windowsSeen += results.length;
    }
    // The generated streams do exercise both paths.
    expect(lateSeen).toBeGreaterThan(100);
    expect(windowsSeen).toBeGreaterThan(1000);
  });

  it('with watermarkBy, batches of one partition after another lose far fewer records as late', () => {
    let lateBySource = 0;
    let lateSingle = 0;
    for (let seed = 1; seed <= 20; seed += 1) {
      const c = generateBatched(seed);
      const run = (bySource: boolean): { results: WindowResult<AmountStats>[]; late: bigint[] } => {
        const results: WindowResult<AmountStats>[] = [];
        const late: bigint[] = [];
        let completed = false;
        from(c.records)
          .pipe(
            tumblingWindow<Tx, AmountStats>({
              size: c.size,
              watermarkDelay: c.delay,
              key: (r) => r.account,
              eventTime: (r) => r.ts,
              aggregate: amountStats((r) => r.amount),
              late: { next: (r) => late.push(r.offset), error: () => undefined, complete: () => undefined },
              // No source goes idle: the outcome does not depend on how fast this runs.
              ...(bySource ? { watermarkBy: byPartition, watermarkSources: of(['p0', 'p1', 'p2']), idleTimeout: Number.POSITIVE_INFINITY } : {}),
            }),
          )
          .subscribe({ next: (w) => results.push(w), complete: () => (completed = true) });
        expect(completed).toBe(true);
        // Every input offset exactly once across window refs ∪ late.
        const seen = [...results.flatMap((w) => w.refs.map((r) => r.offset)), ...late].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(seen, `seed ${seed}`).toEqual(c.records.map((r) => r.offset));
        return { results, late };
      };

      const bySource = run(true);
      const expected = model(c, true);
      expect(
        bySource.results.map((w) => `${w.key}@${w.start}:${w.refs.map((r) => r.offset).join(',')} sum${w.value.sum.toFixed(6)} wm${w.watermark}`),
        `seed ${seed}`,
      ).toEqual(expected.results);
      expect(bySource.late, `seed ${seed}`).toEqual(expected.late);

      const single = run(false);
      expect(single.late, `seed ${seed}`).toEqual(model(c).late);
      lateBySource += bySource.late.length;
      lateSingle += single.late.length;
    }
    // One watermark races ahead with each batch and drops most of the other partitions' records.
    expect(lateSingle).toBeGreaterThan(5000);
    expect(lateBySource).toBeGreaterThan(0);
    expect(lateBySource * 20).toBeLessThan(lateSingle);
  });
});
