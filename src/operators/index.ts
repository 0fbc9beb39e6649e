export { ackSources } from './ackSources.ts';
export { batchInto } from './batchInto.ts';
export type { BatchIntoOptions, Pressure } from './batchInto.ts';
export { bufferTime, isBatchChunk } from './bufferTime.ts';
export type { BatchChunk, Batches, BufferTimeOptions } from './bufferTime.ts';
export { byKey } from './byKey.ts';
export type { KeyedPipelines } from './byKey.ts';
export { commitOffsets } from './commitOffsets.ts';
export type { CommitEvent, CommitOffsetsOptions } from './commitOffsets.ts';
export { deltaSink } from './deltaSink.ts';
export type { DeltaSinkOptions } from './deltaSink.ts';
export { enrichMetadata } from './enrichMetadata.ts';
export type { EnrichMetadataOptions } from './enrichMetadata.ts';
export { fanOut } from './fanOut.ts';
export { partitionByDate } from './partitionByDate.ts';
export type { PartitionByDateOptions, Timestamp } from './partitionByDate.ts';
export { pgSink } from './pgSink.ts';
export type { PgSinkOptions } from './pgSink.ts';
export { DeadLetterError, SystematicProcessingError, deadLetterRowOf, routeErrors } from './routeErrors.ts';
export type { DeadLetterSource, RouteErrorsOptions, Routed } from './routeErrors.ts';
export { amountStats, kafkaPartition, tumblingWindow } from './tumblingWindow.ts';
export type { AmountStats, TumblingWindowOptions, WindowAggregate, WindowResult, WindowSinkOptions } from './tumblingWindow.ts';
export { avgOf, countOf, maxOf, minOf, sumOf, windowAggregate } from './windowAggregate.ts';
export type { AggregateKind, AggregateValues, AggregatedRecord, NamedAggregate, NamedWindowAggregate } from './windowAggregate.ts';
export { windowDeltaSpec, windowPgSpec, windowResumeWatermark, windowSink } from './windowSink.ts';
export type { WindowLayout, WindowRow, WindowSinkTargets } from './windowSink.ts';
export { withDeadLetters } from './withDeadLetters.ts';
export {
  SchemaRegistryClient,
  SchemaRegistryError,
  SchemaRegistryUnavailableError,
  decodeWithRegistry,
  loadRegistryCodecs,
} from './decodeWithRegistry.ts';
export type {
  DecodeWithRegistryOptions,
  RegisteredSchema,
  RegistryDecoded,
  RegistryRetry,
  SchemaReference,
  SchemaRegistryClientOptions,
  SchemaSource,
} from './decodeWithRegistry.ts';
