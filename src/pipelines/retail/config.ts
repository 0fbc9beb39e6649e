/**
 * The retail metrics job's configuration, by the names its users know: `KAFKA_BOOTSTRAP`
 * (default `localhost:9092`), `KAFKA_TOPIC`, `KAFKA_TOPIC_REFUNDS`, `PG_HOST`, `PG_PORT`,
 * `PG_DB`, `PG_USER`, `PG_PASSWORD`; plus the variables every rxlake job reads (consumer group,
 * batching, dead letters, HTTP, logging, …) and the window variables.
 */
import type { PoolConfig } from 'pg';
import { NonEmptyString, envVar, numberIn, optionalEnvVar } from '../../runtime/env.ts';
import { aliasedJobConfig, alwaysValidated, windowEnv, windowSettings } from '../transactions/config.ts';
import type { WindowedConfig } from '../transactions/config.ts';

const retailEnv = {
  KAFKA_TOPIC: envVar(NonEmptyString, 'a Kafka topic name (the transactions)', { default: 'transactions' }),
  KAFKA_TOPIC_REFUNDS: envVar(NonEmptyString, 'a Kafka topic name (the refunds)', { default: 'refunds' }),
  PG_HOST: envVar(NonEmptyString, 'a PostgreSQL host name or address', { default: 'localhost' }),
  PG_PORT: envVar(numberIn(1, 65_535, true), 'a TCP port, e.g. 5432', { default: '5432' }),
  PG_DB: envVar(NonEmptyString, 'a PostgreSQL database name', { default: 'postgres' }),
  PG_USER: envVar(NonEmptyString, 'a PostgreSQL user name', { default: 'postgres' }),
  PG_PASSWORD: optionalEnvVar(NonEmptyString, 'the PostgreSQL password', { secret: true }),
  POSTGRES_SCHEMA: optionalEnvVar(NonEmptyString, 'a PostgreSQL schema name (default: the search_path, usually public)'),
  ...windowEnv(120),
} as const;

export interface RetailConfig extends WindowedConfig {
  readonly topics: { readonly transactions: string; readonly refunds: string };
  readonly postgres: PoolConfig;
  /** Schema of the tables (created if missing); unset: the connection's `search_path`. */
  readonly postgresSchema: string | undefined;
}

/** Reads and checks the retail job's configuration; throws `ConfigError` naming every bad variable. */
export function loadRetailConfig(env: NodeJS.ProcessEnv = process.env): RetailConfig {
  const { config, own } = aliasedJobConfig(
    env,
    { KAFKA_BOOTSTRAP_SERVERS: { name: 'KAFKA_BOOTSTRAP', default: 'localhost:9092' } },
    {
      defaults: { KAFKA_CONSUMER_GROUP: 'retail-metrics', DELTA_BASE_PATH: './data/retail', PIPELINE_ID: 'retail', HTTP_PORT: '8082' },
      env: retailEnv,
      problems: (e) => [
        ...alwaysValidated('retail')(e),
        ...((e.KAFKA_TOPIC ?? 'transactions').trim() === (e.KAFKA_TOPIC_REFUNDS ?? 'refunds').trim() ? ['KAFKA_TOPIC and KAFKA_TOPIC_REFUNDS name the same topic: give each query its own.'] : []),
      ],
    },
  );
  return {
    ...config,
    ...windowSettings(own),
    topics: { transactions: own.KAFKA_TOPIC, refunds: own.KAFKA_TOPIC_REFUNDS },
    postgres: { host: own.PG_HOST, port: own.PG_PORT, database: own.PG_DB, user: own.PG_USER, ...(own.PG_PASSWORD === undefined ? {} : { password: own.PG_PASSWORD }) },
    postgresSchema: own.POSTGRES_SCHEMA,
  };
}
