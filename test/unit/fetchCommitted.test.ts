import { describe, expect, it } from 'vitest';
import { fetchCommitted } from '../../src/sources/kafka/lookups.ts';
import type { PartitionOffset } from '../../src/sources/kafka/client.ts';
import { FakeClock } from './kafkaFakes.ts';

/** A protocol error as a client reports it (`type`, `retriable`). */
function protocolError(type: string, retriable: boolean): Error {
  return Object.assign(new Error(type === 'NOT_COORDINATOR_FOR_GROUP' ? 'This is not the correct coordinator for this group' : type), { type, retriable });
}

function lookups(failures: Error[], answer: PartitionOffset[]) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    committedOffsets: (): Promise<PartitionOffset[]> => {
      calls += 1;
      const e = failures.shift();
      return e ? Promise.reject(e) : Promise.resolve(answer);
    },
    isRetriable: (err: unknown) => (err as { retriable?: unknown }).retriable === true,
  };
}

describe('fetchCommitted', () => {
  const answer: PartitionOffset[] = [
    { topic: 't', partition: 0, offset: 42n },
    { topic: 't', partition: 1, offset: -1n },
  ];

  it('retries what a freshly started broker answers (not the coordinator yet), with backoff, and returns the offsets', async () => {
    const clock = new FakeClock();
    const a = lookups([protocolError('NOT_COORDINATOR_FOR_GROUP', true), protocolError('GROUP_COORDINATOR_NOT_AVAILABLE', true)], answer);
    const got = fetchCommitted(a, ['t'], clock);
    await clock.advance(199);
    expect(a.calls).toBe(1);
    await clock.advance(1);
    expect(a.calls).toBe(2);
    await clock.advance(400);
    expect(a.calls).toBe(3);
    // -1: nothing committed for partition 1.
    expect([...(await got)]).toEqual([['t\u00000', 42n]]);
    expect(clock.timeouts).toEqual([200, 400]);
  });

  it('does not retry an error that will not go away, and gives up after its attempts', async () => {
    const clock = new FakeClock();
    const denied = lookups([protocolError('GROUP_AUTHORIZATION_FAILED', false)], answer);
    await expect(fetchCommitted(denied, ['t'], clock)).rejects.toThrow('GROUP_AUTHORIZATION_FAILED');
    expect(denied.calls).toBe(1);
    const down = lookups(Array.from({ length: 5 }, () => protocolError('NOT_COORDINATOR_FOR_GROUP', true)), answer);
    const failed = fetchCommitted(down, ['t'], clock, 3).then(
      () => undefined,
      (e: unknown) => e,
    );
    await clock.advance(10_000);
    expect(String(await failed)).toMatch(/correct coordinator/);
    expect(down.calls).toBe(3);
  });
});
