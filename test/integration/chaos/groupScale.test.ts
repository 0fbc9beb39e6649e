/**
 * Chaos without kills: members join and leave one bronze consumer group while records arrive
 * (1 → 3 → 1 processes, the extra two stopped with SIGTERM at seeded random times). Each
 * rebalance moves partitions, and keeps some on the member that stays. Every record must land
 * exactly once (delta-rs), each SIGTERMed process exits 0, and none stops by itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BronzeCase, caseRng, chaosDelay, eventually, localBase, scaled, stableWith, waitForGroup, caseTimeout } from '../../support/chaos.ts';
import { stack } from '../../support/stack.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
});

describe('chaos: bronze group scaled 1 → 3 → 1 (SIGTERM, no kills)', () => {
  it('every record exactly once across joins and graceful leaves; every stop exits 0', async () => {
    const name = 'group-scale-1-3-1';
    const r = caseRng(name);
    const c = await new BronzeCase({ name, brokers: stack.kafkaBrokers, partitions: 6, base: await localBase('chaos-scale') }).setUp();
    current = c;
    const total = scaled(3600);
    const producer = c.produce(total, 300, r.int(1, 1_000_000), 6);
    const first = c.startJob({}, 'stayer');
    await first.connected();
    expect(await eventually(async () => ((await first.health())?.recordsWritten ?? 0) > 0, 30_000), 'the first member writes').toBe(true);
    const cycles = scaled(2);
    for (let cycle = 0; cycle < cycles; cycle++) {
      await chaosDelay(r, 200, 1500);
      const joiners = [c.startJob({}, 'joiner'), c.startJob({}, 'joiner')];
      // Both joined: the coordinator shows a stable group of three, each with partitions.
      await waitForGroup(stack.kafkaBrokers, c.groupId, 'stable with 3 members', stableWith(3, 6));
      await chaosDelay(r, 300, 2500);
      if (r.next() < 0.5) {
        await Promise.all(joiners.map((j) => j.term()));
      } else {
        for (const j of joiners) {
          await j.term();
          await chaosDelay(r, 0, 1000);
        }
      }
    }
    expect(producer.acked).toBeGreaterThan(0);
    const outcome = await c.settle(45_000);
    await c.conclude(outcome, { cycles });
  }, caseTimeout());
});
