import { describe, expect, it } from 'vitest';
import type { KafkaRecord } from '../../src/types.ts';
import { uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, produce, readBounded, sourceClients } from './kafkaSupport.ts';

describe.each(sourceClients)('fromKafka resumeFrom (client $name)', ({ client }) => {
  it('seeks past what a sink already holds, but never behind the committed offset', async () => {
    const topic = uniqueName('rx-resume');
    const groupId = uniqueName('g-resume');
    await createTopic(topic, 2);
    await produce(topic, 100, 2); // 50 per partition
    const asked: string[] = [];
    const run = async (durable: Record<number, bigint | undefined>): Promise<KafkaRecord[]> => {
      return readBounded({ client,
        groupId,
        topics: [topic],
        resumeFrom: (t, p) => {
          asked.push(`${t === topic ? 'topic' : t}/${p}`);
          return Promise.resolve(durable[p]);
        },
      });
    };
    const offsets = (rs: KafkaRecord[], p: number) => rs.filter((r) => r.partition === p).map((r) => Number(r.offset));

    // Partition 0's sink holds offsets up to 29; partition 1's sink knows nothing.
    const first = await run({ 0: 30n });
    expect(asked.sort()).toEqual(['topic/0', 'topic/1']);
    expect(offsets(first, 0)).toEqual(Array.from({ length: 20 }, (_, i) => 30 + i));
    expect(offsets(first, 1)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    let committed = await committedOffsets(groupId, topic);
    expect([committed.get(0), committed.get(1)]).toEqual([50n, 50n]);

    // A sink behind the group's committed offset does not pull the consumer back.
    await produce(topic, 20, 2, 100);
    const second = await run({ 0: 10n, 1: 60n });
    expect(offsets(second, 0)).toEqual(Array.from({ length: 10 }, (_, i) => 50 + i));
    expect(offsets(second, 1)).toEqual([]);
    committed = await committedOffsets(groupId, topic);
    expect([committed.get(0), committed.get(1)]).toEqual([60n, 60n]);
  });
});
