/**
 * Kafka topics as a cold Observable of records, with bounded in-flight records/bytes
 * (backpressure), acknowledgement bookkeeping and explicit offset commits. The parts live in
 * `./kafka/`; the Kafka client is an adapter behind `KafkaClient` (kafkajs by default).
 */
import { createKafkaSource } from './kafka/source.ts';
import type { KafkaSource } from './kafka/source.ts';
import type { FromKafkaOptions } from './kafka/options.ts';

export type { FromKafkaOptions } from './kafka/options.ts';
export type { KafkaSource, KafkaSourceStats } from './kafka/source.ts';
export type { KafkaHealth } from './kafka/health.ts';
export type { StartFrom } from './kafka/lookups.ts';
export type {
  ClientBatch,
  ClientCrash,
  ClientLogLine,
  ClientMessage,
  KafkaClient,
  KafkaClientConfig,
  KafkaClientEvents,
  KafkaClientFactory,
  KafkaConnectionSettings,
  KafkaConsumerSettings,
  KafkaLogLevel,
  KafkaRetrySettings,
  KafkaSasl,
  KafkaSsl,
  PartitionOffset,
  PartitionRange,
  PemInput,
  TopicDescription,
  TopicPartition,
} from './kafka/client.ts';
export { kafkajsClient } from './kafka/kafkajsClient.ts';
export { wireClient } from './kafka/wire/wireClient.ts';
export { isRetriableKafkaError } from './kafka/kafkajsErrors.ts';
export type { KafkajsSettings } from './kafka/kafkajsClient.ts';

/**
 * Creates a Kafka source. `records$` emits each record with key, value and headers as the
 * broker's bytes, offset as `bigint`; the consumer never commits by itself — offsets are
 * committed by `commit()` (driven by `commitOffsets()`) only up to acknowledged records.
 *
 * Backpressure: at most `maxInFlightRecords` / `maxInFlightBytes` records are read and not
 * yet acknowledged; beyond that the consumer waits inside its batch handler (heart-beating),
 * so no more is fetched.
 *
 * Read-ahead: the client fetches again only once its batch handler returns. The handler queues
 * the batch's records (they count as in flight) and returns; they are emitted on later turns
 * of the event loop, in time slices, so the next fetch crosses the network while these are
 * processed. Completion (bounded mode, `drain()`) emits every queued record first; an error or
 * unsubscribing drops them (they were not acknowledged, so their offsets are not committed).
 *
 * No second copy in flight: an offset is emitted at most once per partition per subscription,
 * whatever rebalances, restarts or seeks make the broker send again (see `OffsetTracker`).
 *
 * The client: kafkajs unless `client` names another adapter of `KafkaClient`.
 *
 * ## Example
 * ```ts
 * const source = fromKafka({ brokers: ['127.0.0.1:9092'], groupId: 'bronze', topics: ['trips'] });
 * source.records$.pipe(enrichMetadata(), bufferTime(), deltaSink(table), commitOffsets(source)).subscribe();
 * ```
 *
 * @param options Brokers, group, topics, security, start position, in-flight bounds, bounded mode, client.
 * @return The source: `records$`, `saturated$`, `assignment$`, `acknowledge`, `commit`, `retain`, `stats`, `health`.
 */
export function fromKafka(options: FromKafkaOptions): KafkaSource {
  return createKafkaSource(options);
}
