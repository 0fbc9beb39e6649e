import type { OperatorFunction } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import { testScheduler } from './records.ts';

describe('bufferTime', () => {
  it('emits when the time span since the first record of a batch elapses', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions, time }) => {
      const span = time('----------|');
      const e1 = hot('  -a--b---------c---|');
      const subs = '    ^-----------------!';
      const expected = '-----------x------(y|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: span }))).toBe(expected, { x: ['a', 'b'], y: ['c'] });
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it('emits when maxRecords is reached, before the time span', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -abcde|');
      const expected = '---x--(y|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, maxRecords: 3 }))).toBe(expected, {
        x: ['a', 'b', 'c'],
        y: ['d', 'e'],
      });
    });
  });

  it('emits when maxBytes is reached, counting `size` by default', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const values = { a: { size: 4 }, b: { size: 4 }, c: { size: 4 }, d: { size: 20 }, e: { size: 1 } };
      const e1 = hot('  -abcde--------|', values);
      const expected = '---xy------z--|';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 6, maxBytes: 10 }))).toBe(expected, {
        x: [values.a, values.b, values.c],
        y: [values.d],
        z: [values.e],
      });
    });
  });

  it('uses sizeOf when given, and restarts the timer with each new batch', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-b-----c-d-e-----|', { a: 1, b: 2, c: 3, d: 4, e: 5 });
      const expected = '-----x-----y-----z-|';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 4, maxBytes: 7, sizeOf: (n: number) => n }))).toBe(expected, {
        x: [1, 2],
        y: [3, 4],
        z: [5],
      });
    });
  });

  it('flush: each emission writes the partial batch at once; an empty buffer emits nothing', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('   -ab---c-----d------|');
      const flush = hot('---f--f--f-------f--');
      const fsubs = '    ^------------------!';
      const expected = ' ---x--y----------z-|';
      // The timer (20) never fires first: only the flushes emit (the one at 9 finds nothing).
      expectObservable(e1.pipe(bufferTime({ timeSpan: 20, flush }))).toBe(expected, { x: ['a', 'b'], y: ['c'], z: ['d'] });
      expectSubscriptions(flush.subscriptions).toBe(fsubs);
    });
  });

  it('flush: the timer restarts with the next record after a flush', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('   -a---b------|');
      const flush = hot('---f---------');
      const expected = ' ---x-----y--|';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 4, flush }))).toBe(expected, { x: ['a'], y: ['b'] });
    });
  });

  it('flush: unsubscribed with the output (error and unsubscribe alike)', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('   -a--#');
      const flush = hot('-------f--');
      expectObservable(e1.pipe(bufferTime({ timeSpan: 10, flush }))).toBe('----#');
      expectSubscriptions(flush.subscriptions).toBe('^---!');
    });
  });

  it('never emits an empty batch (idle stream, timer only after a record)', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a----------------|');
      const expected = '------x-----------|';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 5 }))).toBe(expected, { x: ['a'] });
    });
  });

  it('flushes the partial batch on completion', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -ab|');
      const expected = '---(x|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 1000 }))).toBe(expected, { x: ['a', 'b'] });
    });
  });

  it('completes without emitting on empty', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' |');
      expectObservable(e1.pipe(bufferTime({ timeSpan: 10 }))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
    });
  });

  it('never emits on never', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' -');
      expectObservable(e1.pipe(bufferTime({ timeSpan: 10 }))).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^');
    });
  });

  it('passes an error on and discards the partial batch', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-#');
      const subs = '    ^----!';
      const expected = '-----#';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 10 }))).toBe(expected);
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it('passes an error that follows a time flush', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-----b-#');
      const expected = '----x----#';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 3 }))).toBe(expected, { x: ['a'] });
    });
  });

  it('stops timers and emits nothing after an early unsubscribe', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b----c--|');
      const unsub = '   ------!';
      const subs = '    ^-----!';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 8 })), unsub).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it('rejects invalid options', () => {
    expect(() => bufferTime({ timeSpan: 0 })).toThrow(RangeError);
    expect(() => bufferTime({ maxRecords: 0 })).toThrow(RangeError);
    expect(() => bufferTime({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => bufferTime({ chunkRecords: -1 })).toThrow(RangeError);
    expect(() => bufferTime({ chunkRecords: 1.5 })).toThrow(/whole number/);
  });
});

