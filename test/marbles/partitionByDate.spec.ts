import { map } from 'rxjs';
import { describe, it } from 'vitest';
import { partitionByDate } from '../../src/operators/partitionByDate.ts';
import { testScheduler } from './records.ts';

const day = (y: number, m: number, d: number, h = 0) => Date.UTC(y, m - 1, d, h);

describe('partitionByDate', () => {
  it('sets _ingestion_date from _ingested_at (µs) by default', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const values = {
        a: { id: 1, _ingested_at: BigInt(day(2024, 2, 29, 23)) * 1000n },
        b: { id: 2, _ingested_at: BigInt(day(2024, 3, 1)) * 1000n },
      };
      const e1 = hot('  -a-b-|', values);
      expectObservable(e1.pipe(partitionByDate(), map((r) => [r.id, r._ingestion_date]))).toBe('-a-b-|', {
        a: [1, '2024-02-29'],
        b: [2, '2024-03-01'],
      });
      expectSubscriptions(e1.subscriptions).toBe('^----!');
    });
  });

  it('takes any column and timestamps as µs bigint, ms number or Date (UTC)', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      type Row = { id: number; t: bigint | number | Date };
      const values: Record<string, Row> = {
        a: { id: 1, t: BigInt(day(2023, 12, 31, 23)) * 1000n + 999n },
        b: { id: 2, t: day(2024, 1, 1) },
        c: { id: 3, t: new Date(day(2024, 1, 1) - 1) },
        d: { id: 4, t: -1n },
      };
      const e1 = cold(' -abcd|', values);
      const op = partitionByDate({ column: 'event_date', from: (r: Row) => r.t });
      expectObservable(e1.pipe(op, map((r) => `${r.id}:${r.event_date}`))).toBe('-abcd|', {
        a: '1:2023-12-31',
        b: '2:2024-01-01',
        c: '3:2023-12-31',
        d: '4:1969-12-31',
      });
    });
  });

  it('errors on an invalid timestamp from a custom getter', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -a-b|', { a: { t: 0 }, b: { t: Number.NaN } });
      const op = partitionByDate({ column: 'd', from: (r: { t: number }) => r.t });
      expectObservable(e1.pipe(op, map((r) => r.d)), undefined).toBe(
        '-a-#',
        { a: '1970-01-01' },
        new RangeError('partitionByDate: invalid timestamp for column d'),
      );
    });
  });

  it('passes empty, never, errors and early unsubscribe through', () => {
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      type R = { _ingested_at: bigint };
      expectObservable(cold<R>('|').pipe(partitionByDate())).toBe('|');
      expectObservable(cold<R>('-').pipe(partitionByDate())).toBe('-');
      expectObservable(cold<R>('--#').pipe(partitionByDate())).toBe('--#');
      const e1 = hot('-a-b-|', { a: { _ingested_at: 0n }, b: { _ingested_at: 0n } });
      expectObservable(e1.pipe(partitionByDate(), map((r) => r._ingestion_date)), '--!').toBe('-a', { a: '1970-01-01' });
      expectSubscriptions(e1.subscriptions).toBe('^-!');
    });
  });
});
