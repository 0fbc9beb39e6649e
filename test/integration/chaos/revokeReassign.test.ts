/**
 * Chaos: a partition revoked and given back to the same process while its records are in
 * flight. Member A holds a long open batch (BATCH_INTERVAL_SECONDS 10); member B joins (A keeps
 * one partition and gives the other to B, which reads it again from the last committed offset),
 * then B leaves quickly with SIGTERM (flushing what it read) and A gets the partition back with
 * its first copies still in its open batch. Every record must land exactly once (delta-rs).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BronzeCase, caseClients, caseRng, chaosDelay, eventually, localBase, scaled, stableWith, waitForGroup, caseTimeout } from '../../support/chaos.ts';
import { stack } from '../../support/stack.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
});

describe.each(caseClients())('chaos: a partition revoked and reassigned to the same process with records in flight (client $client)', ({ suffix, env: clientEnv }) => {
  it('every record exactly once; no process stops by itself', async () => {
    const name = `revoke-reassign-in-flight${suffix}`;
    const r = caseRng(name);
    const c = await new BronzeCase({
      name,
      brokers: stack.kafkaBrokers,
      partitions: 2,
      base: await localBase('chaos-revoke'),
      // Long open batches: A's records stay in flight across both rebalances.
      env: { BATCH_INTERVAL_SECONDS: '10', BATCH_MAX_RECORDS: '1000000', ...clientEnv },
    }).setUp();
    current = c;
    const total = scaled(2400);
    c.produce(total, 300, r.int(1, 1_000_000), 2);
    const a = c.startJob({}, 'A');
    await a.connected();
    expect(await eventually(async () => (await a.inFlightRecords()) > 0, 30_000), 'A holds records in flight').toBe(true);
    const cycles = scaled(2);
    let inFlightAtJoin = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      inFlightAtJoin = Math.max(inFlightAtJoin, await a.inFlightRecords());
      const b = c.startJob({}, 'B');
      // B is in, with one of the two partitions; A kept the other through the rebalance.
      await waitForGroup(stack.kafkaBrokers, c.groupId, 'A and B holding a partition each', stableWith(2, 2));
      await chaosDelay(r, 0, 1200);
      await b.term();
      // A has both partitions again.
      await waitForGroup(stack.kafkaBrokers, c.groupId, 'A alone with both partitions', stableWith(1, 2));
      await chaosDelay(r, 200, 1500);
    }
    const outcome = await c.settle(45_000);
    await c.conclude(outcome, { cycles, inFlightAtJoin });
  }, caseTimeout());
});