describe('bufferTime with chunkRecords', () => {
  it('emits a batch in chunks as it fills; the chunk that completes it (by count) is the last', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -abcdefg|');
      const expected = '--x-yz-v(w|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, maxRecords: 5, chunkRecords: 2 }))).toBe(expected, {
        x: { records: ['a', 'b'], last: false },
        y: { records: ['c', 'd'], last: false },
        z: { records: ['e'], last: true },
        v: { records: ['f', 'g'], last: false },
        w: { records: [], last: true },
      });
    });
  });

  it('cuts batches by time from their first record, as without chunks', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -abc------d-----|');
      const expected = '--x---y--------z|';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 5, chunkRecords: 2 }))).toBe(expected, {
        x: { records: ['a', 'b'], last: false },
        y: { records: ['c'], last: true },
        z: { records: ['d'], last: true },
      });
    });
  });

  it('a batch that ends on a chunk boundary ends with an empty last chunk; an empty batch emits nothing', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('   -ab-------cd--|');
      const flush = hot('-----f--f------');
      const expected = ' --x--y-----z--(y|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, flush, chunkRecords: 2 }))).toBe(expected, {
        x: { records: ['a', 'b'], last: false },
        y: { records: [], last: true },
        z: { records: ['c', 'd'], last: false },
      });
    });
  });

  it('counts maxBytes over the whole batch, not the chunk', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const v = { a: { size: 3 }, b: { size: 3 }, c: { size: 3 }, d: { size: 3 } };
      const e1 = hot('  -abcd|', v);
      const expected = '--xy-(z|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, maxBytes: 9, chunkRecords: 2 }))).toBe(expected, {
        x: { records: [v.a, v.b], last: false },
        y: { records: [v.c], last: true },
        z: { records: [v.d], last: true },
      });
    });
  });

  it('passes an error on and drops the unemitted part of the batch', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -abc#');
      const expected = '--x-#';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, chunkRecords: 2 }))).toBe(expected, {
        x: { records: ['a', 'b'], last: false },
      });
    });
  });

  it('chunkRecords 0 emits whole batches, as without it', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -abc|');
      const expected = '--x-(y|)';
      expectObservable(e1.pipe(bufferTime({ timeSpan: 100, maxRecords: 2, chunkRecords: 0 }))).toBe(expected, { x: ['a', 'b'], y: ['c'] });
    });
  });

  it('types its output by chunkRecords: arrays for none or 0, chunks for another literal, either for a computed number', () => {
    const configured = (n: number) => bufferTime<string>({ timeSpan: 100, chunkRecords: n });
    expectTypeOf(bufferTime<string>()).toEqualTypeOf<OperatorFunction<string, string[]>>();
    expectTypeOf(bufferTime<string, 0>({ chunkRecords: 0 })).toEqualTypeOf<OperatorFunction<string, string[]>>();
    expectTypeOf(bufferTime<string, 5>({ chunkRecords: 5 })).toEqualTypeOf<OperatorFunction<string, BatchChunk<string>>>();
    expectTypeOf(configured(5)).toEqualTypeOf<OperatorFunction<string, string[] | BatchChunk<string>>>();
    // Options built elsewhere, chunkRecords possibly absent: either shape too.
    const options: { timeSpan: number; chunkRecords?: number } = { timeSpan: 100 };
    expectTypeOf(bufferTime<string>(options)).toEqualTypeOf<OperatorFunction<string, string[] | BatchChunk<string>>>();
  });
});
