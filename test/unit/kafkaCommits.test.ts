/**
 * Commit after acknowledgement over a fake client and a fake clock: only acknowledged prefixes
 * are committed, only broker-confirmed commits count, rebalance answers (found along the
 * `cause` chain) are retried with backoff and never fail the job, outages are waited out.
 */
import { describe, expect, it } from 'vitest';
import { REJOIN_POLICY } from '../../src/sources/kafka/backoff.ts';
import { FakeOutage, harness, rejoinError, settle } from './kafkaFakes.ts';
import type { KafkaHealth } from '../../src/sources/kafka/health.ts';

async function withRecords(count: number, options: Parameters<typeof harness>[0] = {}) {
  const h = harness(options);
  const r = h.subscribe();
  await settle();
  const c = h.clients.last;
  c.join(['t', 0]);
  await c.fetch('t', 0, { offsets: Array.from({ length: count }, (_, i) => i) }).done;
  h.slices.run();
  return { h, r, c };
}

const at = (offset: number) => ({ topic: 't', partition: 0, offset: BigInt(offset) });

describe('commit after acknowledgement', () => {
  it('commits the acknowledged prefix only, and nothing when it did not advance', async () => {
    const { h, c } = await withRecords(5);
    expect(await h.source.commit()).toEqual([at(0)]);
    h.source.acknowledge([at(0), at(1), at(3)]);
    expect(await h.source.commit()).toEqual([at(2)]); // 2 is not durable: nothing past it
    expect(await h.source.commit()).toEqual([]);
    h.source.acknowledge([at(2), at(4)]);
    expect(await h.source.commit()).toEqual([at(5)]);
    expect(c.commits).toEqual([[at(0)], [at(2)], [at(5)]]);
    expect(h.source.stats().partitions[0]?.committed).toBe(5n);
  });

  it('counts a commit only once the broker confirmed it (a commit dropped by a stopping runner is sent again)', async () => {
    const { h, c } = await withRecords(2);
    h.source.acknowledge([at(0), at(1)]);
    c.commitAnswers.push('silent');
    const committing = h.source.commit();
    await settle();
    expect(c.commits).toHaveLength(1);
    await h.clock.advance(1_000);
    expect(await committing).toEqual([at(2)]);
    expect(c.commits).toEqual([[at(2)], [at(2)]]);
  });

  it('retries a commit refused by a rebalance (the broker answer on the cause chain) with backoff, never failing', async () => {
    const { h, c } = await withRecords(3);
    h.source.acknowledge([at(0), at(1), at(2)]);
    c.commitAnswers.push(rejoinError('ILLEGAL_GENERATION'), rejoinError('REBALANCE_IN_PROGRESS'), rejoinError('UNKNOWN_MEMBER_ID'));
    const committing = h.source.commit();
    await settle();
    expect(c.commits).toHaveLength(1);
    await h.clock.advance(REJOIN_POLICY.initialMs - 1);
    expect(c.commits).toHaveLength(1);
    await h.clock.advance(1);
    expect(c.commits).toHaveLength(2);
    await h.clock.advance(2 * REJOIN_POLICY.initialMs);
    expect(c.commits).toHaveLength(3);
    await h.clock.advance(4 * REJOIN_POLICY.initialMs);
    expect(await committing).toEqual([at(3)]);
    expect(h.clock.timeouts.filter((ms) => ms !== 1_000)).toEqual([200, 400, 800]);
    expect(h.logs.filter((l) => l.includes('offset commit deferred: the group is rebalancing'))).toHaveLength(3);
    expect(h.source.health().connected).toBe(true); // a rebalance is no outage
  });

  it('after a rebalance that took the partition away, commits nothing of it (its new owner resumes from what is durable)', async () => {
    const { h, c } = await withRecords(3);
    h.source.acknowledge([at(0), at(1), at(2)]);
    c.commitAnswers.push(rejoinError('REBALANCE_IN_PROGRESS'));
    const committing = h.source.commit();
    await settle();
    c.join(['t', 1]);
    await h.clock.advance(REJOIN_POLICY.initialMs);
    expect(await committing).toEqual([]);
    expect(c.commits).toHaveLength(1);
  });

  it('waits out a broker outage (health down, backoff) and commits once the broker answers', async () => {
    const changes: KafkaHealth[] = [];
    const { h, c } = await withRecords(1, { onHealthChange: (x) => changes.push(x) });
    h.source.acknowledge([at(0)]);
    c.commitAnswers.push(new FakeOutage('connect ECONNREFUSED'));
    const committing = h.source.commit();
    await settle();
    expect(h.source.health()).toMatchObject({ connected: false, lastError: 'offset commit failed: FakeOutage: connect ECONNREFUSED' });
    await h.clock.advance(999);
    expect(c.commits).toHaveLength(1);
    await h.clock.advance(1);
    expect(await committing).toEqual([at(1)]);
    expect(changes.map((x) => x.connected)).toEqual([true, false]);
  });

  it('gives up a commit that failed on an outage while draining (the records are durable; a restart skips them)', async () => {
    const { h, c } = await withRecords(1);
    h.source.acknowledge([at(0)]);
    const release = h.source.retain(); // as commitOffsets does: connected until its final commit
    h.source.drain();
    c.commitAnswers.push(new FakeOutage('gone'));
    expect(await h.source.commit()).toEqual([]);
    expect(c.commits).toHaveLength(1);
    expect(c.disconnected).toBe(false);
    release();
    expect(c.disconnected).toBe(true);
    expect(h.logs.some((l) => l.startsWith('warn final offset commit failed: Kafka unreachable'))).toBe(true);
  });

  it('rejects on an error no wait fixes, with the password redacted', async () => {
    const password = 's3cret-pw';
    const { h, c } = await withRecords(1, { sasl: { mechanism: 'plain', username: 'u', password } });
    h.source.acknowledge([at(0)]);
    c.commitAnswers.push(new Error(`GROUP_AUTHORIZATION_FAILED for u:${password}`));
    const err = await h.source.commit().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe('GROUP_AUTHORIZATION_FAILED for u:***');
  });

  it('waits for a crashed consumer to run again before committing; commits nothing once stopped', async () => {
    const { h, r, c } = await withRecords(1);
    h.source.acknowledge([at(0)]);
    c.events.stopped(); // the fetch loop stopped (a crash the client restarts from)
    const committing = h.source.commit();
    await h.clock.advance(3_000);
    expect(c.commits).toHaveLength(0);
    c.join(['t', 0]);
    await settle();
    expect(await committing).toEqual([at(1)]);

    r.unsubscribe();
    expect(await h.source.commit()).toEqual([]);
  });
});
