/**
 * Chaos: a young broker. A fresh KRaft broker of the test's own (50 `__consumer_offsets`
 * partitions, Kafka's default: its group coordinator answers "not available" for a few seconds
 * after start) gets its topic and records while three bronze processes of one group start, a
 * seeded random moment apart (each join rebalances the group while the coordinator settles). Every
 * record must land exactly once (delta-rs) and no process may stop by itself.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TestBroker, disposeBrokers } from '../../support/broker.ts';
import { BronzeCase, caseRng, chaosDelay, localBase, scaled, caseTimeout } from '../../support/chaos.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
  await disposeBrokers();
});
afterAll(disposeBrokers);

describe('chaos: bronze on a young broker', () => {
  it('topic created and records produced while the jobs start: every record exactly once, no process stops by itself', async () => {
    const name = 'young-broker';
    const r = caseRng(name);
    const broker = await TestBroker.create({ offsetsTopicPartitions: 50 });
    await broker.start();
    const c = await new BronzeCase({
      name,
      brokers: broker.brokers,
      partitions: 3,
      base: await localBase('chaos-young'),
      // Batches open for 2 s: records are in flight while the joins rebalance the group.
      env: { BATCH_INTERVAL_SECONDS: '2' },
    }).setUp();
    current = c;
    // No wait for the coordinator: the jobs start and records arrive right away.
    c.produce(scaled(3000), 500, r.int(1, 1_000_000), 3);
    const firstJoin = (async () => {
      const first = c.startJob();
      const t0 = Date.now();
      await first.connected();
      return Date.now() - t0;
    })();
    for (let i = 1; i < 3; i++) {
      await chaosDelay(r, 0, 1500);
      c.startJob();
    }
    const outcome = await c.settle(60_000);
    // From the first process's start to its first join (start-up, coordinator wait, join).
    await c.conclude(outcome, { firstJoinMs: await firstJoin.catch(() => -1) });
    expect(broker.running).toBe(true);
  }, caseTimeout());
});
