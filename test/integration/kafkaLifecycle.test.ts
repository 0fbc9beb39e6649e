import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { pinoLogger } from '../../src/core/logger.ts';
import { fromKafka } from '../../src/sources/fromKafka.ts';
import type { KafkaRecord } from '../../src/types.ts';
import { stack, uniqueName } from '../support/stack.ts';
import { createTopic, fastGroup, kafka, readBounded, sourceClients, until, withAdmin } from './kafkaSupport.ts';

const SECRET = 'pw-7f3a9c-do-not-log';

describe.each(sourceClients)('fromKafka lifecycle (client $name)', ({ client }) => {
  it('errors when the broker is unreachable, without the password in the error or the logs', async () => {
    const lines: string[] = [];
    const source = fromKafka({ client,
      brokers: ['127.0.0.1:1'],
      groupId: uniqueName('g-down'),
      topics: ['nothing'],
      sasl: { mechanism: 'plain', username: 'alice', password: SECRET },
      logLevel: 'debug',
      logger: pinoLogger({ level: 'debug', destination: (l) => lines.push(l) }),
      connection: { connectionTimeout: 200, retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 } },
    });
    const err = await lastValueFrom(source.records$).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    console.log(`error: ${(err as Error).name}: ${(err as Error).message}`);
    const text = `${(err as Error).message} ${(err as Error).stack ?? ''} ${JSON.stringify(err)}`;
    expect(text).not.toContain(SECRET);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(SECRET);
  });

  it('errors on a failed SASL handshake without leaking the password', async () => {
    const lines: string[] = [];
    const source = fromKafka({ client,
      brokers: stack.kafkaBrokers,
      groupId: uniqueName('g-sasl'),
      topics: ['nothing'],
      sasl: { mechanism: 'scram-sha-256', username: 'bob', password: SECRET },
      logLevel: 'debug',
      logger: pinoLogger({ level: 'debug', destination: (l) => lines.push(l) }),
      connection: { connectionTimeout: 1_000, retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 } },
    });
    const err = await lastValueFrom(source.records$).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    console.log(`error: ${(err as Error).name}: ${(err as Error).message}`);
    expect(`${(err as Error).message} ${(err as Error).stack ?? ''}`).not.toContain(SECRET);
    expect(lines.join('\n')).not.toContain(SECRET);
  });

  it('keeps key, value and headers as bytes, tombstones as null; unsubscribing leaves the group', async () => {
    const topic = uniqueName('rx-bytes');
    const groupId = uniqueName('g-bytes');
    await createTopic(topic, 1);
    // Idempotent: a send retried on a young topic's "not the leader" answer must not write its records twice.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const raw = Buffer.from([0xc3, 0x28, 0x00, 0xff]);
    await producer.send({
      topic,
      messages: [
        { key: raw, value: raw, headers: { h: Buffer.from([1, 2, 3]), s: 'text' }, timestamp: '1700000000123' },
        { key: 'k', value: null },
      ],
    });
    await producer.disconnect();

    const source = fromKafka({ client, brokers: stack.kafkaBrokers, groupId, topics: [topic], startFrom: 'earliest', consumer: fastGroup });
    const got: KafkaRecord[] = [];
    const sub = source.records$.subscribe((r) => got.push(r));
    await until(() => got.length === 2, 20_000, 'two records');
    const [a, b] = got;
    expect(a?.key).toEqual(raw);
    expect(a?.value).toEqual(raw);
    expect(a?.size).toBe(8);
    expect(a?.timestamp).toBe(1_700_000_000_123);
    expect(a?.offset).toBe(0n);
    expect(a?.headers.h).toEqual(Buffer.from([1, 2, 3]));
    expect(a?.headers.s).toEqual(Buffer.from('text'));
    expect(b?.value).toBeNull();
    expect(b?.size).toBe(1);
    expect(source.stats()).toMatchObject({ inFlightRecords: 2 });

    sub.unsubscribe();
    await until(
      async () =>
        withAdmin(async (admin) => {
          const { groups } = await admin.describeGroups([groupId]);
          return groups[0]?.members.length === 0;
        }),
      10_000,
      'the group to have no members',
    );
    // Nothing was acknowledged, so nothing was committed.
    const offsets = await withAdmin((admin) => admin.fetchOffsets({ groupId, topics: [topic] }));
    expect(offsets[0]?.partitions[0]?.offset).toBe('-1');
  });

  it('starts a new group at a timestamp, and at the end with startFrom latest', async () => {
    const topic = uniqueName('rx-ts');
    await createTopic(topic, 2);
    // Idempotent: a send retried on a young topic's "not the leader" answer must not write its records twice.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const base = 1_600_000_000_000;
    await producer.send({
      topic,
      messages: Array.from({ length: 20 }, (_, i) => ({
        partition: i % 2,
        value: String(i),
        timestamp: String(base + i * 1_000),
      })),
    });
    await producer.disconnect();
    const run = async (startFrom: 'latest' | { timestamp: number }): Promise<number[]> => {
      const got = await readBounded({ client, groupId: uniqueName('g-ts'), topics: [topic], startFrom });
      return got.map((r) => Number(Buffer.from(r.value ?? []).toString())).sort((x, y) => x - y);
    };
    expect(await run({ timestamp: base + 12_000 })).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    expect(await run('latest')).toEqual([]);
  });
});
