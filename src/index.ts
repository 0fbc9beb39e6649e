export * from './operators/index.ts';
export * from './sinks/index.ts';
export * from './sources/index.ts';
export * from './validation/index.ts';
export type {
  DeadLetterErrorType,
  DeadLetterRow,
  EnrichedRecord,
  KafkaMetadataColumns,
  KafkaRecord,
  RecordRef,
  SinkAck,
} from './types.ts';
