import { lastValueFrom, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { bufferTime } from '../../src/operators/bufferTime.ts';
import { commitOffsets } from '../../src/operators/commitOffsets.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { committedOffsets, createTopic, endOffsets, fastGroup, produce, recordingSink, sourceClients } from './kafkaSupport.ts';

describe.each(sourceClients)('fromKafka backpressure (client $name)', ({ client }) => {
  it('keeps emitted-but-unacknowledged records within maxInFlightRecords while 100k records pass a slow sink', async () => {
    const topic = uniqueName('rx-bp');
    const groupId = uniqueName('g-bp');
    const partitions = 4;
    const count = 100_000;
    const bound = 5_000;
    await createTopic(topic, partitions);
    await produce(topic, count, partitions);

    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId,
      topics: [topic],
      startFrom: 'earliest',
      untilCaughtUp: true,
      maxInFlightRecords: bound,
      consumer: fastGroup,
    });
    // Independent measure: records that entered the pipeline minus records the sink acknowledged.
    let entered = 0;
    let acked = 0;
    let peak = 0;
    let delivered = 0;
    const started = Date.now();
    await lastValueFrom(
      source.records$.pipe(
        tap(() => {
          entered += 1;
          peak = Math.max(peak, entered - acked);
        }),
        bufferTime({ timeSpan: 100, maxRecords: 1_000 }),
        recordingSink((rs) => (delivered += rs.length), { delayMs: 25 }),
        tap((ack) => (acked += ack.refs.length)),
        commitOffsets(source),
        toArray(),
      ),
    );
    const elapsed = Date.now() - started;
    const stats = source.stats();
    console.log(
      `backpressure: ${count} records in ${elapsed} ms; bound ${bound}; peak in flight measured ${peak}, source peak ${stats.peakInFlightRecords} records / ${stats.peakInFlightBytes} bytes`,
    );
    expect(delivered).toBe(count);
    expect(peak).toBeLessThanOrEqual(bound);
    expect(stats.peakInFlightRecords).toBeLessThanOrEqual(bound);
    // The bound was actually reached (the sink is slower than the broker), so it did the limiting.
    expect(peak).toBeGreaterThan(bound / 2);
    const ends = await endOffsets(topic);
    const committed = await committedOffsets(groupId, topic);
    for (let p = 0; p < partitions; p++) expect(committed.get(p)).toBe(ends.get(p));
  });

  it('keeps in-flight bytes within maxInFlightBytes', async () => {
    const topic = uniqueName('rx-bp-bytes');
    const groupId = uniqueName('g-bp-bytes');
    const count = 4_000;
    const maxBytes = 16 * 1024;
    await createTopic(topic, 2);
    await produce(topic, count, 2);
    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId,
      topics: [topic],
      startFrom: 'earliest',
      untilCaughtUp: true,
      maxInFlightBytes: maxBytes,
      consumer: fastGroup,
    });
    let delivered = 0;
    await lastValueFrom(
      source.records$.pipe(
        bufferTime({ timeSpan: 50, maxBytes: 4 * 1024 }),
        recordingSink((rs) => (delivered += rs.length), { delayMs: 5 }),
        commitOffsets(source),
        toArray(),
      ),
    );
    const stats = source.stats();
    console.log(`backpressure bytes: bound ${maxBytes}, peak ${stats.peakInFlightBytes} bytes / ${stats.peakInFlightRecords} records`);
    expect(delivered).toBe(count);
    expect(stats.peakInFlightBytes).toBeLessThanOrEqual(maxBytes);
    expect(stats.peakInFlightBytes).toBeGreaterThan(maxBytes / 2);
  });
});
