/**
 * Delta layouts of the transactions job: the typed events of each topic (partitioned by the
 * event's UTC date) and a quarantine table per topic for what could not be typed (the
 * dead-letter layout shared by every pipeline).
 */
import { deadLetterTableSpec } from '../../sinks/deadLetterTable.ts';
import type { ColumnSpec, TableSpec } from '../../sinks/delta/schema.ts';
import type { DeadLetterRow } from '../../types.ts';
import type { RefundRow, TransactionRow, TransactionTopic, TypedRowBase } from './events.ts';

const metadata: ColumnSpec<TypedRowBase>[] = [
  { name: '_kafka_partition', type: 'integer' },
  { name: '_kafka_offset', type: 'long' },
  { name: '_kafka_timestamp', type: 'timestamp' },
  { name: '_ingested_at', type: 'timestamp' },
];

export function transactionsTableSpec(): TableSpec<TransactionRow> {
  return {
    name: 'transactions',
    columns: [
      { name: 'transaction_id', type: 'string', nullable: false },
      { name: 'account_id', type: 'string', nullable: false },
      { name: 'merchant_id', type: 'string' },
      { name: 'amount', type: 'double', nullable: false },
      { name: 'currency', type: 'string', nullable: false },
      { name: 'event_time', type: 'timestamp', nullable: false },
      ...metadata,
      { name: 'event_date', type: 'string' },
    ],
    partitionColumns: ['event_date'],
  };
}

export function refundsTableSpec(): TableSpec<RefundRow> {
  return {
    name: 'refunds',
    columns: [
      { name: 'refund_id', type: 'string', nullable: false },
      { name: 'transaction_id', type: 'string', nullable: false },
      { name: 'account_id', type: 'string', nullable: false },
      { name: 'amount', type: 'double', nullable: false },
      { name: 'currency', type: 'string', nullable: false },
      { name: 'reason', type: 'string' },
      { name: 'event_time', type: 'timestamp', nullable: false },
      ...metadata,
      { name: 'event_date', type: 'string' },
    ],
    partitionColumns: ['event_date'],
  };
}

export function quarantineTableName(topic: TransactionTopic): string {
  return `quarantine_${topic}`;
}

export function quarantineTableSpec(topic: TransactionTopic): TableSpec<DeadLetterRow> {
  return deadLetterTableSpec(quarantineTableName(topic));
}
