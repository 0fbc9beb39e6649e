/**
 * Bronze table layouts, compatible with the existing bronze service: `bronze_<topic>` holds
 * the raw payload with Kafka metadata, partitioned by `_ingestion_date`; `dlq_bronze_<topic>`
 * holds rejected records with the reason.
 */
import { deadLetterTableSpec as deadLetterSpecNamed } from '../../sinks/deadLetterTable.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../types.ts';

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
