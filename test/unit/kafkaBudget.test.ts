/**
 * The in-flight budget over a fake client and a fake clock: the batch handler holds the next
 * fetch back (its promise stays pending, heart-beating) while the budget or the read-ahead
 * queue is full, asks downstream for writes, and goes on when acknowledgements free room.
 */
import { describe, expect, it } from 'vitest';
import { InFlightBudget, WAIT_SLICE_MS } from '../../src/sources/kafka/budget.ts';
import { OffsetTracker } from '../../src/sources/offsetTracker.ts';
import { FakeClock, harness, ids, settle } from './kafkaFakes.ts';

function tracked<T>(p: Promise<T>): { readonly settled: boolean } {
  const state = { settled: false };
  p.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

describe('InFlightBudget', () => {
  it('counts records and bytes in flight; one record always fits an empty budget', () => {
    const tracker = new OffsetTracker();
    const budget = new InFlightBudget(tracker, { maxRecords: 2, maxBytes: 100, clock: new FakeClock() });
    expect(budget.over(1_000)).toBe(false); // larger than the byte bound, but nothing is in flight
    tracker.emit('t', 0, 0n, 60);
    expect(budget.over(40)).toBe(false);
    expect(budget.over(41)).toBe(true);
    tracker.emit('t', 0, 1n, 1);
    expect(budget.over(0)).toBe(true); // record bound
    tracker.acknowledge([{ topic: 't', partition: 0, offset: 0n }]);
    expect(budget.over(99)).toBe(false);
  });

  it('waits while blocked, heart-beating every slice, and stops waiting when the batch no longer matters', async () => {
    const clock = new FakeClock();
    const budget = new InFlightBudget(new OffsetTracker(), { maxRecords: 1, maxBytes: 1, clock });
    let blocked = true;
    let live = true;
    let beats = 0;
    const waiting = budget.waitWhile(() => blocked, () => live, () => Promise.resolve(void (beats += 1)));
    const state = tracked(waiting);
    await clock.advance(3 * WAIT_SLICE_MS);
    expect(beats).toBe(3);
    expect(state.settled).toBe(false);
    blocked = false;
    budget.wake();
    expect(await waiting).toBe(true);

    blocked = true;
    const stopped = budget.waitWhile(() => blocked, () => live, () => Promise.resolve());
    live = false;
    budget.wake();
    expect(await stopped).toBe(false);
  });
});

describe('fromKafka backpressure (fake client)', () => {
  it('holds the batch handler (and so the next fetch) while maxInFlightRecords are unacknowledged, asks for writes, goes on after acknowledgements', async () => {
    const h = harness({ maxInFlightRecords: 3 });
    const r = h.subscribe();
    let saturated = 0;
    h.source.saturated$.subscribe(() => (saturated += 1));
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    const { batch, done } = c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4, 5, 6, 7] });
    const handler = tracked(done);
    await settle();
    expect(h.source.stats().inFlightRecords).toBe(3);
    expect(saturated).toBe(0); // records 0..2 are still queued here: nothing for downstream to write yet
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 2));
    expect(saturated).toBe(1); // every record read is downstream and the handler waits: write what you hold
    // Still waiting: heart-beats after each wake-up (the slice above, then every WAIT_SLICE_MS)
    // and asks again each time it finds the budget spent.
    await h.clock.advance(2 * WAIT_SLICE_MS);
    expect(handler.settled).toBe(false);
    expect(batch.heartbeats).toBe(3);
    expect(saturated).toBe(4);
    expect(batch.resolved).toEqual([2n]); // resolved before waiting

    h.source.acknowledge(r.records.slice(0, 2));
    await settle();
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 4));
    expect(handler.settled).toBe(false);
    h.source.acknowledge(r.records.slice(2));
    await settle();
    h.slices.run();
    h.source.acknowledge(r.records.slice(5));
    await done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 7));
    expect(h.source.stats().peakInFlightRecords).toBe(3);
  });

  it('bounds bytes in flight by maxInFlightBytes', async () => {
    const h = harness({ maxInFlightBytes: 50 });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    // 12 bytes per record (key k<n> of 2 bytes + 10-byte value): 4 fit in 50 bytes.
    const { done } = c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4, 5] });
    const handler = tracked(done);
    await settle();
    h.slices.run();
    expect(r.records).toHaveLength(4);
    expect(h.source.stats().inFlightBytes).toBe(48);
    expect(handler.settled).toBe(false);
    h.source.acknowledge(r.records);
    await done;
    h.slices.run();
    expect(r.records).toHaveLength(6);
  });

  it('release() frees budget without making the records committable', async () => {
    const h = harness({ maxInFlightRecords: 2 });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    const { done } = c.fetch('t', 0, { offsets: [0, 1, 2] });
    await settle();
    h.slices.run();
    h.source.release(r.records);
    await done;
    h.slices.run();
    expect(r.records).toHaveLength(3);
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 0n }]);
    h.source.acknowledge(r.records);
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 3n }]);
  });

  it('reads no further ahead than maxReadAheadRecords: the handler waits for the hand-off queue to shorten', async () => {
    const h = harness({ maxReadAheadRecords: 2 });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    const { batch, done } = c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4] });
    const handler = tracked(done);
    await settle();
    expect(h.source.stats().inFlightRecords).toBe(2);
    expect(handler.settled).toBe(false);
    // A slice delivers the queue and wakes the handler.
    h.slices.run();
    await settle();
    expect(r.records).toHaveLength(2);
    expect(h.source.stats().inFlightRecords).toBe(4);
    h.slices.run();
    await done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 4));
    expect(batch.resolved).toEqual([1n, 3n, 4n]);
  });
});
