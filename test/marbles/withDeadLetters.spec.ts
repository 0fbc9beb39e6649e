import { map, pipe } from 'rxjs';
import { describe, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { routeErrors } from '../../src/operators/routeErrors.ts';
import { withDeadLetters } from '../../src/operators/withDeadLetters.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../src/types.ts';
import { enriched, testScheduler } from './records.ts';

const values = {
  a: enriched(0, '{"x":1}'),
  b: enriched(1, 'bad'),
  c: enriched(2, '{"x":2}'),
  d: enriched(3, null),
};

const chain = (span: number) =>
  withDeadLetters(
    (dlq) =>
      pipe(
        routeErrors<EnrichedRecord>(null, dlq),
        bufferTime({ timeSpan: span }),
        map((rs) => `M${rs.map((r) => r.offset).join('')}`),
      ),
    pipe(
      bufferTime<DeadLetterRow>({ timeSpan: span }),
      map((rs) => `D${rs.map((r) => r.offset).join('')}`),
    ),
  );

describe('withDeadLetters', () => {
  it('runs dead letters through their branch and merges both outputs; flushes both on complete', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -abcd-----|', values);
      // Each branch flushes 5 frames after its first record (main: a at 1, dead letters: b at 2).
      const expected = '------xy--|';
      expectObservable(e1.pipe(chain(5))).toBe(expected, { x: 'M02', y: 'D13' });
      expectSubscriptions(e1.subscriptions).toBe('^---------!');
    });
  });

  it('completes both branches with the source, flushing partial batches', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -ab|', values);
      expectObservable(e1.pipe(chain(100))).toBe('---(xy|)', { x: 'D1', y: 'M0' });
    });
  });

  it('passes empty, never, errors and early unsubscribe', () => {
    testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<EnrichedRecord>('|').pipe(chain(5))).toBe('|');
      const never = cold<EnrichedRecord>('-');
      expectObservable(never.pipe(chain(5))).toBe('-');
      expectSubscriptions(never.subscriptions).toBe('^');
      expectObservable(cold('-ab#', values).pipe(chain(100))).toBe('---#');
      const e1 = hot('-abcd-----|', values);
      expectObservable(e1.pipe(chain(5)), '---!').toBe('---');
      expectSubscriptions(e1.subscriptions).toBe('^--!');
    });
  });
});
