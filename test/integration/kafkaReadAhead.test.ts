import { lastValueFrom, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { createTopic, fastGroup, produce, sourceClients } from './kafkaSupport.ts';

/** Keeps the thread busy for `ms`, as a chain doing real work per record does. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

describe.each(sourceClients)('fromKafka read-ahead (client $name)', ({ client }) => {
  it('fetches the next batch while the records of the last one are still being processed, in order, in time slices', async () => {
    const topic = uniqueName('rx-ahead');
    const count = 20_000;
    await createTopic(topic, 1);
    // Four record batches of 5,000 (the helper sends 5,000 messages per request).
    await produce(topic, count, 1);

    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId: uniqueName('g-ahead'),
      topics: [topic],
      startFrom: 'earliest',
      untilCaughtUp: true,
      // One record batch per fetch (a fetch returns at least one whole batch).
      consumer: { ...fastGroup, maxBytesPerPartition: 1 },
    });

    // Read = counted in flight by the source (nothing is acknowledged here); delivered = seen
    // downstream. More read than one fetch returns, while delivering, means a later fetch
    // landed while records of an earlier one were still waiting: fetching overlapped processing.
    let delivered = 0;
    let maxAhead = 0;
    // The most records delivered without a timer running between them: delivered in 10 ms
    // slices (~200 records of 0.05 ms each), timers run between slices; without slicing a whole
    // fetch (5,000) would go in one run. Counted in records, not time: the client decoding a
    // fetch (130 ms once, cold) or a loaded machine lengthens the gaps, not the runs. The longest
    // gap (CPU of the main thread) is printed for information.
    const threadCpu = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.bind(process);
    const cpuMs = (): number => {
      const u = threadCpu?.() ?? process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    let lastTick = cpuMs();
    let maxGap = 0;
    let deliveredAtTick = 0;
    let maxRun = 0;
    const ticker = setInterval(() => {
      const now = cpuMs();
      if (delivered > 0 && delivered < count) {
        maxGap = Math.max(maxGap, now - lastTick);
        maxRun = Math.max(maxRun, delivered - deliveredAtTick);
      }
      lastTick = now;
      deliveredAtTick = delivered;
    }, 5);
    let offsets: bigint[];
    try {
      const records = await lastValueFrom(
        source.records$.pipe(
          tap(() => {
            delivered += 1;
            maxAhead = Math.max(maxAhead, source.stats().inFlightRecords - delivered);
            spin(0.05);
          }),
          toArray(),
        ),
      );
      offsets = records.map((r) => r.offset);
    } finally {
      clearInterval(ticker);
    }
    console.log(`read-ahead: most records read and not yet delivered ${maxAhead}; most delivered between two timer runs ${maxRun}; longest timer gap while delivering ${maxGap.toFixed(0)} ms of CPU`);

    // Everything, once, in offset order (completion delivered what was still queued).
    expect(offsets).toHaveLength(count);
    expect(offsets.every((o, i) => o === BigInt(i))).toBe(true);
    // Over one fetch's worth (5,000) read ahead of delivery.
    expect(maxAhead).toBeGreaterThan(5_000);
    // A 5,000-record batch takes ≥ 250 ms to process here; delivered in slices, timers still ran.
    expect(maxRun).toBeGreaterThan(0);
    expect(maxRun).toBeLessThan(1_000);
  });

  it('reads no further ahead than maxReadAheadRecords, and still delivers everything in order', async () => {
    const topic = uniqueName('rx-ahead-cap');
    const count = 20_000;
    await createTopic(topic, 1);
    await produce(topic, count, 1);
    const limit = 1_500;
    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId: uniqueName('g-ahead-cap'),
      topics: [topic],
      startFrom: 'earliest',
      untilCaughtUp: true,
      maxReadAheadRecords: limit,
      consumer: { ...fastGroup, maxBytesPerPartition: 1 },
    });
    let delivered = 0;
    let maxAhead = 0;
    const records = await lastValueFrom(
      source.records$.pipe(
        tap(() => {
          delivered += 1;
          maxAhead = Math.max(maxAhead, source.stats().inFlightRecords - delivered);
          spin(0.02);
        }),
        toArray(),
      ),
    );
    console.log(`read-ahead capped at ${limit}: most records read and not yet delivered ${maxAhead}`);
    expect(records).toHaveLength(count);
    expect(records.every((r, i) => r.offset === BigInt(i))).toBe(true);
    // A fetch returns 5,000 here: without the cap most of one would wait at once.
    expect(maxAhead).toBeLessThanOrEqual(limit);
    expect(maxAhead).toBeGreaterThan(limit / 2);
  });
});
