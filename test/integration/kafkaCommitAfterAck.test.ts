import { describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import type { CommitEvent } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { OffsetCommitTarget } from '../../src/sources/offsetTracker.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { Changes } from '../support/wait.ts';
import { committedOffsets, createTopic, fastGroup, produce, readBounded, recordingSink, sourceClients } from './kafkaSupport.ts';

describe.each(sourceClients)('fromKafka commits only acknowledged offsets (client $name)', ({ client }) => {
  it('redelivers, after a restart, a record whose sink never acknowledged it', async () => {
    const topic = uniqueName('rx-ack');
    const groupId = uniqueName('g-ack');
    const count = 100;
    const held = 40n;
    const last = BigInt(count - 1);
    await createTopic(topic, 1);
    await produce(topic, count, 1);

    // Run 1 (unbounded): the sink acknowledges every record except offset 40.
    const source1 = fromKafka({ client, brokers: stack.kafkaBrokers, groupId, topics: [topic], startFrom: 'earliest', consumer: fastGroup });
    const changes = new Changes();
    // The source itself, its commits observed: a commit that starts once the ack of the last
    // record was handed to the source covers every later ack (41..99).
    let lastAcknowledged = false;
    let lastCovered = false;
    const observed: OffsetCommitTarget = {
      acknowledge: (refs) => {
        source1.acknowledge(refs);
        if (refs.some((r) => r.offset === last)) lastAcknowledged = true;
      },
      commit: async () => {
        const covers = lastAcknowledged;
        const committed = await source1.commit();
        if (covers) lastCovered = true;
        changes.changed();
        return committed;
      },
      retain: () => source1.retain(),
    };
    const seen1: KafkaRecord[] = [];
    const commits1: CommitEvent[] = [];
    const errors: unknown[] = [];
    const sub = source1.records$
      .pipe(
        bufferTime({ timeSpan: 50, maxRecords: 30 }),
        recordingSink(
          (rs) => {
            seen1.push(...rs);
            changes.changed();
          },
          { hold: (r) => r.offset === held },
        ),
        commitOffsets(observed),
      )
      .subscribe({
        next: (c) => {
          commits1.push(c);
          changes.changed();
        },
        error: (err: unknown) => {
          errors.push(err);
          changes.fail(err);
        },
      });
    await changes.until('run 1 to see every record but one', () => seen1.length === count - 1, 30_000);
    // Had the later acks (41..99) moved the commit past the held record, the commit covering
    // them would have committed it: wait for that commit (and the one at the held offset).
    await changes.until(
      'the commit covering the last ack, and a commit at the held offset',
      () => lastCovered && commits1.some((c) => c.offsets.some((o) => o.offset === held)),
      10_000,
    );
    const stats = source1.stats();
    sub.unsubscribe();

    expect(errors).toEqual([]);
    expect(stats.inFlightRecords).toBe(1);
    expect(stats.partitions[0]).toMatchObject({ lastEmitted: last, committed: held });
    for (const c of commits1) for (const o of c.offsets) expect(o.offset).toBeLessThanOrEqual(held);
    // Commit events report offsets the broker confirmed: it holds 40 now.
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(held);

    // Run 2: a new consumer of the same group starts at the unacknowledged record.
    const seen2 = await readBounded({ client, groupId, topics: [topic] });
    expect(seen2[0]?.offset).toBe(held);
    expect(seen2.map((r) => r.offset)).toEqual(Array.from({ length: count - 40 }, (_, i) => held + BigInt(i)));
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(BigInt(count));
  });
});
