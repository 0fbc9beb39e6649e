import { describe, expect, it } from 'vitest';
import { fetchCommitted } from '../../src/sources/fromKafka.ts';

/** kafkajs' shape of a protocol error (KafkaJSProtocolError: `type`, `code`, `retriable`). */
function protocolError(type: string, retriable: boolean): Error {
  return Object.assign(new Error(type === 'NOT_COORDINATOR_FOR_GROUP' ? 'This is not the correct coordinator for this group' : type), { name: 'KafkaJSProtocolError', type, retriable });
}

type Offsets = Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;

function admin(failures: Error[], answer: Offsets) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    fetchOffsets: (): Promise<Offsets> => {
      calls += 1;
      const e = failures.shift();
      return e ? Promise.reject(e) : Promise.resolve(answer);
    },
  };
}

describe('fetchCommitted', () => {
  const answer: Offsets = [{ topic: 't', partitions: [{ partition: 0, offset: '42' }, { partition: 1, offset: '-1' }] }];

  it('retries what a freshly started broker answers (not the coordinator yet) and returns the offsets', async () => {
    const a = admin([protocolError('NOT_COORDINATOR_FOR_GROUP', true), protocolError('GROUP_COORDINATOR_NOT_AVAILABLE', true)], answer);
    const got = await fetchCommitted(a as never, 'g', ['t']);
    expect(a.calls).toBe(3);
    // -1: nothing committed for partition 1.
    expect([...got]).toEqual([['t\u00000', 42n]]);
  });

  it('does not retry an error that will not go away, and gives up after its attempts', async () => {
    const denied = admin([protocolError('GROUP_AUTHORIZATION_FAILED', false)], answer);
    await expect(fetchCommitted(denied as never, 'g', ['t'])).rejects.toThrow('GROUP_AUTHORIZATION_FAILED');
    expect(denied.calls).toBe(1);
    const down = admin(Array.from({ length: 5 }, () => protocolError('NOT_COORDINATOR_FOR_GROUP', true)), answer);
    await expect(fetchCommitted(down as never, 'g', ['t'], 3)).rejects.toThrow(/correct coordinator/);
    expect(down.calls).toBe(3);
  });
});
