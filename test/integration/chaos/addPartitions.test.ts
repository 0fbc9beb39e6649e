/**
 * Chaos: partitions added to a topic while two bronze processes of one group consume it
 * (admin createPartitions, 2 → 4 → 6, at seeded random times; records keep arriving on every
 * partition). Every record, on old and new partitions, must land exactly once within the wait
 * (delta-rs) and no process may stop by itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BronzeCase, addPartitions, caseRng, chaosDelay, eventually, localBase, scaled, caseTimeout } from '../../support/chaos.ts';
import { stack } from '../../support/stack.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
});

describe('chaos: partitions added while the bronze job runs', () => {
  it('records of old and new partitions exactly once; no process stops by itself', async () => {
    const name = 'add-partitions';
    const r = caseRng(name);
    const c = await new BronzeCase({ name, brokers: stack.kafkaBrokers, partitions: 2, base: await localBase('chaos-addparts') }).setUp();
    current = c;
    const producer = c.produce(scaled(3000), 300, r.int(1, 1_000_000), 2);
    const jobs = [c.startJob(), c.startJob()];
    expect(await eventually(async () => (await Promise.all(jobs.map((j) => j.health()))).some((h) => (h?.recordsWritten ?? 0) > 0), 45_000), 'rows written before the topic grows').toBe(true);
    for (const count of [4, 6]) {
      await chaosDelay(r, 500, 3000);
      await addPartitions(stack.kafkaBrokers, c.kafkaTopic, count);
      producer.setPartitions(count);
    }
    const outcome = await c.settle(45_000);
    await c.conclude(outcome, { partitions: 6 });
  }, caseTimeout());
});
