export { fromKafka, isRetriableKafkaError } from './fromKafka.ts';
export type { FromKafkaOptions, KafkaHealth, KafkaLogLevel, KafkaLogger, KafkaSource, KafkaSourceStats, StartFrom } from './fromKafka.ts';
export { OffsetTracker } from './offsetTracker.ts';
export type { CommittedOffset, OffsetCommitTarget, PartitionStats, TrackerStats } from './offsetTracker.ts';
export { MissingTopicsError, isTopicNotReady, requireTopics, retryWhileTopicNotReady } from './checkTopics.ts';
export type { RequireTopicsOptions, TopicRetryOptions, TopicWait } from './checkTopics.ts';
