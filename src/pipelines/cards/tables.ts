/**
 * The card medallion's tables, under `OUTPUT_PATH`: `bronze` (every record as read: raw key and
 * value with its Kafka metadata, partitioned by ingest date), `quarantine` (records that are not
 * valid card events, with the raw string, the reason and the ingest time), `silver` (typed card
 * transactions, partitioned by event date) and `gold` (per card and 1-minute window: `txn_count`,
 * `sum_amount`, `avg_amount`, `max_amount`), the gold windows also in PostgreSQL
 * (`gold_card_1m`) when configured.
 */
import { isUtf8 } from 'node:buffer';
import type { Pool } from 'pg';
import { avgOf, countOf, maxOf, sumOf, windowAggregate } from '../../operators/windowAggregate.ts';
import { windowDeltaSpec, windowPgSpec, windowResumeWatermark } from '../../operators/windowSink.ts';
import type { WindowLayout, WindowRow } from '../../operators/windowSink.ts';
import type { WindowResult } from '../../operators/tumblingWindow.ts';
import type { TableSpec } from '../../sinks/delta/schema.ts';
import type { Storage } from '../../sinks/delta/storage.ts';
import { DeltaTable } from '../../sinks/delta/table.ts';
import type { DeltaTableOptions } from '../../sinks/delta/table.ts';
import { PgTable } from '../../sinks/postgres.ts';
import type { DeadLetterRow, EnrichedRecord } from '../../types.ts';
import type { SilverRow } from './events.ts';

/** Gold: per card and window. `txn_count` counts every transaction; the amounts, those that have one. */
export const cardMinute = windowAggregate({
  txn_count: countOf(),
  sum_amount: sumOf((r: SilverRow) => r.amount),
  avg_amount: avgOf((r: SilverRow) => r.amount),
  max_amount: maxOf((r: SilverRow) => r.amount),
});
export type CardMinute = ReturnType<typeof cardMinute.init>;

const lossy = new TextDecoder('utf-8');
/** Bytes as a string column: as they are when UTF-8 (no copy), else decoded with U+FFFD for what is not. */
const textOf = (b: Uint8Array | null): Uint8Array | string | null => (b === null ? null : isUtf8(b) ? b : lossy.decode(b));

export const bronzeSpec: TableSpec<EnrichedRecord> = {
  name: 'bronze',
  columns: [
    { name: 'key', type: 'string', get: (r) => textOf(r.key), stats: false },
    { name: 'value', type: 'string', get: (r) => textOf(r.value), stats: false, dictionary: false },
    { name: 'topic', type: 'string', nullable: false },
    { name: 'partition', type: 'integer', nullable: false },
    { name: 'offset', type: 'long', nullable: false },
    { name: 'kafka_timestamp', type: 'timestamp', get: (r) => r._kafka_timestamp },
    { name: 'ingest_time', type: 'timestamp', nullable: false, get: (r) => r._ingested_at },
    { name: 'ingest_date', type: 'string', get: (r) => r._ingestion_date },
  ],
  partitionColumns: ['ingest_date'],
};

export const quarantineSpec: TableSpec<DeadLetterRow> = {
  name: 'quarantine',
  columns: [
    { name: 'raw_value', type: 'string', get: (r) => r.original_payload, stats: false, dictionary: false },
    { name: 'raw_bytes', type: 'binary', get: (r) => r.original_payload_bytes, stats: false, dictionary: false },
    { name: 'error_type', type: 'string', nullable: false },
    { name: 'error_message', type: 'string' },
    { name: 'topic', type: 'string', nullable: false, get: (r) => r.kafka_topic },
    { name: 'partition', type: 'integer', nullable: false, get: (r) => r._kafka_partition },
    { name: 'offset', type: 'long', nullable: false, get: (r) => r._kafka_offset },
    { name: 'kafka_timestamp', type: 'timestamp', get: (r) => r._kafka_timestamp },
    { name: 'ingest_time', type: 'timestamp', nullable: false, get: (r) => r._ingested_at },
  ],
};

export const silverSpec: TableSpec<SilverRow> = {
  name: 'silver',
  columns: [
    { name: 'txn_id', type: 'string', nullable: false },
    { name: 'event_ts', type: 'string', nullable: false },
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'user_id', type: 'string' },
    { name: 'card_id', type: 'string', nullable: false },
    { name: 'merchant', type: 'string' },
    { name: 'category', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'currency', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'city', type: 'string' },
    { name: 'country', type: 'string' },
    { name: 'lat', type: 'double' },
    { name: 'lon', type: 'double' },
    { name: 'kafka_partition', type: 'integer', nullable: false, get: (r) => r._kafka_partition },
    { name: 'kafka_offset', type: 'long', nullable: false, get: (r) => r._kafka_offset },
    { name: 'ingest_time', type: 'timestamp', nullable: false, get: (r) => r._ingested_at },
    // UTC `YYYY-MM-DD` of the event time.
    { name: 'event_date', type: 'string', get: (r) => new Date(r.event_ms).toISOString().slice(0, 10) },
  ],
  partitionColumns: ['event_date'],
};

export const goldLayout = (schema?: string): WindowLayout => ({ name: 'gold', keyColumn: 'card_id', aggregate: cardMinute, schema });

export interface CardTables {
  readonly bronze: DeltaTable<EnrichedRecord>;
  readonly quarantine: DeltaTable<DeadLetterRow>;
  readonly silver: DeltaTable<SilverRow>;
  readonly gold: DeltaTable<WindowRow<CardMinute>>;
  /** The `txn` appId of the gold Delta table. */
  readonly goldAppId: string;
  readonly goldPg: PgTable<WindowResult<CardMinute>> | undefined;
  /** Where the gold windows' watermark starts (`windowResumeWatermark`). */
  readonly initialWatermark: number;
}

/** Opens (creating when missing) the Delta tables, and the PostgreSQL gold table when a pool is given. */
export async function openCardTables(storage: Storage, options: DeltaTableOptions, pipelineId: string, pg: { pool: Pool; schema: string | undefined } | undefined): Promise<CardTables> {
  const open = <Row>(spec: TableSpec<Row>): Promise<DeltaTable<Row>> => DeltaTable.openOrCreate(storage.sub(spec.name), spec, options);
  const [bronze, quarantine, silver, gold, goldPg] = await Promise.all([
    open(bronzeSpec),
    open(quarantineSpec),
    open(silverSpec),
    open(windowDeltaSpec<CardMinute>(goldLayout())),
    pg === undefined ? undefined : PgTable.openOrCreate(pg.pool, { ...windowPgSpec<CardMinute>(goldLayout(pg.schema)), name: 'gold_card_1m' }),
  ]);
  const goldAppId = `${pipelineId}-gold-windows`;
  const initialWatermark = await windowResumeWatermark({ delta: { table: gold, appId: goldAppId }, pg: goldPg === undefined ? undefined : { table: goldPg } });
  return { bronze, quarantine, silver, gold, goldAppId, goldPg, initialWatermark };
}
