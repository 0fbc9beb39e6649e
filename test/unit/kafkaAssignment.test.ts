/**
 * `assignment$` over a fake client: the set of assigned `topic/partition` strings, emitted on
 * every assign and revoke, replayed to new subscribers, empty once the consumer stops.
 */
import { describe, expect, it } from 'vitest';
import { harness, settle } from './kafkaFakes.ts';

describe('assignment$', () => {
  it('emits the assigned partitions on every change, replays the latest, and is empty after the stop', async () => {
    const h = harness({ topics: ['a', 'b'] });
    const seen: string[][] = [];
    h.source.assignment$.subscribe((set) => seen.push([...set].sort()));
    expect(seen).toEqual([[]]);

    const r = h.subscribe();
    await settle();
    const c = h.clients.last;
    c.join(['a', 0], ['a', 1], ['b', 0]);
    c.join(['b', 0], ['a', 1], ['a', 0]); // a rebalance that changed nothing
    c.join(['a', 1], ['b', 0]); // a/0 revoked
    c.join(['a', 1], ['b', 0], ['b', 1]); // b/1 assigned
    expect(seen).toEqual([[], ['a/0', 'a/1', 'b/0'], ['a/1', 'b/0'], ['a/1', 'b/0', 'b/1']]);

    const late: string[][] = [];
    h.source.assignment$.subscribe((set) => late.push([...set].sort()));
    expect(late).toEqual([['a/1', 'b/0', 'b/1']]);

    r.unsubscribe();
    expect(seen.at(-1)).toEqual([]);
    expect(late.at(-1)).toEqual([]);
    // A stopped client's late events change nothing.
    c.join(['a', 0]);
    expect(seen.at(-1)).toEqual([]);
  });

  it('agrees with stats() (what runJob polled before)', async () => {
    const h = harness();
    h.subscribe();
    await settle();
    let latest: ReadonlySet<string> = new Set();
    h.source.assignment$.subscribe((set) => (latest = set));
    h.clients.last.join(['t', 2], ['t', 0]);
    expect([...latest].sort()).toEqual(h.source.stats().partitions.map((p) => `${p.topic}/${p.partition}`));
  });
});
