/**
 * Chaos: three bronze job processes in one consumer group on the same tables, while records
 * arrive, are SIGKILLed at seeded random times and restarted (local disk and S3). Every
 * record must land exactly once (delta-rs, per (partition, offset), payload bytes equal), and
 * no process may stop by itself.
 */
import { afterEach, describe, it } from 'vitest';
import { BronzeCase, caseRng, chaosDelay, localBase, s3Base, scaled, caseTimeout } from '../../support/chaos.ts';
import type { TableBase } from '../../support/chaos.ts';
import { stack } from '../../support/stack.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
});

async function killAndRestart(name: string, base: TableBase): Promise<void> {
  const r = caseRng(name);
  // Batches open for 1.5 s: each kill's rebalance finds records in flight on the members that stay.
  const c = await new BronzeCase({ name, brokers: stack.kafkaBrokers, partitions: 6, base, env: { BATCH_INTERVAL_SECONDS: '1.5' } }).setUp();
  current = c;
  const total = scaled(4000);
  const rate = 400;
  c.produce(total, rate, r.int(1, 1_000_000), 6);
  for (let i = 0; i < 3; i++) c.startJob();
  // Kills while records arrive: each takes a random live member; it restarts after a random pause.
  const kills = scaled(4);
  const restarts: Array<Promise<void>> = [];
  const productionMs = (total / rate) * 1000;
  const gapMs = productionMs / (kills + 1);
  for (let k = 0; k < kills; k++) {
    await chaosDelay(r, gapMs * 0.5, gapMs * 1.5);
    const live = c.fleet.live();
    if (live.length === 0) break;
    const victim = r.pick(live);
    const pauseMs = r.between(0, 1500);
    restarts.push(
      victim.kill().then(async () => {
        await new Promise((res) => setTimeout(res, pauseMs));
        c.startJob();
      }),
    );
  }
  await Promise.all(restarts);
  const outcome = await c.settle(60_000);
  await c.conclude(outcome, { kills });
}

describe('chaos: three bronze processes in one group, SIGKILLed and restarted', () => {
  it('local disk: every record exactly once, no process stops by itself', async () => {
    await killAndRestart('group-kills-local', await localBase('chaos-kills'));
  }, caseTimeout());

  it('S3 (S3Proxy): every record exactly once, no process stops by itself', async () => {
    await killAndRestart('group-kills-s3', s3Base('chaos-kills'));
  }, caseTimeout());
});
