/**
 * `FAIL_ON_DATA_LOSS` at start: records of the topic that Kafka deleted (retention) before the
 * job read them — the group's committed offset of a partition lies below the earliest offset the
 * partition still holds. `true`: the job stops, naming the partitions and the records lost.
 * `false`: it goes on from the earliest offset left (the group's offset is moved there before the
 * consumer joins), as a Spark query with `failOnDataLoss=false` does.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, SASLOptions } from 'kafkajs';
import { StartupError } from '../../runtime/cli.ts';
import type { JobConfig } from '../../runtime/config.ts';
import type { Logger } from '../../runtime/log.ts';

/** An admin client of the job's cluster. */
function adminOf(config: JobConfig): Admin {
  const { kafka } = config;
  return new Kafka({
    brokers: kafka.brokers,
    clientId: `rxlake-${config.pipelineId}-offsets`,
    logLevel: logLevel.NOTHING,
    ...(kafka.ssl ? { ssl: true } : {}),
    ...(kafka.sasl !== undefined ? { sasl: kafka.sasl as SASLOptions } : {}),
  }).admin();
}

/** A partition whose committed offset Kafka no longer holds. */
export interface LostRange {
  readonly partition: number;
  /** The group's committed offset (the next record it would read). */
  readonly committed: bigint;
  /** The earliest offset the partition holds. */
  readonly earliest: bigint;
}

/** The partitions of `topic` where the group's committed offset lies below what Kafka still holds. */
export async function lostRanges(config: JobConfig, topic: string): Promise<LostRange[]> {
  const admin = adminOf(config);
  await admin.connect();
  try {
    const [committed, offsets] = await Promise.all([admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [topic] }), admin.fetchTopicOffsets(topic)]);
    const earliest = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
    const lost: LostRange[] = [];
    for (const p of committed[0]?.partitions ?? []) {
      const at = BigInt(p.offset);
      const low = earliest.get(p.partition);
      if (at >= 0n && low !== undefined && at < low) lost.push({ partition: p.partition, committed: at, earliest: low });
    }
    return lost;
  } finally {
    await admin.disconnect();
  }
}

/** Moves the group's offsets of the lost partitions to the earliest offsets left (no member may be in the group). */
async function skipLost(config: JobConfig, topic: string, lost: readonly LostRange[]): Promise<void> {
  const admin = adminOf(config);
  await admin.connect();
  try {
    await admin.setOffsets({ groupId: config.kafka.groupId, topic, partitions: lost.map((l) => ({ partition: l.partition, offset: l.earliest.toString() })) });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Applies `FAIL_ON_DATA_LOSS` before the consumer starts: throws a `StartupError` naming the lost
 * records (true), or logs them and moves the group past them (false).
 */
export async function checkDataLoss(config: JobConfig, topic: string, failOnDataLoss: boolean, log: Logger): Promise<void> {
  const lost = await lostRanges(config, topic);
  if (lost.length === 0) return;
  const what = lost.map((l) => `partition ${l.partition}: offsets ${l.committed}–${l.earliest - 1n} (${l.earliest - l.committed} records)`).join('; ');
  if (failOnDataLoss) {
    throw new StartupError(
      `Kafka deleted records of ${topic} that consumer group ${config.kafka.groupId} had not read yet (retention): ${what}. ` +
        'FAIL_ON_DATA_LOSS=true stops the job here; set FAIL_ON_DATA_LOSS=false to go on from the earliest records left.',
    );
  }
  log.warn('records deleted by Kafka before they were read: going on from the earliest offsets left (FAIL_ON_DATA_LOSS=false)', { topic, lost: what });
  await skipLost(config, topic, lost);
}
