import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../src/sources/offsetTracker.ts';
import type { RecordRef } from '../../src/types.ts';

const ref = (offset: bigint, partition = 0, topic = 't'): RecordRef => ({ topic, partition, offset });

describe('OffsetTracker', () => {
  it('commits nothing before anything is emitted', () => {
    const t = new OffsetTracker();
    t.assign('t', 0);
    expect(t.committable('t', 0)).toBeUndefined();
    expect(t.pending()).toEqual([]);
  });

  it('holds the committable offset at the lowest unacknowledged record under out-of-order acks', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 5n; o++) t.emit('t', 0, o, 10);
    expect(t.committable('t', 0)).toBe(0n);
    t.acknowledge([ref(3n), ref(1n)]);
    expect(t.committable('t', 0)).toBe(0n);
    t.acknowledge([ref(0n)]);
    expect(t.committable('t', 0)).toBe(2n);
    t.acknowledge([ref(4n)]);
    expect(t.committable('t', 0)).toBe(2n);
    t.acknowledge([ref(2n)]);
    expect(t.committable('t', 0)).toBe(5n);
    expect(t.inFlightRecords).toBe(0);
    expect(t.inFlightBytes).toBe(0);
  });

  it('tracks actual emitted offsets across gaps (compaction, transaction markers)', () => {
    const t = new OffsetTracker();
    for (const o of [10n, 11n, 15n, 40n]) t.emit('t', 0, o, 1);
    t.acknowledge([ref(10n), ref(11n)]);
    expect(t.committable('t', 0)).toBe(15n);
    t.acknowledge([ref(15n)]);
    expect(t.committable('t', 0)).toBe(40n);
    t.acknowledge([ref(12n)]); // never emitted: ignored
    expect(t.committable('t', 0)).toBe(40n);
    t.acknowledge([ref(40n)]);
    expect(t.committable('t', 0)).toBe(41n);
  });

  it('release() frees the budget of records without making them committable; the ack later frees nothing twice', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 4n; o++) t.emit('t', 0, o, 100);
    expect(t.release([ref(1n, 0), ref(2n, 0), ref(2n, 0), ref(0n, 9)])).toBe(2);
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([2, 200]);
    expect(t.committable('t', 0)).toBe(0n);
    t.acknowledge([ref(0n, 0), ref(1n, 0)]);
    // 0 frees its budget on its ack, 1 had it freed already: only 3 still counts.
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([1, 100]);
    expect(t.committable('t', 0)).toBe(2n);
    // A released record that is acknowledged frees nothing more; one not yet acknowledged holds the commit.
    t.acknowledge([ref(3n, 0)]);
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([0, 0]);
    expect(t.committable('t', 0)).toBe(2n);
    // Revoking a partition with released records does not free them twice.
    t.emit('t', 0, 4n, 50);
    t.release([ref(4n, 0)]);
    t.revoke('t', 0);
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([0, 0]);
  });

  it('counts acks from two sinks once each and double acks once', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 4n; o++) t.emit('t', 0, o, 100);
    expect(t.acknowledge([ref(0n), ref(2n)])).toBe(2); // main table
    expect(t.acknowledge([ref(1n), ref(3n)])).toBe(2); // dead-letter table
    expect(t.acknowledge([ref(1n)])).toBe(0);
    expect(t.committable('t', 0)).toBe(4n);
    expect(t.stats()).toMatchObject({ inFlightRecords: 0, inFlightBytes: 0, peakInFlightRecords: 4, peakInFlightBytes: 400 });
  });

  it('keeps partitions independent and reports only advanced positions as pending', () => {
    const t = new OffsetTracker();
    t.emit('t', 0, 0n, 1);
    t.emit('t', 1, 7n, 1);
    t.emit('u', 0, 3n, 1);
    t.acknowledge([ref(0n, 0), ref(7n, 1)]);
    expect(t.pending()).toEqual(
      expect.arrayContaining([
        { topic: 't', partition: 0, offset: 1n },
        { topic: 't', partition: 1, offset: 8n },
        { topic: 'u', partition: 0, offset: 3n },
      ]),
    );
    for (const p of t.pending()) t.markCommitted(p.topic, p.partition, p.offset);
    expect(t.pending()).toEqual([]);
    t.acknowledge([ref(3n, 0, 'u')]);
    expect(t.pending()).toEqual([{ topic: 'u', partition: 0, offset: 4n }]);
  });

  it('stops committing and reporting a revoked partition, but keeps its in-flight records and their acks', () => {
    const t = new OffsetTracker();
    t.emit('t', 0, 0n, 5);
    t.emit('t', 0, 1n, 5);
    t.emit('t', 1, 0n, 7);
    t.reassign([{ topic: 't', partition: 1 }]);
    expect(t.isAssigned('t', 0)).toBe(false);
    // Its records are still in the chain: they hold their budget until written.
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([3, 17]);
    expect(t.stats().partitions.map((p) => p.partition)).toEqual([1]);
    expect(t.pending()).toEqual([{ topic: 't', partition: 1, offset: 0n }]);
    expect(t.acknowledge([ref(0n, 0)])).toBe(1);
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([2, 12]);
    // Assigned back while offset 1 is still in flight: the broker sends 0..2 again from the
    // group's committed offset; only 2 is new.
    t.reassign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    expect(t.emit('t', 0, 0n, 5)).toBe(false);
    expect(t.emit('t', 0, 1n, 5)).toBe(false);
    expect(t.emit('t', 0, 2n, 5)).toBe(true);
    // Nothing past the first copy of 1 is committable until it is acknowledged.
    expect(t.committable('t', 0)).toBe(1n);
    t.acknowledge([ref(2n, 0)]);
    expect(t.committable('t', 0)).toBe(1n);
    t.acknowledge([ref(1n, 0)]);
    expect(t.committable('t', 0)).toBe(3n);
    expect(t.pending()).toContainEqual({ topic: 't', partition: 0, offset: 3n });
  });

  it('never emits an offset twice: a partition kept through a rebalance is read again from the committed offset', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 3n; o++) expect(t.emit('t', 0, o, 2)).toBe(true);
    t.acknowledge([ref(0n)]);
    t.markCommitted('t', 0, 1n);
    t.reassign([{ topic: 't', partition: 0 }]); // a new generation keeps the partition
    expect(t.emit('t', 0, 1n, 2)).toBe(false); // the broker goes back to the committed offset
    expect(t.emit('t', 0, 2n, 2)).toBe(false);
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([2, 4]);
    expect(t.emit('t', 0, 3n, 2)).toBe(true);
    expect(t.committed('t', 0)).toBe(1n);
    expect(t.committable('t', 0)).toBe(1n);
    t.acknowledge([ref(1n), ref(2n), ref(3n)]);
    expect(t.committable('t', 0)).toBe(4n);
  });

  it('starts over only with a new chain (clear)', () => {
    const t = new OffsetTracker();
    t.emit('t', 0, 5n, 1);
    t.clear();
    expect([t.inFlightRecords, t.inFlightBytes]).toEqual([0, 0]);
    expect(t.emit('t', 0, 5n, 1)).toBe(true);
  });

  it('stays exact over many records (compaction of acknowledged prefixes)', () => {
    const t = new OffsetTracker();
    const n = 20_000;
    for (let i = 0; i < n; i++) t.emit('t', 0, BigInt(i * 2), 1); // even offsets only
    // Acknowledge in blocks, each block in reverse order, leaving offset 30000 for last.
    const hole = 30_000n;
    for (let start = 0; start < n; start += 1000) {
      const refs: RecordRef[] = [];
      for (let i = Math.min(n, start + 1000) - 1; i >= start; i--) {
        if (BigInt(i * 2) !== hole) refs.push(ref(BigInt(i * 2)));
      }
      t.acknowledge(refs);
    }
    expect(t.committable('t', 0)).toBe(hole);
    expect(t.inFlightRecords).toBe(1);
    t.acknowledge([ref(hole)]);
    expect(t.committable('t', 0)).toBe(BigInt((n - 1) * 2 + 1));
    expect(t.inFlightRecords).toBe(0);
  });
});

