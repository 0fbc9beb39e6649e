/**
 * The retail metrics job's PostgreSQL tables: `transactions` (one row per transaction id, the
 * first kept: `ON CONFLICT DO NOTHING`), `refunds` (one per refund id, upserted), the per-product
 * minute metrics `product_metrics_minute` (upserted per product and window) and `quarantine` (the
 * records that could not be typed, with the reason).
 */
import type { Pool } from 'pg';
import { countOf, sumOf, windowAggregate } from '../../operators/windowAggregate.ts';
import { windowPgSpec } from '../../operators/windowSink.ts';
import type { WindowResult } from '../../operators/tumblingWindow.ts';
import { PgTable } from '../../sinks/postgres.ts';
import type { PgColumn, PgTableSpec } from '../../sinks/postgres.ts';
import type { DeadLetterRow } from '../../types.ts';
import type { RefundRow, SaleRow } from './events.ts';

/** Query 2: per product and minute, the revenue and the number of transactions. */
export const productMinute = windowAggregate({ total_revenue: sumOf((r: SaleRow) => r.amount), transaction_count: countOf() });
export type ProductMinute = WindowResult<ReturnType<typeof productMinute.init>>;

const origin = <Row extends { readonly event_time: bigint; readonly kafka_partition: number; readonly kafka_offset: bigint; readonly ingested_at: bigint }>(): PgColumn<Row>[] => [
  { name: 'event_time', type: 'timestamptz', nullable: false },
  { name: 'kafka_partition', type: 'integer', nullable: false },
  { name: 'kafka_offset', type: 'bigint', nullable: false },
  { name: 'ingested_at', type: 'timestamptz', nullable: false },
];

export function salesSpec(schema?: string): PgTableSpec<SaleRow> {
  return {
    name: 'transactions',
    ...(schema === undefined ? {} : { schema }),
    columns: [
      { name: 'transaction_id', type: 'text' },
      { name: 'product_id', type: 'text', nullable: false },
      { name: 'customer_id', type: 'text' },
      { name: 'store_id', type: 'text' },
      { name: 'quantity', type: 'integer' },
      { name: 'amount', type: 'double precision', nullable: false },
      { name: 'currency', type: 'text' },
      { name: 'payment_method', type: 'text' },
      ...origin<SaleRow>(),
    ],
    primaryKey: ['transaction_id'],
    onConflict: 'nothing',
  };
}

export function refundsSpec(schema?: string): PgTableSpec<RefundRow> {
  return {
    name: 'refunds',
    ...(schema === undefined ? {} : { schema }),
    columns: [
      { name: 'refund_id', type: 'text' },
      { name: 'transaction_id', type: 'text', nullable: false },
      { name: 'product_id', type: 'text' },
      { name: 'customer_id', type: 'text' },
      { name: 'amount', type: 'double precision', nullable: false },
      { name: 'reason', type: 'text' },
      ...origin<RefundRow>(),
    ],
    primaryKey: ['refund_id'],
    onConflict: 'update',
  };
}

/** PostgreSQL `text` takes no NUL: a payload or a message quoting one keeps U+FFFD in its place (`raw_bytes` keeps the bytes). */
const text = (s: string | null): string | null => (s === null ? null : s.replaceAll('\u0000', '\uFFFD'));

export function quarantineSpec(schema?: string): PgTableSpec<DeadLetterRow> {
  return {
    name: 'quarantine',
    ...(schema === undefined ? {} : { schema }),
    columns: [
      { name: 'kafka_topic', type: 'text' },
      { name: 'kafka_partition', type: 'integer', get: (r) => r.partition },
      { name: 'kafka_offset', type: 'bigint', get: (r) => r.offset },
      { name: 'error_type', type: 'text', nullable: false },
      { name: 'reason', type: 'text', nullable: false, get: (r) => text(r.error_message) },
      { name: 'raw_value', type: 'text', get: (r) => text(r.original_payload) },
      { name: 'raw_bytes', type: 'bytea', get: (r) => r.original_payload_bytes },
      { name: 'kafka_timestamp', type: 'timestamptz', get: (r) => r._kafka_timestamp },
      { name: 'ingested_at', type: 'timestamptz', nullable: false, get: (r) => r._ingested_at },
    ],
    primaryKey: ['kafka_topic', 'kafka_partition', 'kafka_offset'],
    onConflict: 'nothing',
  };
}

export interface RetailTables {
  readonly sales: PgTable<SaleRow>;
  readonly refunds: PgTable<RefundRow>;
  readonly metrics: PgTable<ProductMinute>;
  readonly quarantine: PgTable<DeadLetterRow>;
}

/** Opens the four tables, creating them (and the schema) when missing. */
export async function openRetailTables(pool: Pool, schema: string | undefined): Promise<RetailTables> {
  const [sales, refunds, metrics, quarantine] = await Promise.all([
    PgTable.openOrCreate(pool, salesSpec(schema)),
    PgTable.openOrCreate(pool, refundsSpec(schema)),
    PgTable.openOrCreate(pool, windowPgSpec<ProductMinute['value']>({ name: 'product_metrics_minute', keyColumn: 'product_id', aggregate: productMinute, schema })),
    PgTable.openOrCreate(pool, quarantineSpec(schema)),
  ]);
  return { sales, refunds, metrics, quarantine };
}
