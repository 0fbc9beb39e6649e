/**
 * The batch handler over a fake client: records emitted once, in order, as the client's bytes;
 * offsets at or below a partition's last emitted one never emitted again (redelivery after a
 * rebalance); partitions revoked and reassigned while their records are in flight.
 */
import { describe, expect, it } from 'vitest';
import { harness, ids, settle } from './kafkaFakes.ts';

async function started(options: Parameters<typeof harness>[0] = {}) {
  const h = harness(options);
  const r = h.subscribe();
  await settle();
  return { h, r, c: h.clients.last };
}

describe('batch handler', () => {
  it('emits each record once with the client bytes, resolves the last offset read and records the high-water mark', async () => {
    const { h, r, c } = await started();
    c.join(['t', 0]);
    const { batch, done } = c.fetch('t', 0, { offsets: [0, 1, 2], highWatermark: 9, headers: { h: Buffer.from([1]), s: 'text', many: ['a', Buffer.from('b')] } });
    await done;
    // Queued, not emitted yet: the hand-off delivers on a later turn (the next fetch goes out first).
    expect(r.records).toHaveLength(0);
    expect(h.source.stats().inFlightRecords).toBe(3);
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 2));
    const first = r.records[0];
    expect(first?.key).toEqual(Buffer.from('k0'));
    expect(first?.value).toEqual(Buffer.alloc(10, 0));
    expect(first?.timestamp).toBe(1_700_000_000_000);
    expect(first?.size).toBe(12);
    expect(first?.headers).toEqual({ h: Buffer.from([1]), s: Buffer.from('text'), many: Buffer.from('b') });
    expect(batch.resolved).toEqual([2n]);
    expect(h.source.stats().partitions).toEqual([{ topic: 't', partition: 0, highWatermark: 9n, lastEmitted: 2n }]);
  });

  it('does not emit again what the broker re-sends after a rebalance that keeps the partition (offsets at or below the floor)', async () => {
    const { h, r, c } = await started();
    c.join(['t', 0]);
    await c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4] }).done;
    h.slices.run();
    // A rebalance: same partition, the broker sends again from the committed offset (none: 0).
    c.join(['t', 0]);
    const again = c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4, 5, 6] });
    await again.done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 6));
    // Read (resolved) up to the end, emitted from 5 only.
    expect(again.batch.resolved).toEqual([6n]);
    expect(h.source.stats().inFlightRecords).toBe(7);
    expect(h.logs.some((l) => l.includes('not emitted twice') && l.includes('"redelivered":5') && l.includes('"lastEmitted":"4"'))).toBe(true);
  });

  it('keeps a revoked partition\'s records in flight, commits only owned partitions, and does not emit them again when the partition comes back', async () => {
    const { h, r, c } = await started();
    c.join(['t', 0], ['t', 1]);
    await c.fetch('t', 0, { offsets: [0, 1, 2] }).done;
    await c.fetch('t', 1, { offsets: [0, 1, 2] }).done;
    h.slices.run();
    h.source.acknowledge([{ topic: 't', partition: 0, offset: 0n }]);

    // t/0 goes to another member while 1 and 2 are still in the chain.
    c.join(['t', 1]);
    expect(h.source.stats().partitions.map((p) => `${p.topic}/${p.partition}`)).toEqual(['t/1']);
    expect(h.source.stats().inFlightRecords).toBe(5); // budget still held by t/0's records
    h.source.acknowledge(r.records.filter((x) => x.partition === 1));
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 1, offset: 3n }]);
    expect(c.commits.flat().some((o) => o.partition === 0)).toBe(false);

    // The chain writes them after the revoke: the acknowledgements still free the budget.
    h.source.acknowledge([
      { topic: 't', partition: 0, offset: 1n },
      { topic: 't', partition: 0, offset: 2n },
    ]);
    expect(h.source.stats().inFlightRecords).toBe(0);

    // t/0 comes back; the broker sends it again from the committed offset (none): 0..4.
    c.join(['t', 0], ['t', 1]);
    const back = c.fetch('t', 0, { offsets: [0, 1, 2, 3, 4] });
    await back.done;
    h.slices.run();
    expect(r.ids().filter((id) => id.startsWith('t/0'))).toEqual(ids('t', 0, 0, 4));
    h.source.acknowledge(r.records.filter((x) => x.partition === 0 && x.offset >= 3n));
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 5n }]);
  });

  it('never emits a record of a batch made stale by a seek, nor resolves past the seek', async () => {
    const { h, r, c } = await started({ maxInFlightRecords: 2 });
    c.join(['t', 0]);
    const { batch, done } = c.fetch('t', 0, { offsets: [0, 1, 2, 3] });
    await settle();
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 1));
    batch.stale = true; // a seek meanwhile
    h.source.acknowledge(r.records);
    await done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 0, 1));
    // Resolved before waiting (1), nothing after the batch went stale.
    expect(batch.resolved).toEqual([1n]);
  });

  it('makes offsets past transaction markers committable: a batch ending on a control record, and a fetch of markers only', async () => {
    const { h, r, c } = await started();
    c.join(['t', 0], ['t', 1]);
    // Records 0 and 1, then a commit marker at 2.
    await c.fetch('t', 0, { offsets: [0, 1], lastOffset: 2 }).done;
    h.slices.run();
    h.source.acknowledge(r.records);
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 3n }]);
    // A fetch of an aborted transaction and its marker, 3..5: it never reaches the handler.
    c.events.skipped('t', 0, 5n);
    // Not assigned here: ignored.
    c.events.skipped('t', 7, 5n);
    expect(await h.source.commit()).toEqual([{ topic: 't', partition: 0, offset: 6n }]);
    expect(h.source.stats().partitions.map((p) => p.partition)).toEqual([0, 1]);
  });

  it('emits nothing of a batch fetched for a consumer that stopped or left the generation', async () => {
    const { h, r, c } = await started();
    c.join(['t', 0]);
    await c.fetch('t', 0, { offsets: [0, 1], running: false }).done;
    h.slices.run();
    expect(r.records).toHaveLength(0);
    expect(h.source.stats().inFlightRecords).toBe(0);
  });
});
