/**
 * Start-up check that the tables and the topics belong together. Each table records, per
 * source partition, the last offset it holds (`txn`); records at or below it are skipped as
 * replays. If a topic was deleted and recreated (or the tables come from another cluster),
 * its offsets start again below those versions and every new record would be skipped as
 * "already written" — silent loss. So a table version at or beyond a partition's end stops
 * the job with an explanation instead.
 */
import { RxlakeError } from '../../core/errors.ts';
import type { JobConfig } from '../../runtime/config.ts';
import { jobKafkaAccess } from '../../runtime/jobParts.ts';
import type { DeltaTable } from '../../sinks/delta/table.ts';
import { lookupClient } from '../../sources/checkTopics.ts';

/** Tables hold offsets their topics do not have (a topic recreated, tables of another cluster). Code `TABLE_TOPIC_MISMATCH`; not retriable. */
export class TableTopicMismatchError extends RxlakeError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(
      `Delta tables hold Kafka offsets the topics do not have (topic recreated, or tables from another cluster?):\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        `\nNew records would be skipped as already written. Point DELTA_BASE_PATH at a new location, or set a new PIPELINE_ID ` +
        `(the tables then accept the topic's offsets from the start), or remove these tables.`,
      { code: 'TABLE_TOPIC_MISMATCH' },
    );
    this.name = 'TableTopicMismatchError';
    this.problems = problems;
  }
}

export interface TopicTablesRef {
  readonly kafkaTopic: string;
  readonly tables: readonly Pick<DeltaTable<unknown>, 'name' | 'txnVersion'>[];
}

/** Throws `TableTopicMismatchError` when a table's `txn` version is at or past a partition's end. */
export async function checkTablesAgainstTopics(config: JobConfig, topics: readonly TopicTablesRef[]): Promise<void> {
  const client = lookupClient(jobKafkaAccess(config, '-check'));
  try {
    const described = await client.describeTopics(topics.map((t) => t.kafkaTopic));
    const existing = new Set(described.filter((t) => t.exists).map((t) => t.topic));
    const problems: string[] = [];
    for (const { kafkaTopic, tables } of topics) {
      if (!existing.has(kafkaTopic)) continue; // not created yet: nothing to compare
      for (const p of await client.topicOffsets(kafkaTopic)) {
        const end = p.high;
        for (const table of tables) {
          const version = table.txnVersion(`${config.pipelineId}-${kafkaTopic}-${p.partition}`);
          if (version !== undefined && version >= end) {
            problems.push(`${table.name} holds offsets up to ${version} of ${kafkaTopic} partition ${p.partition}, which ends at ${end}`);
          }
        }
      }
    }
    if (problems.length > 0) throw new TableTopicMismatchError(problems);
  } finally {
    await client.closeLookups();
  }
}
