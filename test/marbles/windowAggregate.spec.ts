/**
 * windowAggregate: named sums, counts, averages, maxima and minima as the aggregate of
 * tumblingWindow — SQL null semantics, exactly rounded sums that do not depend on arrival order,
 * a TypeError on a value that is not a number, and the stream's lifecycle through the window.
 */
import { map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { tumblingWindow } from '../../src/operators/tumblingWindow.ts';
import { avgOf, countOf, maxOf, minOf, sumOf, windowAggregate } from '../../src/operators/windowAggregate.ts';
import type { RecordRef } from '../../src/types.ts';
import { testScheduler } from './records.ts';

interface Sale extends RecordRef {
  readonly product: string;
  readonly ts: number;
  readonly amount: number | null;
}

const sale = (offset: number, product: string, ts: number, amount: number | null): Sale => ({ topic: 'sales', partition: 0, offset: BigInt(offset), product, ts, amount });

const perProduct = windowAggregate({
  revenue: sumOf((s: Sale) => s.amount),
  n: countOf(),
  priced: countOf((s: Sale) => s.amount),
  avg: avgOf((s: Sale) => s.amount),
  max: maxOf((s: Sale) => s.amount),
  min: minOf((s: Sale) => s.amount),
});

/** 10 ms windows per product, no delay. */
const windows = () => tumblingWindow({ size: 10, watermarkDelay: 0, key: (s) => s.product, eventTime: (s) => s.ts, aggregate: perProduct });

describe('windowAggregate', () => {
  it('computes each named aggregate per window, nulls left out as in SQL', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = { a: sale(0, 'p', 1, 2.5), b: sale(1, 'p', 2, null), c: sale(2, 'p', 3, 7), d: sale(3, 'q', 4, null), e: sale(4, 'p', 10, 1) };
      const e1 = hot('  -a-b-c-d-e-----|', values);
      const expected = '---------(xy)--(z|)';
      expectObservable(e1.pipe(windows(), map((w) => ({ key: w.key, start: w.start, ...w.value })))).toBe(expected, {
        x: { key: 'p', start: 0, revenue: 9.5, n: 3, priced: 2, avg: 4.75, max: 7, min: 2.5 },
        // No record of q had an amount: sum, avg, max and min are null; the count is not.
        y: { key: 'q', start: 0, revenue: null, n: 1, priced: 0, avg: null, max: null, min: null },
        z: { key: 'p', start: 10, revenue: 1, n: 1, priced: 1, avg: 1, max: 1, min: 1 },
      });
      expectSubscriptions(e1.subscriptions).toBe('^--------------!');
    });
  });

  it('sums exactly: the same records in any order give the very same sum and average', () => {
    const amounts = [1e16, 1, -1e16, 0.1, 0.2, 0.3, 1e-3, 123456.789, -0.1];
    const orders = [amounts, [...amounts].reverse(), [0.3, -1e16, 0.1, 1, 1e-3, 0.2, 1e16, -0.1, 123456.789]];
    const results = orders.map((order) => {
      let acc = perProduct.init();
      order.forEach((amount, i) => (acc = perProduct.add(acc, sale(i, 'p', 0, amount))));
      return acc;
    });
    // The exactly rounded sum (Python's math.fsum agrees); left-to-right addition loses the 1: 123457.29.
    expect(results[0]?.revenue).toBe(123458.29000000001);
    for (const r of results) expect(r).toEqual(results[0]);
    expect(results[0]?.avg).toBe(13717.587777777779);
  });

  it('calls a function given to several aggregates once per record; its sum and average share one exact running sum', () => {
    let calls = 0;
    const amount = (s: Sale): number | null => {
      calls += 1;
      return s.amount;
    };
    const shared = windowAggregate({ total: sumOf(amount), n: countOf(), mean: avgOf(amount), top: maxOf(amount), low: minOf(amount), priced: countOf(amount) });
    const amounts = [1e16, 1, -1e16, null, 0.1, 0.2];
    let acc = shared.init();
    amounts.forEach((a, i) => (acc = shared.add(acc, sale(i, 'p', 0, a))));
    expect(calls).toBe(amounts.length);
    // The same values as with a function per aggregate.
    let separate = perProduct.init();
    amounts.forEach((a, i) => (separate = perProduct.add(separate, sale(i, 'p', 0, a))));
    expect({ ...acc }).toEqual({ total: separate.revenue, n: separate.n, mean: separate.avg, top: separate.max, low: separate.min, priced: separate.priced });
    expect(acc.total).toBe(1.3);
  });

  it('names the first aggregate reading a bad value, whichever reads it again later', () => {
    const amount = (s: Sale): number | null => s.amount;
    const shared = windowAggregate({ n: countOf(), peak: maxOf(amount), total: sumOf(amount) });
    expect(() => shared.add(shared.init(), sale(0, 'p', 0, Number.NaN))).toThrow(/max "peak" read NaN/);
  });

  it('keeps its running state out of the value: the value has only the named fields', () => {
    const acc = perProduct.add(perProduct.init(), sale(0, 'p', 0, 3));
    expect(Object.keys(acc)).toEqual(['revenue', 'n', 'priced', 'avg', 'max', 'min']);
    expect({ ...acc }).toEqual({ revenue: 3, n: 1, priced: 1, avg: 3, max: 3, min: 3 });
    // A fresh value per window.
    expect(perProduct.init()).not.toBe(perProduct.init());
  });

  it('says what its fields are, in order: what table layouts are built from', () => {
    expect(perProduct.fields).toEqual([
      { name: 'revenue', kind: 'sum' },
      { name: 'n', kind: 'count' },
      { name: 'priced', kind: 'count' },
      { name: 'avg', kind: 'avg' },
      { name: 'max', kind: 'max' },
      { name: 'min', kind: 'min' },
    ]);
    expect(() => windowAggregate({})).toThrow(/at least one aggregate/);
  });

  it('errors the stream with a TypeError naming the aggregate on a value that is not a finite number', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('-a-b-c-|', { a: sale(0, 'p', 1, 1), b: sale(1, 'p', 2, Number.NaN), c: sale(2, 'p', 12, 1) });
      expectObservable(e1.pipe(windows())).toBe('---#', undefined, new TypeError('windowAggregate: sum "revenue" read NaN, not a finite number (or null)'));
      const bad = { ...sale(1, 'p', 2, 1), amount: '12' as unknown as number };
      const e2 = hot('-a-b-|', { a: sale(0, 'p', 1, 1), b: bad });
      expectObservable(e2.pipe(windows())).toBe('---#', undefined, new TypeError('windowAggregate: sum "revenue" read string, not a finite number (or null)'));
    });
  });

  it('completes on empty, stays silent on never, passes errors on, and stops on unsubscribe', () => {
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<Sale>('|').pipe(windows())).toBe('|');
      expectObservable(cold<Sale>('-').pipe(windows())).toBe('-');
      expectObservable(cold<Sale>('-#').pipe(windows())).toBe('-#');
      const e1 = hot('-a-b-c-|', { a: sale(0, 'p', 1, 1), b: sale(1, 'p', 11, 1), c: sale(2, 'p', 21, 1) });
      expectObservable(e1.pipe(windows(), map((w) => w.value.n)), '^---!').toBe('---x', { x: 1 });
      expectSubscriptions(e1.subscriptions).toBe('^---!');
    });
  });
});
