import { delay, filter, map, pipe } from 'rxjs';
import type { OperatorFunction } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { fanOut } from '../../src/operators/fanOut.ts';
import type { KafkaRecord, RecordRef, SinkAck } from '../../src/types.ts';
import { rec, testScheduler } from './records.ts';

/** A stand-in sink: acks each batch of records as table `name`. */
function ackAs(name: string): OperatorFunction<readonly KafkaRecord[], SinkAck> {
  return map((rows) => ({ table: name, version: null, rows: rows.length, skipped: 0, bytes: 0, durationMs: 0, refs: rows }));
}

const show = (ack: SinkAck): string => `${ack.table}:${ack.refs.map((r: RecordRef) => `${r.partition}/${r.offset}`).join(',')}`;

const values = { a: rec(0, 'a'), b: rec(1, 'b'), c: rec(2, 'c'), d: rec(0, 'd', 1) };

describe('fanOut', () => {
  it('passes a record on only when every branch has acknowledged it', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-c----|', values);
      // raw acks each record at once; agg acks batches 3 frames after their first record.
      const raw = pipe(map((r: KafkaRecord) => [r]), ackAs('raw'));
      const agg = pipe(bufferTime<KafkaRecord>({ timeSpan: 3 }), ackAs('agg'));
      const expected = '-a-bcd--e-|';
      expectObservable(e1.pipe(fanOut(raw, agg), map(show))).toBe(expected, {
        a: 'raw:', // raw acked a, agg has not yet
        b: 'raw:',
        c: 'agg:0/0,0/1', // agg's first batch (a, b) completes both
        d: 'raw:',
        e: 'agg:0/2',
      });
      expectSubscriptions(e1.subscriptions).toBe('^---------!');
    });
  });

  it("passes a record's first acknowledgement on as released, once", () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-b-----|', values);
      const raw = pipe(map((r: KafkaRecord) => [r]), ackAs('raw'));
      const agg = pipe(bufferTime<KafkaRecord>({ timeSpan: 4 }), ackAs('agg'));
      const released = (ack: SinkAck): string => `${ack.table}:${(ack.released ?? []).map((r) => `${r.offset}`).join(',')}|${ack.refs.map((r) => `${r.offset}`).join(',')}`;
      expectObservable(e1.pipe(fanOut(raw, agg), map(released))).toBe('-a-b-c---|', {
        a: 'raw:0|', // first ack: released, not yet complete
        b: 'raw:1|',
        c: 'agg:|0,1', // second ack: complete, nothing more to release
      });
    });
  });

  it('does not care which branch acknowledges first', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a---d---|', values);
      const slow = pipe(map((r: KafkaRecord) => [r]), delay(2), ackAs('slow'));
      const fast = pipe(map((r: KafkaRecord) => [r]), ackAs('fast'));
      expectObservable(e1.pipe(fanOut(slow, fast), map(show))).toBe('-x-y-z-w-|', {
        x: 'fast:',
        y: 'slow:0/0',
        z: 'fast:',
        w: 'slow:1/0',
      });
    });
  });

  it('holds back records a branch never acknowledges', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -a---b---c---|', values);
      const all = pipe(map((r: KafkaRecord) => [r]), ackAs('all'));
      const dropsB = pipe(filter((r: KafkaRecord) => r.offset !== 1n), map((r) => [r]), ackAs('some'));
      expectObservable(e1.pipe(fanOut(all, dropsB), map(show))).toBe('-(xy)z---(uv)|', {
        x: 'all:',
        y: 'some:0/0',
        z: 'all:', // b: never complete
        u: 'all:',
        v: 'some:0/2',
      });
    });
  });

  it('a redelivered record waits for every branch again', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const e1 = cold(' -a---a|', values);
      let n = 0;
      // The second branch acknowledges only the first delivery.
      const once = pipe(filter((_: KafkaRecord) => n++ === 0), map((r: KafkaRecord) => [r]), ackAs('once'));
      const each = pipe(map((r: KafkaRecord) => [r]), ackAs('each'));
      expectObservable(e1.pipe(fanOut(each, once), map(show))).toBe('-(xy)z|', { x: 'each:', y: 'once:0/0', z: 'each:' });
    });
  });

  it('subscribes the source once and every branch before it', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const e1 = cold(' (ab|)', values);
      const one = pipe(map((r: KafkaRecord) => [r]), ackAs('one'));
      const two = pipe(map((r: KafkaRecord) => [r]), ackAs('two'));
      // A synchronous source: both branches see both records.
      expectObservable(e1.pipe(fanOut(one, two), map(show))).toBe('(wxyz|)', {
        w: 'one:',
        x: 'two:0/0',
        y: 'one:',
        z: 'two:0/1',
      });
      expectSubscriptions(e1.subscriptions).toBe('(^!)');
    });
  });

  it('errors with the first error of a branch and tears everything down', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a---b---c-|', values);
      const ok = pipe(map((r: KafkaRecord) => [r]), ackAs('ok'));
      const failing = pipe(
        map((r: KafkaRecord) => {
          if (r.offset === 1n) throw new Error('sink down');
          return [r];
        }),
        ackAs('f'),
      );
      expectObservable(e1.pipe(fanOut(ok, failing), map(show))).toBe('-(xy)(z#)', { x: 'ok:', y: 'f:0/0', z: 'ok:' }, new Error('sink down'));
      expectSubscriptions(e1.subscriptions).toBe('^----!');
    });
  });

  it('forwards an error of the source to every branch and out', () => {
    testScheduler().run(({ hot, expectObservable }) => {
      const e1 = hot('  -a-#', values);
      const one = pipe(map((r: KafkaRecord) => [r]), ackAs('one'));
      const batched = pipe(bufferTime<KafkaRecord>({ timeSpan: 10 }), ackAs('two'));
      expectObservable(e1.pipe(fanOut(one, batched), map(show))).toBe('-x-#', { x: 'one:' });
    });
  });

  it('unsubscribing stops the source and the branches', () => {
    testScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const e1 = hot('  -a-b-c-|', values);
      const one = pipe(map((r: KafkaRecord) => [r]), ackAs('one'));
      expectObservable(e1.pipe(fanOut(one), map(show)), '^-!').toBe('-x', { x: 'one:0/0' });
      expectSubscriptions(e1.subscriptions).toBe('^-!');
    });
  });

  it('tells offsets apart past 2^53', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const big = (o: bigint): KafkaRecord => ({ ...rec(0, 'x'), offset: o });
      // 2^60 and 2^60 + 1 are the same JavaScript number: keyed as numbers they would collide.
      const e1 = cold(' -a-b|', { a: big(2n ** 60n), b: big(2n ** 60n + 1n) });
      const first = pipe(map((r: KafkaRecord) => [r]), ackAs('one'));
      // The second branch acknowledges both records at the end, in one ack.
      const atEnd = pipe(bufferTime<KafkaRecord>({ timeSpan: 100 }), ackAs('two'));
      expectObservable(e1.pipe(fanOut(first, atEnd), map(show))).toBe('-a-b(c|)', {
        a: 'one:',
        b: 'one:',
        c: `two:0/${2n ** 60n},0/${2n ** 60n + 1n}`,
      });
    });
  });

  it('rejects no branches and more than 30', () => {
    expect(() => fanOut()).toThrow(/at least one/);
    const one = pipe(map((r: KafkaRecord) => [r]), ackAs('x'));
    expect(() => fanOut(...Array.from({ length: 31 }, () => one))).toThrow(/at most 30/);
  });
});
