import { describe, expect, it } from 'vitest';
import { uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, endOffsets, kafka, readBounded, sourceClients } from './kafkaSupport.ts';

describe.each(sourceClients)('fromKafka over transactional topics (offsets with gaps) (client $name)', ({ client }) => {
  it('skips transaction markers and aborted records, completes in bounded mode and commits the end offset', async () => {
    const topic = uniqueName('rx-txn');
    const groupId = uniqueName('g-txn');
    await createTopic(topic, 1);
    const producer = kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = async (from: number, abort: boolean): Promise<void> => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: String(from + i) })) });
      if (abort) await tx.abort();
      else await tx.commit();
    };
    await send(0, false); // offsets 0-4, marker 5
    await send(100, true); // offsets 6-10 aborted, marker 11
    await send(5, false); // offsets 12-16, marker 17
    await producer.disconnect();
    const ends = await endOffsets(topic);
    expect(ends.get(0)).toBe(18n);

    const got = await readBounded({ client, groupId, topics: [topic] });
    expect(got.map((r) => Buffer.from(r.value ?? []).toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(got.map((r) => Number(r.offset))).toEqual([0, 1, 2, 3, 4, 12, 13, 14, 15, 16]);
    // The last data record is 16; the committed position is past its transaction marker (17).
    const committed = await committedOffsets(groupId, topic);
    expect(committed.get(0)).toBe(18n);
    console.log(`transactions: committed ${committed.get(0)} of end ${ends.get(0)}`);
  });
});
