/**
 * Column specs: what a table's columns are, how Delta (Spark `schemaString`) and Parquet name
 * their types, and how a row's value is read.
 */
import type { SchemaElement } from 'hyparquet';
import { SchemaMismatchError } from './retry.ts';

/** Delta primitive types supported by the sink. */
export type DeltaType = 'string' | 'binary' | 'integer' | 'long' | 'timestamp' | 'date' | 'double' | 'boolean';

/**
 * One column. Value conventions: `string` takes `Uint8Array` (UTF-8 bytes, written as is) or a
 * string; `long` a bigint (or a safe integer number); `integer` a number; `timestamp` a bigint of
 * epoch microseconds, UTC (a `Date` works too); `date` a `'YYYY-MM-DD'` string; `binary` a
 * `Uint8Array`; `double` a number; `boolean` a boolean; `null`/`undefined` is null.
 */
export interface ColumnSpec<Row> {
  name: string;
  type: DeltaType;
  /** Default true. */
  nullable?: boolean;
  /** How to read the value from a row; default `row[name]`. */
  get?: (row: Row) => unknown;
  /**
   * Min/max of this column in each file (Parquet footer and Delta `stats`), what lets readers
   * skip files; default true. `false` for large opaque values such as a raw payload, whose
   * bounds skip nothing and cost a byte comparison per row. Null counts are kept either way.
   */
  stats?: boolean;
  /**
   * `false`: never dictionary-encode this column (PLAIN). By default the Parquet writer samples
   * each column chunk to decide, hashing up to 1,000 values: for large distinct values such as a
   * raw payload the sample always says no, and hashing it costs more than encoding the column.
   */
  dictionary?: boolean;
}

export interface TableSpec<Row> {
  /** Table name, recorded in the table's `metaData`. */
  name: string;
  columns: readonly ColumnSpec<Row>[];
  /** Columns whose values name the partition folders; not stored in the Parquet files. */
  partitionColumns?: readonly string[];
  /** Delta table properties (`metaData.configuration`). */
  configuration?: Record<string, string>;
}

export interface SchemaField {
  name: string;
  type: string;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

/** Spark-style schema JSON: `{"type":"struct","fields":[{name,type,nullable,metadata}]}`. */
export function schemaString(columns: readonly ColumnSpec<unknown>[]): string {
  return JSON.stringify({
    type: 'struct',
    fields: columns.map((c): SchemaField => ({ name: c.name, type: c.type, nullable: c.nullable ?? true, metadata: {} })),
  });
}

/** The fields of a `schemaString` (nested types are kept as their JSON text). */
export function parseSchemaString(s: string): SchemaField[] {
  const parsed = JSON.parse(s) as { fields?: Array<{ name: string; type: unknown; nullable?: boolean; metadata?: Record<string, unknown> }> };
  return (parsed.fields ?? []).map((f) => ({
    name: f.name,
    type: typeof f.type === 'string' ? f.type : JSON.stringify(f.type),
    nullable: f.nullable ?? true,
    metadata: f.metadata ?? {},
  }));
}

/**
 * Throws `SchemaMismatchError` unless an existing table can take rows of `spec`: same column
 * names, types and partition columns; a column the table declares NOT NULL must be NOT NULL
 * in the spec too.
 */
export function checkCompatible(spec: TableSpec<unknown>, tableSchema: string, tablePartitions: readonly string[]): void {
  const fields = parseSchemaString(tableSchema);
  const want = spec.columns;
  const problems: string[] = [];
  if (fields.length !== want.length) problems.push(`table has ${fields.length} columns, spec ${want.length}`);
  for (const c of want) {
    const f = fields.find((x) => x.name === c.name);
    if (!f) {
      problems.push(`column ${c.name} missing in table`);
      continue;
    }
    if (f.type !== c.type) problems.push(`column ${c.name}: table type ${f.type}, spec ${c.type}`);
    if (!f.nullable && (c.nullable ?? true)) problems.push(`column ${c.name}: table NOT NULL, spec nullable`);
  }
  const parts = spec.partitionColumns ?? [];
  if (parts.join('\u0000') !== tablePartitions.join('\u0000')) {
    problems.push(`partition columns: table [${tablePartitions.join(', ')}], spec [${parts.join(', ')}]`);
  }
  if (problems.length) throw new SchemaMismatchError(`table ${spec.name} exists with another schema: ${problems.join('; ')}`);
}

/** Validates a spec: known types, unique names, partition columns among the columns. */
export function validateSpec(spec: TableSpec<unknown>): void {
  const names = new Set<string>();
  for (const c of spec.columns) {
    if (names.has(c.name)) throw new SchemaMismatchError(`duplicate column ${c.name}`);
    names.add(c.name);
    if (!PARQUET_ELEMENT[c.type]) throw new SchemaMismatchError(`column ${c.name}: unsupported type ${String(c.type)}`);
  }
  for (const p of spec.partitionColumns ?? []) {
    if (!names.has(p)) throw new SchemaMismatchError(`partition column ${p} is not a column`);
  }
  if (spec.partitionColumns && spec.partitionColumns.length >= spec.columns.length) {
    throw new SchemaMismatchError('a table needs at least one column that is not a partition column');
  }
}

const PARQUET_ELEMENT: Record<DeltaType, Omit<SchemaElement, 'name' | 'repetition_type'>> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  binary: { type: 'BYTE_ARRAY' },
  integer: { type: 'INT32' },
  long: { type: 'INT64' },
  timestamp: {
    type: 'INT64',
    converted_type: 'TIMESTAMP_MICROS',
    logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
  },
  date: { type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } },
  double: { type: 'DOUBLE' },
  boolean: { type: 'BOOLEAN' },
};

/** The Parquet schema (root + one leaf per column) of the data columns. */
export function parquetSchema(columns: readonly ColumnSpec<unknown>[]): SchemaElement[] {
  return [
    { name: 'root', num_children: columns.length },
    ...columns.map((c): SchemaElement => ({
      name: c.name,
      ...PARQUET_ELEMENT[c.type],
      repetition_type: c.nullable ?? true ? 'OPTIONAL' : 'REQUIRED',
    })),
  ];
}
