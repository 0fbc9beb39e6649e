import { describe, expect, it } from 'vitest';
import type { Subscription } from 'rxjs';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { KafkaSource } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { Changes } from '../support/wait.ts';
import { committedOffsets, createTopic, endOffsets, fastGroup, produce, recordingSink, sourceClients } from './kafkaSupport.ts';

const text = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Map ? [...x] : x));

describe.each(sourceClients)('fromKafka in a consumer group (client $name)', ({ client }) => {
  it('splits partitions between two members; after one leaves nothing is lost', async () => {
    const topic = uniqueName('rx-group');
    const groupId = uniqueName('g-group');
    const partitions = 4;
    await createTopic(topic, partitions);
    await produce(topic, 8_000, partitions);

    // Offsets each member's sink made durable, per partition.
    const durable = new Map<number, Set<bigint>>();
    const byMember = [new Set<number>(), new Set<number>()];
    // Per member, the highest offset per partition its commits confirmed (commitOffsets' events).
    const committedBy = [new Map<number, bigint>(), new Map<number, bigint>()];
    const errors: unknown[] = [];
    // Waits are on these events (deliveries, commits); an error of either chain ends them at once.
    const changes = new Changes();
    const start = (member: 0 | 1): { source: KafkaSource; sub: Subscription } => {
      const source = fromKafka({ client,
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
              changes.changed();
            },
            { delayMs: 20 },
          ),
          commitOffsets(source),
        )
        .subscribe({
          next: (e) => {
            const mine = committedBy[member] as Map<number, bigint>;
            for (const o of e.offsets) if ((mine.get(o.partition) ?? -1n) < o.offset) mine.set(o.partition, o.offset);
            changes.changed();
          },
          error: (err: unknown) => {
            errors.push(err);
            changes.fail(err);
          },
        });
      return { source, sub };
    };

    const a = start(0);
    const b = start(1);
    // assignment$: each member's latest set of `topic/partition`, from the group's own joins.
    const latest: Array<ReadonlySet<string>> = [new Set(), new Set()];
    a.source.assignment$.subscribe((set) => {
      latest[0] = set;
      changes.changed();
    });
    b.source.assignment$.subscribe((set) => {
      latest[1] = set;
      changes.changed();
    });
    const names = (source: KafkaSource): string[] => source.stats().partitions.map((p) => `${p.topic}/${p.partition}`);
    // Both members got partitions and delivered from them.
    await changes.until('both members to deliver', () => byMember[0]!.size > 0 && byMember[1]!.size > 0, 30_000);
    const assignedA = a.source.stats().partitions.map((p) => p.partition);
    const assignedB = b.source.stats().partitions.map((p) => p.partition);
    expect(assignedA.length + assignedB.length).toBe(partitions);
    expect(assignedA.filter((p) => assignedB.includes(p))).toEqual([]);
    expect([...latest[0]!].sort()).toEqual(names(a.source).sort());
    expect([...latest[1]!].sort()).toEqual(names(b.source).sort());

    // Member B leaves mid-stream (unacknowledged records of B are left uncommitted).
    const leftAt = b.source.stats();
    b.sub.unsubscribe();
    expect(latest[1]!.size).toBe(0); // stopped: nothing assigned
    const behind = leftAt.partitions.filter((p) => p.committed === undefined || p.committed < 2_000n);
    expect(behind.length).toBeGreaterThan(0); // B had not finished its partitions when it left
    await produce(topic, 4_000, partitions, 8_000);

    // A's own commit events say when it has committed every partition to its end; the broker,
    // read once then, must hold exactly those offsets.
    const ends = await endOffsets(topic);
    await changes.until(
      'member A to commit every partition to its end offset',
      () => [...ends].every(([p, end]) => (committedBy[0]!.get(p) ?? -1n) >= end),
      45_000,
      () => `ends ${text(ends)}, A committed ${text(committedBy[0])}, A's source ${text(a.source.stats())}, health ${text(a.source.health())}`,
    );
    expect(await committedOffsets(groupId, topic)).toEqual(ends);
    expect(committedBy[0]).toEqual(ends);
    expect(a.source.stats().partitions).toHaveLength(partitions);
    expect(byMember[0]!.size).toBe(partitions); // A took over B's partitions
    expect([...latest[0]!].sort()).toEqual(Array.from({ length: partitions }, (_, p) => `${topic}/${p}`).sort());
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
