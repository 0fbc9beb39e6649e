import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, endOffsets, fastGroup, produce, readBounded, recordingSink, sourceClients } from './kafkaSupport.ts';

describe.each(sourceClients)('fromKafka bounded mode (untilCaughtUp) (client $name)', ({ client }) => {
  it('completes by itself after delivering every record, with offsets committed at the end offsets', async () => {
    const topic = uniqueName('rx-bounded');
    const groupId = uniqueName('g-bounded');
    const partitions = 3;
    const count = 3_000;
    await createTopic(topic, partitions);
    await produce(topic, count, partitions);
    const ends = await endOffsets(topic);

    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId,
      topics: [topic],
      startFrom: 'earliest',
      untilCaughtUp: true,
      consumer: fastGroup,
    });
    const delivered: KafkaRecord[] = [];
    const started = Date.now();
    const commits = await lastValueFrom(
      source.records$.pipe(
        bufferTime({ timeSpan: 200, maxRecords: 500 }),
        recordingSink((rs) => delivered.push(...rs)),
        commitOffsets(source),
        toArray(),
      ),
    );
    const elapsed = Date.now() - started;

    // Every record exactly once (one member, no restarts), bytes intact.
    const values = delivered.map((r) => (JSON.parse(Buffer.from(r.value ?? []).toString('utf8')) as { i: number }).i);
    expect(new Set(values).size).toBe(count);
    expect(delivered).toHaveLength(count);
    const sample = delivered[0];
    expect(sample?.value).toBeInstanceOf(Uint8Array);
    expect(typeof sample?.offset).toBe('bigint');
    expect(sample?.size).toBe((sample?.key?.byteLength ?? 0) + (sample?.value?.byteLength ?? 0));

    // The final commit happened before completion: the group sits at the end offsets.
    expect(commits.length).toBeGreaterThan(0);
    const committed = await committedOffsets(groupId, topic);
    for (let p = 0; p < partitions; p++) expect(committed.get(p)).toBe(ends.get(p));
    const last = new Map<number, bigint>();
    for (const c of commits) for (const o of c.offsets) last.set(o.partition, o.offset);
    for (let p = 0; p < partitions; p++) expect(last.get(p)).toBe(ends.get(p));
    console.log(`bounded: ${count} records over ${partitions} partitions in ${elapsed} ms, ${commits.length} commits`);
  });

  it('completes at once for a group already at the end, and on empty partitions', async () => {
    const topic = uniqueName('rx-bounded-empty');
    const groupId = uniqueName('g-bounded-empty');
    await createTopic(topic, 2);
    await produce(topic, 10, 1); // partition 0 only; partition 1 stays empty
    const run = (): Promise<KafkaRecord[]> => readBounded({ client, groupId, topics: [topic] });
    expect(await run()).toHaveLength(10);
    // Second run: everything is committed, so it completes with nothing delivered.
    expect(await run()).toHaveLength(0);
    const committed = await committedOffsets(groupId, topic);
    expect(committed.get(0)).toBe(10n);
  });
});
