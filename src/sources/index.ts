export { fromKafka, isRetriableKafkaError, kafkajsClient } from './fromKafka.ts';
export type {
  ClientBatch,
  ClientCrash,
  ClientLogLine,
  ClientMessage,
  FromKafkaOptions,
  KafkaClient,
  KafkaClientConfig,
  KafkaClientEvents,
  KafkaClientFactory,
  KafkaConnectionSettings,
  KafkaConsumerSettings,
  KafkaHealth,
  KafkaLogLevel,
  KafkajsSettings,
  KafkaRetrySettings,
  KafkaSasl,
  KafkaSource,
  KafkaSourceStats,
  KafkaSsl,
  PartitionOffset,
  PartitionRange,
  PemInput,
  StartFrom,
  TopicDescription,
  TopicPartition,
} from './fromKafka.ts';
export { OffsetTracker } from './offsetTracker.ts';
export type { CommittedOffset, OffsetCommitTarget, PartitionStats, TrackerStats } from './offsetTracker.ts';
export { MissingTopicsError, isTopicNotReady, lookupClient, requireTopics, retryWhileTopicNotReady } from './checkTopics.ts';
export type { KafkaLookupOptions, RequireTopicsOptions, TopicRetryOptions, TopicWait } from './checkTopics.ts';
