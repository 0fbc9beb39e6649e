export { deadLetterTableSpec } from './deadLetterTable.ts';
export { DeltaTable } from './delta/table.ts';
export type { AppendOptions, AppendResult, Dedupe, DeltaLogger, DeltaTableOptions, StagedAppend } from './delta/table.ts';
export type { ColumnSpec, DeltaType, TableSpec } from './delta/schema.ts';
export { localStorage, s3Storage, storageFromUri } from './delta/storage.ts';
export type { LocalStorageOptions, S3ConnectionOptions, S3Options, Storage } from './delta/storage.ts';
export { memoryStorage } from './delta/memoryStorage.ts';
export type { MemoryStorage, MemoryStorageOperation, MemoryStorageOptions } from './delta/memoryStorage.ts';
export {
  CommitConflictError,
  ConcurrentMetadataChangeError,
  DeltaError,
  SchemaMismatchError,
  StorageError,
  isRetriable,
} from './delta/retry.ts';
export { ParquetWorkerError, ParquetWorkerPool, sharedParquetPool } from './delta/parquetPool.ts';
export { PgSinkError, PgTable, isRetriablePg } from './postgres.ts';
export type { PgColumn, PgSinkTarget, PgTableOptions, PgTableSpec, PgWriteOptions, PgWriteResult } from './postgres.ts';
