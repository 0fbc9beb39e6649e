/**
 * The dead-letter table layout shared by every pipeline: the rejected record's payload (as
 * text and as exact bytes), its Kafka metadata, the error type and message, and the tracing
 * envelope fields when the payload carried them.
 *
 * `error_type` is a `DeadLetterErrorType`: `NULL_VALUE`, `OVERSIZED_PAYLOAD`, `ENCODING_ERROR`,
 * `JSON_PARSE_ERROR`, `NESTING_TOO_DEEP`, `SCHEMA_VALIDATION_ERROR` or `PROCESSING_ERROR`;
 * `error_message` is at most `MAX_ERROR_MESSAGE_CHARS` (2,048) characters.
 */
import type { TableSpec } from './delta/schema.ts';
import type { DeadLetterRow } from '../types.ts';

/** Table spec of a dead-letter table named `name` (rows are `DeadLetterRow`s from `routeErrors`). */
export function deadLetterTableSpec(name: string): TableSpec<DeadLetterRow> {
  return {
    name,
    columns: [
      { name: 'error_message', type: 'string' },
      { name: 'error_type', type: 'string' },
      { name: 'original_payload', type: 'string', stats: false, dictionary: false },
      { name: 'original_payload_bytes', type: 'binary', stats: false, dictionary: false },
      { name: 'kafka_topic', type: 'string' },
      { name: '_kafka_partition', type: 'integer' },
      { name: '_kafka_offset', type: 'long' },
      { name: '_kafka_timestamp', type: 'timestamp' },
      { name: '_ingested_at', type: 'timestamp' },
      { name: 'session_id', type: 'string' },
      { name: 'correlation_id', type: 'string' },
      { name: 'causation_id', type: 'string' },
    ],
  };
}
