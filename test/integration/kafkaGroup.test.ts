import { describe, expect, it } from 'vitest';
import type { Subscription } from 'rxjs';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { KafkaSource } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, endOffsets, fastGroup, produce, recordingSink, until } from './kafkaSupport.ts';

describe('fromKafka in a consumer group', () => {
  it('splits partitions between two members; after one leaves nothing is lost', async () => {
    const topic = uniqueName('rx-group');
    const groupId = uniqueName('g-group');
    const partitions = 4;
    await createTopic(topic, partitions);
    await produce(topic, 8_000, partitions);

    // Offsets each member's sink made durable, per partition.
    const durable = new Map<number, Set<bigint>>();
    const byMember = [new Set<number>(), new Set<number>()];
    const errors: unknown[] = [];
    const start = (member: 0 | 1): { source: KafkaSource; sub: Subscription } => {
      const source = fromKafka({
        brokers: stack.kafkaBrokers,
        groupId,
        topics: [topic],
        clientId: `member-${member}`,
        startFrom: 'earliest',
        maxInFlightRecords: 500,
        consumer: fastGroup,
      });
      const sub = source.records$
        .pipe(
          bufferTime({ timeSpan: 50, maxRecords: 100 }),
          recordingSink(
            (rs: readonly KafkaRecord[]) => {
              for (const r of rs) {
                let set = durable.get(r.partition);
                if (!set) durable.set(r.partition, (set = new Set()));
                set.add(r.offset);
                byMember[member]?.add(r.partition);
              }
            },
            { delayMs: 20 },
          ),
          commitOffsets(source),
        )
        .subscribe({ error: (err: unknown) => errors.push(err) });
      return { source, sub };
    };

    const a = start(0);
    const b = start(1);
    // Both members got partitions and delivered from them.
    await until(() => byMember[0]!.size > 0 && byMember[1]!.size > 0, 30_000, 'both members to deliver');
    const assignedA = a.source.stats().partitions.map((p) => p.partition);
    const assignedB = b.source.stats().partitions.map((p) => p.partition);
    expect(assignedA.length + assignedB.length).toBe(partitions);
    expect(assignedA.filter((p) => assignedB.includes(p))).toEqual([]);

    // Member B leaves mid-stream (unacknowledged records of B are left uncommitted).
    const leftAt = b.source.stats();
    b.sub.unsubscribe();
    const behind = leftAt.partitions.filter((p) => p.committed === undefined || p.committed < 2_000n);
    expect(behind.length).toBeGreaterThan(0); // B had not finished its partitions when it left
    await produce(topic, 4_000, partitions, 8_000);

    const ends = await endOffsets(topic);
    await until(
      async () => {
        const committed = await committedOffsets(groupId, topic);
        return [...ends].every(([p, end]) => committed.get(p) === end);
      },
      45_000,
      'member A to commit every partition to its end offset',
    );
    expect(a.source.stats().partitions).toHaveLength(partitions);
    expect(byMember[0]!.size).toBe(partitions); // A took over B's partitions
    a.sub.unsubscribe();
    expect(errors).toEqual([]);

    // Every offset of every partition was made durable at least once.
    let total = 0;
    for (const [p, end] of ends) {
      const set = durable.get(p) ?? new Set<bigint>();
      for (let o = 0n; o < end; o++) expect(set.has(o), `partition ${p} offset ${o}`).toBe(true);
      total += set.size;
    }
    expect(total).toBe(12_000);
    console.log(
      `group: A had ${assignedA.join(',')}, B had ${assignedB.join(',')}; B left at ${JSON.stringify(
        leftAt.partitions.map((p) => [p.partition, String(p.lastEmitted), String(p.committed)]),
      )}; 12000 offsets durable`,
    );
  });
});
