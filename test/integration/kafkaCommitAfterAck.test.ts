import { describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import type { CommitEvent } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, fastGroup, produce, recordingSink, until, readBounded } from './kafkaSupport.ts';

describe('fromKafka commits only acknowledged offsets', () => {
  it('redelivers, after a restart, a record whose sink never acknowledged it', async () => {
    const topic = uniqueName('rx-ack');
    const groupId = uniqueName('g-ack');
    const count = 100;
    const held = 40n;
    await createTopic(topic, 1);
    await produce(topic, count, 1);

    // Run 1 (unbounded): the sink acknowledges every record except offset 40.
    const source1 = fromKafka({ brokers: stack.kafkaBrokers, groupId, topics: [topic], startFrom: 'earliest', consumer: fastGroup });
    const seen1: KafkaRecord[] = [];
    const commits1: CommitEvent[] = [];
    const sub = source1.records$
      .pipe(
        bufferTime({ timeSpan: 50, maxRecords: 30 }),
        recordingSink((rs) => seen1.push(...rs), { hold: (r) => r.offset === held }),
        commitOffsets(source1),
      )
      .subscribe({ next: (c) => commits1.push(c), error: (err: unknown) => { throw err; } });
    await until(() => seen1.length === count - 1, 30_000, 'run 1 to see every record but one');
    await until(() => commits1.some((c) => c.offsets.some((o) => o.offset === held)), 10_000, 'a commit at the held offset');
    // Give later acks (41..99) time to (wrongly) move the commit past the held record.
    await new Promise((r) => setTimeout(r, 300));
    const stats = source1.stats();
    sub.unsubscribe();

    expect(stats.inFlightRecords).toBe(1);
    expect(stats.partitions[0]).toMatchObject({ lastEmitted: BigInt(count - 1), committed: held });
    for (const c of commits1) for (const o of c.offsets) expect(o.offset).toBeLessThanOrEqual(held);
    await until(async () => (await committedOffsets(groupId, topic)).get(0) === held, 10_000, 'broker offset at 40');

    // Run 2: a new consumer of the same group starts at the unacknowledged record.
    const seen2 = await readBounded({ groupId, topics: [topic] });
    expect(seen2[0]?.offset).toBe(held);
    expect(seen2.map((r) => r.offset)).toEqual(Array.from({ length: count - 40 }, (_, i) => held + BigInt(i)));
    expect((await committedOffsets(groupId, topic)).get(0)).toBe(BigInt(count));
  });
});