describe('OffsetTracker.resumeAt', () => {
  it('makes the resume offset committable and continues from it', () => {
    const t = new OffsetTracker();
    t.resumeAt('t', 0, 30n);
    expect(t.inFlightRecords).toBe(0);
    expect(t.committable('t', 0)).toBe(30n);
    expect(t.emit('t', 0, 29n, 1)).toBe(false); // below the resume offset: the sink holds it
    t.emit('t', 0, 30n, 1);
    t.emit('t', 0, 31n, 1);
    expect(t.committable('t', 0)).toBe(30n);
    t.acknowledge([{ topic: 't', partition: 0, offset: 30n }]);
    expect(t.committable('t', 0)).toBe(31n);
  });

  it('keeps records emitted before the seek in flight: the resume offset is committable after them', () => {
    const t = new OffsetTracker();
    t.emit('t', 0, 3n, 1);
    t.resumeAt('t', 0, 30n);
    expect(t.inFlightRecords).toBe(1);
    expect(t.committable('t', 0)).toBe(3n);
    t.acknowledge([{ topic: 't', partition: 0, offset: 3n }]);
    expect(t.committable('t', 0)).toBe(30n);
  });
});

describe('OffsetTracker.skipTo', () => {
  it('commits past data-less offsets (transaction markers) only once everything emitted is acknowledged', () => {
    const t = new OffsetTracker();
    t.emit('t', 0, 0n, 1);
    t.emit('t', 0, 1n, 1);
    t.skipTo('t', 0, 3n); // offset 2 is a marker
    expect(t.committable('t', 0)).toBe(0n);
    t.acknowledge([{ topic: 't', partition: 0, offset: 1n }]);
    expect(t.committable('t', 0)).toBe(0n);
    t.acknowledge([{ topic: 't', partition: 0, offset: 0n }]);
    expect(t.committable('t', 0)).toBe(3n);
    t.skipTo('t', 0, 2n); // never moves back
    expect(t.committable('t', 0)).toBe(3n);
    t.emit('t', 0, 3n, 1);
    expect(t.committable('t', 0)).toBe(3n);
    // A partition of only aborted records: its end is committable.
    t.skipTo('t', 1, 6n);
    expect(t.committable('t', 1)).toBe(6n);
  });
});
