/**
 * Bronze table layouts, compatible with the existing bronze service: `bronze_<topic>` holds
 * the raw payload with Kafka metadata, partitioned by `_ingestion_date`; `dlq_bronze_<topic>`
 * holds rejected records with the reason. Both are opened (created when missing) per topic.
 */
import { kafkaTopicOf } from '../../runtime/config.ts';
import { startupRetry } from '../../runtime/jobParts.ts';
import type { Logger } from '../../runtime/log.ts';
import { deadLetterTableSpec as deadLetterSpecNamed } from '../../sinks/deadLetterTable.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { Storage } from '../../sinks/delta/storage.ts';
import { DeltaTable } from '../../sinks/delta/table.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../types.ts';
import type { BronzeTopic } from '../rideshare/topics.ts';
import type { BronzeConfig } from './config.ts';

/** A row of a bronze table: the enriched record itself (the payload stays bytes). */
export type BronzeRow = EnrichedRecord;

export function bronzeTableName(topic: string): string {
  return `bronze_${topic}`;
}

export function deadLetterTableName(topic: string): string {
  return `dlq_bronze_${topic}`;
}

export function bronzeTableSpec(topic: string): TableSpec<BronzeRow> {
  return {
    name: bronzeTableName(topic),
    columns: [
      // UTF-8 already checked by routeErrors: the bytes go to Parquet as they came from Kafka.
      // No min/max: bounds of raw JSON skip no file, and comparing them cost ~20 % of encoding.
      // No dictionary: distinct payloads never make one worth it, and sampling hashes them.
      { name: '_raw_value', type: 'string', get: (r) => r.value, stats: false, dictionary: false },
      { name: '_kafka_partition', type: 'integer' },
      { name: '_kafka_offset', type: 'long' },
      { name: '_kafka_timestamp', type: 'timestamp' },
      { name: '_ingested_at', type: 'timestamp' },
      { name: '_ingestion_date', type: 'string' },
    ],
    partitionColumns: ['_ingestion_date'],
  };
}

export function deadLetterTableSpec(topic: string): TableSpec<DeadLetterRow> {
  return deadLetterSpecNamed(deadLetterTableName(topic));
}

/** The two tables of one topic. */
export interface TopicTables {
  readonly topic: BronzeTopic;
  readonly kafkaTopic: string;
  readonly bronze: DeltaTable<BronzeRow>;
  readonly deadLetters: DeltaTable<DeadLetterRow>;
}

/** Opens (creating when missing) the bronze and dead-letter tables of every configured topic. */
export async function openBronzeTables(config: BronzeConfig, storage: Storage, log: Logger): Promise<TopicTables[]> {
  const opts = { logger: log, encoder: config.parquetEncoder };
  // Storage may be down at start: retriable failures are retried (STORAGE_STARTUP_TIMEOUT_SECONDS).
  const retried = <T>(topic: string, fn: () => Promise<T>): Promise<T> => startupRetry(log, `open ${topic} tables`, fn, config.storageStartupTimeoutMs);
  return Promise.all(
    config.topics.map(async (topic) => {
      const [bronze, deadLetters] = await Promise.all([
        retried(topic, () => DeltaTable.openOrCreate(storage.sub(bronzeTableName(topic)), bronzeTableSpec(topic), opts)),
        retried(topic, () => DeltaTable.openOrCreate(storage.sub(deadLetterTableName(topic)), deadLetterTableSpec(topic), opts)),
      ]);
      return { topic, kafkaTopic: kafkaTopicOf(config, topic), bronze, deadLetters };
    }),
  );
}
