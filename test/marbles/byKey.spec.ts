import { delay, map, merge, scan } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { byKey } from '../../src/operators/byKey.ts';
import { testScheduler } from './records.ts';

/** What the bronze job routes topics with: each key's values through its own pipeline. */
const key = (v: string): string => v[0] as string;

describe('byKey', () => {
  it('sends each value to the pipeline of its key and merges their outputs', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-c-d-e-|', { a: 'a1', b: 'b1', c: 'a2', d: 'b2', e: 'a3' });
      const subs = '    ^----------!';
      const expected = '-x-y-z-w-v-|';
      // A running count per key: each pipeline sees only its own values.
      const count: OperatorFunction<string, string> = scan((n, v) => `${v}#${n.length ? Number(n.split('#')[1]) + 1 : 1}`, '');
      const pipelines = new Map([
        ['a', count],
        ['b', count],
      ]);
      expectObservable(e1.pipe(byKey(key, pipelines))).toBe(expected, { x: 'a1#1', y: 'b1#1', z: 'a2#2', w: 'b2#2', v: 'a3#3' });
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it('completes once every pipeline has completed after the source', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-b-|');
      const expected = '-x-----(y|)';
      const pipelines = new Map<string, OperatorFunction<string, string>>([
        ['a', map((v) => v.toUpperCase())],
        ['b', delay(4)],
      ]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines))).toBe(expected, { x: 'A', y: 'b' });
    });
  });

  it('a pipeline that gets no value completes with the source', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-|');
      const expected = '-x-|';
      const pipelines = new Map<string, OperatorFunction<string, string>>([
        ['a', map((v) => `${v}!`)],
        ['b', map((v) => `${v}?`)],
      ]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines))).toBe(expected, { x: 'a!' });
    });
  });

  it('errors on a value of an unknown key, and passes a source error on', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-c-a-|');
      const subs = '    ^--!';
      const pipelines = new Map<string, OperatorFunction<string, string>>([['a', map((v) => v)]]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines))).toBe('-a-#', undefined, new Error('byKey: no pipeline for key "c" (pipelines: a); add one, or filter such values out before byKey'));
      expectSubscriptions(e1.subscriptions).toBe(subs);

      const e2 = hot('-a-#');
      expectObservable(e2.pipe(byKey((v) => v, pipelines))).toBe('-a-#');
    });
  });

  it('an error in one pipeline errors the output and unsubscribes from the source', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-a-|');
      const subs = '    ^--!';
      const pipelines = new Map<string, OperatorFunction<string, string>>([
        ['a', map((v) => v)],
        [
          'b',
          map(() => {
            throw new Error('bad b');
          }),
        ],
      ]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines))).toBe('-a-#', undefined, new Error('bad b'));
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it('takes the pipelines as an object keyed by name too', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-b-|');
      expectObservable(e1.pipe(byKey((v) => v, { a: map((v: string) => `${v}!`), b: map((v: string) => `${v}?`) }))).toBe('-x-y-|', { x: 'a!', y: 'b?' });
    });
  });

  it('completes on empty once every pipeline has, having subscribed them all first', () => {
    const opened: string[] = [];
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' |');
      const pipelines = new Map<string, OperatorFunction<string, string>>([
        ['a', (s) => (opened.push('a'), s)],
        ['b', (s) => (opened.push('b'), s.pipe(delay(2)))],
      ]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
    });
    expect(opened).toEqual(['a', 'b']);
  });

  it('never emits on never; no pipeline completes', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' -');
      expectObservable(e1.pipe(byKey((v: string) => v, { a: map((v: string) => v) }))).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^');
    });
  });

  it('unsubscribing early tears down the source and every pipeline', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-a-|');
      const ticks = hot('--t--t--t-');
      const unsub = '   ----!';
      // Pipeline b also listens to a timer of its own: unsubscribed with the rest.
      const pipelines = new Map<string, OperatorFunction<string, string>>([
        ['a', map((v) => v)],
        ['b', (s) => merge(s, ticks)],
      ]);
      expectObservable(e1.pipe(byKey((v) => v, pipelines)), unsub).toBe('-atb', { a: 'a', t: 't', b: 'b' });
      expectSubscriptions(e1.subscriptions).toBe('^---!');
      expectSubscriptions(ticks.subscriptions).toBe('^---!');
    });
  });
});
