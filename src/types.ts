/**
 * Core data shapes shared by sources, operators and sinks.
 *
 * Payload bytes stay bytes (`Uint8Array`, Kafka's `Buffer` is one) from the broker to Parquet;
 * offsets are `bigint` (never a lossy `number`); timestamps that land in Delta are epoch
 * microseconds as `bigint`.
 */

/** Where a record came from: enough to acknowledge it and to commit its offset. */
export interface RecordRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

/** One Kafka record as the source emits it. */
export interface KafkaRecord extends RecordRef {
  /** Kafka record timestamp, epoch milliseconds. */
  readonly timestamp: number;
  readonly key: Uint8Array | null;
  /** `null` for a tombstone. */
  readonly value: Uint8Array | null;
  readonly headers: Readonly<Record<string, Uint8Array | undefined>>;
  /** Bytes of key + value: what backpressure and byte-bounded batches count. */
  readonly size: number;
}

/** Columns added by `enrichMetadata()`; names match the bronze table layout. */
export interface KafkaMetadataColumns {
  readonly _kafka_partition: number;
  readonly _kafka_offset: bigint;
  /** Epoch microseconds, UTC. */
  readonly _kafka_timestamp: bigint;
  /** Epoch microseconds, UTC. */
  readonly _ingested_at: bigint;
  /** UTC `YYYY-MM-DD` of `_ingested_at`. */
  readonly _ingestion_date: string;
}

export type EnrichedRecord = KafkaRecord & KafkaMetadataColumns;

/** The kind of failure that sent a record to a dead-letter table. */
export type DeadLetterErrorType =
  | 'ENCODING_ERROR'
  | 'JSON_PARSE_ERROR'
  | 'SCHEMA_VALIDATION_ERROR'
  | 'NULL_VALUE'
  | 'OVERSIZED_PAYLOAD'
  /** Valid JSON nested deeper than the limit (`MAX_JSON_DEPTH`, 512 levels by default). */
  | 'NESTING_TOO_DEEP'
  /** Handling the record threw (a codec, a check, a conversion): the exception's message. */
  | 'PROCESSING_ERROR'
  /** Not in a schema registry's wire format (Confluent: magic byte 0, 4-byte schema id). */
  | 'WIRE_FORMAT_ERROR'
  /** The schema id of the payload is not in the schema registry. */
  | 'SCHEMA_NOT_FOUND'
  /** The payload does not decode with its registered schema (or the schema cannot be used). */
  | 'SCHEMA_DECODE_ERROR'
  /** A valid event dated further ahead of the clock than the job allows (`MAX_EVENT_TIME_LEAD_SECONDS`). */
  | 'EVENT_TIME_TOO_FAR_AHEAD';

/**
 * A dead-letter row: the original payload with its Kafka metadata and the reason it was
 * rejected. It is also a `RecordRef`, so the dead-letter sink acknowledges it like any row.
 */
export interface DeadLetterRow extends RecordRef {
  readonly size: number;
  readonly error_type: DeadLetterErrorType;
  readonly error_message: string;
  /** The payload as text (invalid UTF-8 replaced by U+FFFD); `null` for a tombstone. */
  readonly original_payload: string | null;
  /** The payload exactly as received. */
  readonly original_payload_bytes: Uint8Array | null;
  readonly kafka_topic: string;
  readonly _kafka_partition: number;
  readonly _kafka_offset: bigint;
  readonly _kafka_timestamp: bigint;
  readonly _ingested_at: bigint;
  readonly session_id: string | null;
  readonly correlation_id: string | null;
  readonly causation_id: string | null;
}

/**
 * What a sink emits once a batch is durable. `refs` lists every source record the batch
 * covered, including records the sink skipped because the table already held them
 * (exactly-once replay): they are durable too, so their offsets may be committed.
 */
export interface SinkAck {
  /** Table (or other destination) name. */
  readonly table: string;
  /** Delta table version of the commit; `null` when nothing had to be written. */
  readonly version: number | null;
  /** Rows written (after skipping replayed rows). */
  readonly rows: number;
  /** Rows skipped because the table already held them. */
  readonly skipped: number;
  /** Bytes of data files written. */
  readonly bytes: number;
  /** Wall-clock milliseconds the write took. */
  readonly durationMs: number;
  readonly refs: readonly RecordRef[];
  /**
   * Records this ack does not acknowledge yet (another destination still has to hold them) but
   * whose memory is no longer held: they stop counting against the source's in-flight budget,
   * and their offsets wait for their acknowledgement (`fanOut` sets this).
   */
  readonly released?: readonly RecordRef[];
}
