/**
 * `resumeFrom` over a fake client: a newly assigned partition seeks to max(sink durable,
 * last emitted + 1) unless the group's committed offset is there already; its first batch
 * waits for that decision and nothing below it is emitted.
 */
import { describe, expect, it } from 'vitest';
import { harness, ids, settle } from './kafkaFakes.ts';

describe('resumeFrom', () => {
  it('seeks past what the sink holds; a batch fetched before the seek waits for it and is dropped', async () => {
    const asked: string[] = [];
    const h = harness({
      resumeFrom: (topic, partition) => {
        asked.push(`${topic}/${partition}`);
        return Promise.resolve(partition === 0 ? 10n : undefined);
      },
    });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    expect(c.lookupsClosed).toBe(0);
    c.join(['t', 0], ['t', 1]);
    const early = c.fetch('t', 0, { offsets: [8, 9, 10, 11] });
    await early.done;
    h.slices.run();
    expect(asked).toEqual(['t/0', 't/1']);
    expect(c.seeks).toEqual([{ topic: 't', partition: 0, offset: 10n }]);
    expect(r.records).toHaveLength(0);
    expect(early.batch.resolved).toEqual([]);
    // The client fetches again from the seek; a broker answering from before it still emits nothing below it.
    await c.fetch('t', 0, { offsets: [9, 10, 11] }).done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 10, 11));
    // Committable from the resume point on, once acknowledged.
    h.source.acknowledge(r.records);
    expect(await h.source.commit()).toContainEqual({ topic: 't', partition: 0, offset: 12n });
  });

  it('does not seek behind the group\'s committed offset', async () => {
    const h = harness({ resumeFrom: () => Promise.resolve(10n) }, (c) => c.groupOffsets.set('t/0', 12n));
    h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    await settle();
    expect(c.seeks).toEqual([]);
  });

  it('resumes a partition that comes back after its records still in flight, never before them', async () => {
    const h = harness({ resumeFrom: () => Promise.resolve(3n) });
    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['t', 0]);
    await settle();
    expect(c.seeks).toEqual([{ topic: 't', partition: 0, offset: 3n }]);
    await c.fetch('t', 0, { offsets: [3, 4, 5, 6, 7] }).done;
    h.slices.run();
    expect(r.ids()).toEqual(ids('t', 0, 3, 7));
    c.join(['t', 1]); // revoked with 3..7 in flight (the sink holds up to 2 only)
    c.join(['t', 0], ['t', 1]); // back: resume at 8, not at the sink's 3
    await settle();
    expect(c.seeks.filter((s) => s.partition === 0).map((s) => s.offset)).toEqual([3n, 8n]);
  });

  it('fails the subscription when the sink cannot say where it resumes', async () => {
    const h = harness({ resumeFrom: () => Promise.reject(new Error('table unreadable')) });
    const r = h.subscribe();
    await settle();
    h.clients.last.join(['t', 0]);
    await settle();
    expect(String(r.error)).toContain('table unreadable');
  });
});
