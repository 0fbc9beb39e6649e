/**
 * Chaos: the broker restarted mid-stream. A broker of the test's own (fresh log dir, free
 * ports) is stopped — once with SIGTERM (controlled shutdown), once with SIGKILL, in a seeded
 * order — and started again on the same log dir and ports while two bronze processes of one
 * group consume and records keep arriving. Every record the topic holds must land exactly once
 * (delta-rs) and no process may stop by itself.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TestBroker, disposeBrokers } from '../../support/broker.ts';
import { BronzeCase, caseClients, caseRng, chaosDelay, eventually, localBase, scaled, caseTimeout } from '../../support/chaos.ts';

let current: BronzeCase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
  await disposeBrokers();
});
afterAll(disposeBrokers);

describe.each(caseClients())('chaos: bronze while its broker restarts (client $client)', ({ suffix, env: clientEnv }) => {
  it('SIGTERM and SIGKILL restarts mid-stream: every record exactly once, no process stops by itself', async () => {
    const name = `broker-restart${suffix}`;
    const r = caseRng(name);
    const broker = await TestBroker.create();
    await broker.start();
    const c = await new BronzeCase({ name, brokers: broker.brokers, partitions: 3, base: await localBase('chaos-brestart'), env: clientEnv }).setUp();
    current = c;
    c.produce(scaled(3000), 250, r.int(1, 1_000_000), 3);
    const jobs = [c.startJob(), c.startJob()];
    expect(await eventually(async () => (await Promise.all(jobs.map((j) => j.health()))).some((h) => (h?.recordsWritten ?? 0) > 0), 45_000), 'rows written before the first restart').toBe(true);
    const outages = scaled(2);
    const first = r.pick(['SIGTERM', 'SIGKILL'] as const);
    const done: string[] = [];
    for (let i = 0; i < outages; i++) {
      await chaosDelay(r, 500, 2500);
      const signal = i % 2 === 0 ? first : first === 'SIGTERM' ? 'SIGKILL' : 'SIGTERM';
      const exit = await broker.stop(signal);
      await chaosDelay(r, 300, 2500);
      await broker.start();
      done.push(`${signal}→${exit.code ?? exit.signal}`);
    }
    const outcome = await c.settle(60_000);
    await c.conclude(outcome, { brokerRestarts: done });
  }, caseTimeout());
});
