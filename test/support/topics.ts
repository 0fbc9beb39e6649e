/**
 * Creating topics for tests: create, then wait until every partition has a leader. kafkajs'
 * `createTopics({ waitForLeaders: true })` retries only "leader not available"; a young topic on
 * a loaded broker can first answer "does not host this topic-partition" to the metadata request,
 * and kafkajs then throws (seen in a fresh-clone CI run while both cores were loaded).
 */
import type { Admin, ITopicConfig } from 'kafkajs';
import { waitFor } from './wait.ts';

const NOT_READY = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_FOR_PARTITION']);

/** Creates `topics` (those that exist already are left as they are) and resolves once every partition has a leader. */
export async function createTopicsReady(admin: Admin, topics: readonly ITopicConfig[], timeoutMs = 90_000): Promise<void> {
  await admin.createTopics({ topics: [...topics], waitForLeaders: false });
  const names = topics.map((t) => t.topic);
  await waitFor(
    `a leader for every partition of ${names.join(', ')}`,
    async () => {
      try {
        const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
        return topics.every((t) => {
          const md = found.find((f) => f.name === t.topic);
          const want = t.numPartitions ?? 1;
          return md !== undefined && md.partitions.length >= want && md.partitions.every((p) => p.leader >= 0);
        });
      } catch (err) {
        if (NOT_READY.has((err as { type?: string }).type ?? '')) return false;
        throw err;
      }
    },
    timeoutMs,
  );
}
