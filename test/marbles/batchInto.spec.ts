import { concatMap, delay, map, of, throwError } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { batchInto } from '../../src/operators/batchInto.ts';
import { isBatchChunk } from '../../src/operators/bufferTime.ts';
import type { BatchChunk } from '../../src/operators/bufferTime.ts';
import type { SinkAck } from '../../src/types.ts';
import { testScheduler } from './records.ts';

const ack = (table: string): SinkAck => ({ table, version: null, rows: table.length, skipped: 0, bytes: 0, durationMs: 0, refs: [] });

/**
 * A sink that takes `frames` to write each batch, one at a time, in order (as `deltaSink`), and
 * acknowledges it as `table` = its records joined. Chunks are gathered until the batch's last one.
 */
function slowSink(frames: number): OperatorFunction<string[] | BatchChunk<string>, SinkAck> {
  let open: string[] = [];
  return concatMap((batch) => {
    if (!isBatchChunk(batch)) return of(ack(batch.join(''))).pipe(delay(frames));
    open.push(...batch.records);
    if (!batch.last) return of();
    const records = open;
    open = [];
    return of(ack(records.join(''))).pipe(delay(frames));
  });
}

const tables = map((a: SinkAck) => a.table);

describe('batchInto', () => {
  it('cuts batches as bufferTime does (time span, count) and emits the sink acks', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -abc----d-----|');
      const subs = '    ^-------------!';
      const expected = '----x---------(y|)';
      expectObservable(e1.pipe(batchInto(slowSink(1), { timeSpan: 5, maxRecords: 3 }), tables)).toBe(expected, { x: 'abc', y: 'd' });
      expectSubscriptions(e1.subscriptions).toBe(subs);
    });
  });

  it("writes the open batch when the source is saturated, but only while the sink has no write in progress", () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      // Each write takes 4 frames. At 3 the sink is idle: a and b go at once (acked at 7). At 6
      // the write of ab is in progress: c waits. At 9 the sink is idle again: c goes (acked at
      // 13). d is written at completion.
      const e1 = hot('        -ab--c------d---|');
      const saturated$ = hot('---p--p--p-------');
      const psubs = '         ^---------------!';
      const expected = '      -------x-----y------(z|)';
      expectObservable(e1.pipe(batchInto(slowSink(4), { timeSpan: 100, pressure: { saturated$ } }), tables)).toBe(expected, { x: 'ab', y: 'c', z: 'd' });
      expectSubscriptions(saturated$.subscriptions).toBe(psubs);
    });
  });

  it('in chunks, a write is in progress from the batch last chunk to its ack', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      // Chunks of 2: ab leaves as a chunk at 2 (no write yet), so the saturation at 3 still cuts
      // the batch (abc, written until 7); the one at 5 finds that write in progress.
      const e1 = hot('        -abc-d------|');
      const saturated$ = hot('---p-p---p---');
      const expected = '      -------x-----(y|)';
      expectObservable(e1.pipe(batchInto(slowSink(4), { timeSpan: 100, chunkRecords: 2, pressure: { saturated$ } }), tables)).toBe(expected, { x: 'abc', y: 'd' });
    });
  });

  it('without pressure, saturation is nobody’s business: batches wait for time or count', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -ab------|');
      const expected = '------x--|';
      expectObservable(e1.pipe(batchInto(slowSink(0), { timeSpan: 5 }), tables)).toBe(expected, { x: 'ab' });
    });
  });

  it('completes on empty without writing', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' |');
      const saturated$ = cold('p');
      expectObservable(e1.pipe(batchInto(slowSink(1), { timeSpan: 5, pressure: { saturated$ } }))).toBe('|');
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
    });
  });

  it('never emits on never', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' -');
      expectObservable(e1.pipe(batchInto(slowSink(1), { timeSpan: 5 }))).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^');
    });
  });

  it('passes errors of the source, of saturated$ and of the sink on, dropping the open batch', () => {
    testScheduler().run(({ hot, cold, expectObservable }) => {
      const failing: OperatorFunction<string[], SinkAck> = concatMap(() => throwError(() => new Error('disk full')));
      expectObservable(hot('-a-#').pipe(batchInto(slowSink(1), { timeSpan: 5 }))).toBe('---#');
      expectObservable(hot('-a---').pipe(batchInto(slowSink(1), { timeSpan: 5, pressure: { saturated$: cold('--#') } }))).toBe('--#');
      expectObservable(hot('-a---').pipe(batchInto(failing, { timeSpan: 2 }))).toBe('---#', undefined, new Error('disk full'));
    });
  });

  it('unsubscribing early stops the source, the sink and saturated$', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('        -ab-----c--|');
      const saturated$ = hot('---p---------');
      const unsub = '         -----!';
      expectObservable(e1.pipe(batchInto(slowSink(4), { timeSpan: 100, pressure: { saturated$ } }), tables), unsub).toBe('-');
      expectSubscriptions(e1.subscriptions).toBe('^----!');
      expectSubscriptions(saturated$.subscriptions).toBe('^----!');
    });
  });

  it('rejects bad batching options when made', () => {
    expect(() => batchInto(slowSink(1), { timeSpan: 0 })).toThrow(RangeError);
    expect(() => batchInto(slowSink(1), { chunkRecords: -1 })).toThrow(RangeError);
  });

  it('takes a sink of arrays only when the batches are whole; a configured chunkRecords needs a sink of chunks too', () => {
    const arraysOnly: OperatorFunction<string[], SinkAck> = map((b) => ack(b.join('')));
    const configured = 5 as number;
    expectTypeOf(batchInto(arraysOnly, { timeSpan: 5 })).toEqualTypeOf<OperatorFunction<string, SinkAck>>();
    expectTypeOf(batchInto(slowSink(1), { timeSpan: 5, chunkRecords: configured })).toEqualTypeOf<OperatorFunction<string, SinkAck>>();
    // @ts-expect-error: chunks would reach a sink that takes arrays only
    batchInto(arraysOnly, { chunkRecords: configured });
  });
});
