/**
 * The start-up topic check through the `KafkaClient` look-ups, with a fake client and the fake
 * clock as the retry scheduler: missing topics fail at once or after the wait (naming them),
 * topics that appear meanwhile pass, partitions without a leader are waited for a grace time;
 * and the retry of operations through a topic's first moments.
 */
import { describe, expect, it } from 'vitest';
import { RxlakeError } from '../../src/core/errors.ts';
import { MissingTopicsError, requireTopics, retryWhileTopicNotReady } from '../../src/sources/checkTopics.ts';
import type { RequireTopicsOptions, TopicWait } from '../../src/sources/checkTopics.ts';
import { clockScheduler } from '../../src/sources/kafka/clock.ts';
import { FakeClock, fakeClients } from './kafkaFakes.ts';
import type { FakeKafkaClient } from './kafkaFakes.ts';

const range = [{ partition: 0, low: 0n, high: 0n }];

/** `requireTopics` over a fake client that has `existing` topics (`leaderless` of them without a leader), on a fake clock. */
function check(existing: readonly string[], options: Partial<RequireTopicsOptions> = {}, leaderless: readonly string[] = []) {
  const clock = new FakeClock();
  const clients = fakeClients((c) => {
    for (const t of existing) c.ranges.set(t, range);
    for (const t of leaderless) c.leaderless.add(t);
  });
  const waits: TopicWait[] = [];
  let outcome: { error?: unknown; at?: number } | undefined;
  const t0 = clock.now();
  const done = requireTopics({
    brokers: ['fake:9092'],
    topics: ['orders', 'refunds'],
    client: clients.factory,
    scheduler: clockScheduler(clock),
    onWait: (w) => waits.push(w),
    ...options,
  }).then(
    () => (outcome = { at: clock.now() - t0 }),
    (error: unknown) => (outcome = { error, at: clock.now() - t0 }),
  );
  return {
    clock,
    waits,
    done,
    get client(): FakeKafkaClient {
      return clients.last;
    },
    get outcome() {
      return outcome;
    },
  };
}

describe('requireTopics', () => {
  it('passes at once when every topic exists with leaders, and closes its look-ups', async () => {
    const c = check(['orders', 'refunds']);
    await c.done;
    expect(c.outcome).toEqual({ at: 0 });
    expect(c.client.calls).toEqual(['describeTopics orders,refunds']);
    expect(c.client.lookupsClosed).toBe(1);
  });

  it('fails at once naming the missing topics (sorted), as a MISSING_TOPICS RxlakeError', async () => {
    const c = check([], { topics: ['refunds', 'orders'] });
    await c.done;
    const err = c.outcome?.error;
    expect(err).toBeInstanceOf(MissingTopicsError);
    expect(err).toBeInstanceOf(RxlakeError);
    expect(err).toMatchObject({ code: 'MISSING_TOPICS', retriable: false, topics: ['orders', 'refunds'], brokers: ['fake:9092'] });
    expect((err as Error).message).toBe('Kafka topics orders, refunds do not exist on fake:9092');
    expect(c.outcome?.at).toBe(0);
    expect(c.waits).toEqual([]);
    expect(c.client.lookupsClosed).toBe(1);
  });

  it('with waitMs, checks again with backoff and passes once the topics exist', async () => {
    const c = check(['orders'], { waitMs: 60_000 });
    await c.clock.advance(3_000);
    expect(c.outcome).toBeUndefined();
    expect(c.waits.length).toBeGreaterThan(1);
    expect(c.waits[0]).toMatchObject({ missing: ['refunds'], leaderless: [], attempt: 1, waitedMs: 0 });
    for (const w of c.waits) expect(w.retryInMs).toBeLessThanOrEqual(5_000);
    c.client.ranges.set('refunds', range);
    await c.clock.advance(5_000);
    expect(c.outcome?.error).toBeUndefined();
    expect(c.outcome?.at).toBeGreaterThan(3_000);
    expect(c.outcome?.at).toBeLessThanOrEqual(8_000);
  });

  it('with waitMs, fails after exactly that long when a topic never comes (the last wait is cut short)', async () => {
    const c = check(['orders'], { waitMs: 7_000 });
    await c.clock.advance(60_000);
    expect(c.outcome?.error).toBeInstanceOf(MissingTopicsError);
    expect(c.outcome?.at).toBe(7_000);
    expect((c.outcome?.error as Error).message).toBe('Kafka topic refunds does not exist on fake:9092 (waited 7 s)');
    expect(c.waits.reduce((sum, w) => sum + w.retryInMs, 0)).toBe(7_000);
  });

  it('waits a grace time for partitions without a leader even without waitMs, then leaves it to the consumer', async () => {
    const slow = check(['orders', 'refunds'], {}, ['refunds']);
    await slow.clock.advance(1_000);
    expect(slow.outcome).toBeUndefined();
    expect(slow.waits[0]).toMatchObject({ missing: [], leaderless: ['refunds'] });
    slow.client.leaderless.delete('refunds');
    await slow.clock.advance(5_000);
    expect(slow.outcome?.error).toBeUndefined();
    expect(slow.outcome?.at).toBeLessThan(6_000);

    const never = check(['orders', 'refunds'], {}, ['refunds']);
    await never.clock.advance(60_000);
    expect(never.outcome).toEqual({ at: 15_000 });
  });
});

describe('retryWhileTopicNotReady', () => {
  const notReady = (type: string): Error => new Error('wrapped', { cause: Object.assign(new Error(type), { type }) });

  it('sends again while the topic is not ready, and returns what succeeded', async () => {
    const failures = [notReady('UNKNOWN_TOPIC_OR_PARTITION'), notReady('LEADER_NOT_AVAILABLE')];
    const retries: Array<[string, number]> = [];
    let calls = 0;
    const out = await retryWhileTopicNotReady(
      () => {
        calls += 1;
        const f = failures.shift();
        return f ? Promise.reject(f) : Promise.resolve('sent');
      },
      { onRetry: (err, attempt) => retries.push([err.message, attempt]) },
    );
    expect(out).toBe('sent');
    expect(calls).toBe(3);
    expect(retries).toEqual([
      ['wrapped', 1],
      ['wrapped', 2],
    ]);
  });

  it('throws any other error at once, and a not-ready one after maxWaitMs', async () => {
    let calls = 0;
    const denied = Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    await expect(retryWhileTopicNotReady(() => (calls++, Promise.reject(denied)))).rejects.toBe(denied);
    expect(calls).toBe(1);
    const gone = notReady('UNKNOWN_TOPIC_OR_PARTITION');
    await expect(retryWhileTopicNotReady(() => Promise.reject(gone), { maxWaitMs: 0 })).rejects.toBe(gone);
  });
});
