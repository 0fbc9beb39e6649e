export * from './fromKafka.ts';
export { OffsetTracker } from './offsetTracker.ts';
export type { CommittedOffset, OffsetCommitTarget, PartitionStats, TrackerStats } from './offsetTracker.ts';
export { MissingTopicsError, isTopicNotReady, lookupClient, requireTopics, retryWhileTopicNotReady } from './checkTopics.ts';
export type { KafkaLookupOptions, RequireTopicsOptions, TopicRetryOptions, TopicWait } from './checkTopics.ts';
