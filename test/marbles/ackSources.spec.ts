import { concatMap, delay, filter, map, mergeMap, of, throwError } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { describe, it } from 'vitest';
import { ackSources } from '../../src/operators/ackSources.ts';
import type { RecordRef, SinkAck } from '../../src/types.ts';
import { testScheduler } from './records.ts';

/** A row standing for several records, e.g. a window. */
interface Agg {
  readonly name: string;
  readonly sources: readonly RecordRef[];
}

const refs = (...offsets: number[]): RecordRef[] => offsets.map((o) => ({ topic: 't', partition: 0, offset: BigInt(o) }));

const rows = {
  a: [{ name: 'A', sources: refs(0, 2) }],
  b: [
    { name: 'B', sources: refs(1) },
    { name: 'C', sources: refs(3, 4, 5) },
  ],
  c: [{ name: 'D', sources: refs(6) }],
  e: [] as Agg[],
};

/** A sink that takes `frames` per batch, one at a time, acknowledging the rows by name (as a sink of rows would). */
const sink = (frames: number): OperatorFunction<readonly Agg[], SinkAck> =>
  concatMap((batch) =>
    of<SinkAck>({
      table: batch.map((r) => r.name).join(''),
      version: 1,
      rows: batch.length,
      skipped: 0,
      bytes: 10,
      durationMs: 1,
      refs: refs(900),
      released: refs(901),
    }).pipe(delay(frames)),
  );

const shown = map((a: SinkAck) => `${a.table}:${a.refs.map((r) => r.offset).join(',')}${a.released ? ' released' : ''}`);

describe('ackSources', () => {
  it("gives each ack of the sink the source records of its batch, in order, keeping the sink's other fields", () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b--c-|', rows);
      const expected = '---x-y--(z|)';
      expectObservable(e1.pipe(ackSources(sink(2), (r) => r.sources), shown)).toBe(expected, { x: 'A:0,2', y: 'BC:1,3,4,5', z: 'D:6' });
      expectSubscriptions(e1.subscriptions).toBe('^-------!');
    });
  });

  it('skips empty batches, as the sinks do (no ack)', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -e-a-e-|', rows);
      expectObservable(e1.pipe(ackSources(sink(0), (r) => r.sources), shown)).toBe('---x---|', { x: 'A:0,2' });
    });
  });

  it('errors when the sink acknowledges more batches than it was given', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const twice: OperatorFunction<readonly Agg[], SinkAck> = mergeMap((batch) => sink(0)(of(batch, batch)));
      const err = new Error(
        'ackSources: the sink acknowledged more batches than it was given (table A); it must emit one ack per non-empty batch, in order, as deltaSink and pgSink do',
      );
      expectObservable(hot('-a-|', rows).pipe(ackSources(twice, (r) => r.sources), shown)).toBe('-(x#)', { x: 'A:0,2' }, err);
    });
  });

  it('errors rather than acknowledge records of a batch the sink dropped (its next ack does not answer that batch)', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const dropsB: OperatorFunction<readonly Agg[], SinkAck> = (batches) => batches.pipe(filter((b) => b[0]?.name !== 'B'), sink(0));
      const err = new Error(
        'ackSources: the sink acknowledged a batch of 2 rows with an ack of 1 (rows + skipped) (table D); it must emit one ack per non-empty batch, in order, as deltaSink and pgSink do',
      );
      expectObservable(hot('-a-b-c-|', rows).pipe(ackSources(dropsB, (r) => r.sources), shown)).toBe('-x---#', { x: 'A:0,2' }, err);
    });
  });

  it('completes on empty, emits nothing on never', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold<Agg[]>('|');
      expectObservable(e1.pipe(ackSources(sink(1), (r) => r.sources))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
      const e2 = cold<Agg[]>('-');
      expectObservable(e2.pipe(ackSources(sink(1), (r) => r.sources))).toBe('-');
      expectSubscriptions(e2.subscriptions).toBe('^');
    });
  });

  it('passes errors of the source, of sourcesOf and of the sink on', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      expectObservable(hot('-a-#', rows).pipe(ackSources(sink(5), (r) => r.sources))).toBe('---#');
      const bad = (): never => {
        throw new Error('no sources');
      };
      expectObservable(hot('-a-|', rows).pipe(ackSources(sink(0), bad))).toBe('-#', undefined, new Error('no sources'));
      const failing: OperatorFunction<readonly Agg[], SinkAck> = concatMap(() => throwError(() => new Error('disk full')));
      expectObservable(hot('-a-|', rows).pipe(ackSources(failing, (r) => r.sources))).toBe('-#', undefined, new Error('disk full'));
    });
  });

  it('unsubscribing early tears down the source and the sink', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-c-|', rows);
      const writes = hot('-------');
      const slow: OperatorFunction<readonly Agg[], SinkAck> = concatMap(() => writes.pipe(map(() => ({ table: '', version: null, rows: 0, skipped: 0, bytes: 0, durationMs: 0, refs: [] }))));
      expectObservable(e1.pipe(ackSources(slow, (r) => r.sources)), '^---!').toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^---!');
      expectSubscriptions(writes.subscriptions).toBe('-^--!');
    });
  });
});
