/**
 * Bounded mode (`untilCaughtUp`) and start-up look-ups over a fake client: the run completes
 * once every assigned partition reached the high-water mark found at start, emits nothing past
 * it, counts what another member committed, and seeks a timestamp start once assigned.
 */
import { describe, expect, it } from 'vitest';
import { BoundedProgress } from '../../src/sources/kafka/bounded.ts';
import { harness, ids, settle } from './kafkaFakes.ts';
import type { FakeKafkaClient } from './kafkaFakes.ts';

function twoPartitions(c: FakeKafkaClient): void {
  c.ranges.set('t', [
    { partition: 0, low: 0n, high: 3n },
    { partition: 1, low: 0n, high: 0n },
  ]);
}

describe('BoundedProgress', () => {
  it('moves positions forward only, caps a batch end at the start high-water mark, and is caught up when every assigned partition is there', () => {
    const p = new BoundedProgress();
    p.start(new Map([['a', 10n], ['b', 0n]]), new Map([['a', 2n], ['b', 0n]]));
    expect(p.caughtUp(['a', 'b'])).toBe(false);
    expect(p.caughtUp(['b'])).toBe(true);
    p.advance('a', 1n);
    expect(p.position('a')).toBe(2n);
    p.advanceCapped('a', 15n);
    expect(p.position('a')).toBe(10n);
    expect(p.caughtUp(['a', 'b'])).toBe(true);
    expect(p.hwm('unknown')).toBe(0n);
    expect(p.caughtUp(['unknown'])).toBe(false); // never read, no position
    p.raise(new Map([['unknown', 0n]]));
    expect(p.caughtUp(['unknown'])).toBe(true);
  });
});

describe('bounded mode (fake client)', () => {
  it('emits up to the start high-water marks, pauses each partition there, and completes once all are caught up', async () => {
    const h = harness({ untilCaughtUp: true, startFrom: 'earliest' }, twoPartitions);
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    expect(c.calls).toEqual(['connect', 'committedOffsets t', 'subscribe t true', 'run']);
    expect(c.lookupsClosed).toBe(0); // kept: joins re-read the group's offsets
    c.join(['t', 0], ['t', 1]);
    await settle();
    expect(r.completed).toBe(false);
    // Records produced after the start are past the mark: not emitted.
    await c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4] }).done;
    expect(r.ids()).toEqual(ids('t', 0, 0, 2)); // flushed before completing
    expect(r.completed).toBe(true);
    expect(c.paused).toEqual([{ topic: 't', partitions: [0] }, { topic: 't' }]);
  });

  it('completes when a batch ends exactly at the mark (its last offset a control record)', async () => {
    const h = harness({ untilCaughtUp: true, startFrom: 'earliest' }, twoPartitions);
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0], ['t', 1]);
    await c.fetch('t', 0, { offsets: [0, 1], lastOffset: 2 }).done;
    expect(r.completed).toBe(true);
    expect(r.ids()).toEqual(ids('t', 0, 0, 1));
  });

  it('completes at once for a group already at the end, and counts what another member committed meanwhile', async () => {
    const h = harness({ untilCaughtUp: true, startFrom: 'earliest' }, (c) => {
      twoPartitions(c);
      c.groupOffsets.set('t/0', 1n);
    });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.groupOffsets.set('t/0', 3n); // another member finished partition 0 before this one got it
    c.join(['t', 0], ['t', 1]);
    await settle();
    expect(r.completed).toBe(true);
    expect(r.records).toHaveLength(0);
  });

  it('waits for every assigned partition: one caught up is not enough', async () => {
    const h = harness({ untilCaughtUp: true, startFrom: 'earliest' }, (c) =>
      c.ranges.set('t', [
        { partition: 0, low: 0n, high: 2n },
        { partition: 1, low: 0n, high: 2n },
      ]),
    );
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0], ['t', 1]);
    await c.fetch('t', 0, { offsets: [0, 1] }).done;
    expect(r.completed).toBe(false);
    await c.fetch('t', 1, { offsets: [0, 1] }).done;
    expect(r.completed).toBe(true);
  });

  it('starts a group without committed offsets at a timestamp: seeks each partition once assigned, and releases the look-up connection', async () => {
    const h = harness({ startFrom: { timestamp: 1_700_000_000_500 } }, (c) => {
      c.ranges.set('t', [
        { partition: 0, low: 5n, high: 100n },
        { partition: 1, low: 0n, high: 50n },
        { partition: 2, low: 0n, high: 7n },
      ]);
      c.byTimestamp.set('t', [
        { partition: 0, offset: 2n }, // below the first offset: from the first offset
        { partition: 1, offset: 20n },
        { partition: 2, offset: -1n }, // nothing that late: from the end
      ]);
    });
    h.subscribe();
    await settle();
    const c = h.clients.last;
    expect(c.calls).toContain('subscribe t false');
    expect(c.lookupsClosed).toBe(1);
    c.join(['t', 0], ['t', 1]);
    expect(c.seeks).toEqual([
      { topic: 't', partition: 0, offset: 5n },
      { topic: 't', partition: 1, offset: 20n },
    ]);
    c.join(['t', 1], ['t', 2]);
    expect(c.seeks.slice(2)).toEqual([{ topic: 't', partition: 2, offset: 7n }]);
  });
});
