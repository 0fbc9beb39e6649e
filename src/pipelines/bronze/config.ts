/**
 * The bronze job's configuration: the variables every job reads (`src/runtime/config.ts`, names
 * compatible with the existing Python bronze service) with the bronze defaults, and
 * `BRONZE_TOPICS`, the topics it ingests.
 */
import { loadJobConfig } from '../../runtime/config.ts';
import type { JobConfig } from '../../runtime/config.ts';
import { envVar, subsetOf } from '../../runtime/env.ts';
import { BRONZE_TOPICS } from '../rideshare/topics.ts';
import type { BronzeTopic } from '../rideshare/topics.ts';

const bronzeEnv = {
  BRONZE_TOPICS: envVar(subsetOf(BRONZE_TOPICS), `"all" or a comma-separated subset of ${BRONZE_TOPICS.join(', ')}`, { default: 'all' }),
} as const;

export interface BronzeConfig extends JobConfig {
  readonly topics: BronzeTopic[];
}

/** Reads and checks the bronze job's configuration; throws `ConfigError` naming bad variables. */
export function loadBronzeConfig(env: NodeJS.ProcessEnv = process.env): BronzeConfig {
  const { config, own } = loadJobConfig(env, {
    defaults: {
      KAFKA_CONSUMER_GROUP: 'bronze-ingestion',
      DELTA_BASE_PATH: './data/bronze',
      PIPELINE_ID: 'bronze',
      HTTP_PORT: '8080',
      // Measured on the bronze benchmark (1M pings of ~415 B, 6 partitions): these hold ~90 MB
      // less at the peak than kafkajs' fetch sizes with a 100,000-record / 64 MiB budget, at the
      // same throughput; batches of a catch-up are then ~30,000 records instead of 50,000.
      KAFKA_FETCH_MAX_BYTES: String(4 * 1024 * 1024),
      KAFKA_PARTITION_FETCH_MAX_BYTES: String(512 * 1024),
      MAX_IN_FLIGHT_RECORDS: '30000',
      MAX_IN_FLIGHT_BYTES: String(16 * 1024 * 1024),
      MAX_READ_AHEAD_RECORDS: '10000',
    },
    env: bronzeEnv,
  });
  return { ...config, topics: own.BRONZE_TOPICS };
}
