export * from './operators/index.ts';
export * from './sinks/index.ts';
export * from './sources/index.ts';
export * from './validation/index.ts';
export { MissingDependencyError, RxlakeError, asError, causeChain, isRetriable } from './core/errors.ts';
export type { RxlakeErrorOptions } from './core/errors.ts';
export { backoffDelay, retryWith, sleep, withRetry } from './core/retry.ts';
export type { RetryEvent, RetryOptions, RetryPolicy } from './core/retry.ts';
export { defaultLogger, fromPino, pinoLogger, redact, redactError, registerSecret, silentLogger } from './core/logger.ts';
export type { LogDestination, LogFields, LogLevel, Logger, PinoLoggerOptions } from './core/logger.ts';
export { ConfigError } from './runtime/env.ts';
export { StartupError } from './runtime/cli.ts';
export type {
  DeadLetterErrorType,
  DeadLetterRow,
  EnrichedRecord,
  KafkaMetadataColumns,
  KafkaRecord,
  RecordRef,
  SinkAck,
} from './types.ts';
// Operating tables (what `rxlake optimize|vacuum|inspect|tail` run), for use from code.
export { autoOptimize } from './ops/autoOptimize.ts';
export type { AutoOptimizeOptions, AutoOptimizer } from './ops/autoOptimize.ts';
export { optimize } from './ops/optimize.ts';
export type { OptimizeOptions, OptimizeResult } from './ops/optimize.ts';
export { vacuum } from './ops/vacuum.ts';
export type { VacuumOptions, VacuumResult } from './ops/vacuum.ts';
export { inspectTable } from './ops/inspect.ts';
export type { InspectOptions, TableReport } from './ops/inspect.ts';
export { tailTable } from './ops/tail.ts';
export type { TailOptions, TailResult } from './ops/tail.ts';
