/**
 * The card medallion job's configuration, by the names its users know: `KAFKA_BOOTSTRAP_SERVERS`,
 * `KAFKA_TOPIC`, `OUTPUT_PATH`, `TRIGGER_INTERVAL`, `MAX_OFFSETS_PER_TRIGGER`, `STARTING_OFFSETS`
 * (`latest` by default), `FAIL_ON_DATA_LOSS`; `POSTGRES_URL` to have the gold windows in
 * PostgreSQL too; plus the variables every rxlake job reads and the window variables.
 */
import { BooleanFromString, NonEmptyString, envVar, optionalEnvVar } from '../../runtime/env.ts';
import { PostgresUrl, aliasedJobConfig, alwaysValidated, windowEnv, windowSettings } from '../transactions/config.ts';
import type { WindowedConfig } from '../transactions/config.ts';

const cardsEnv = {
  KAFKA_TOPIC: envVar(NonEmptyString, 'a Kafka topic name', { default: 'transactions' }),
  FAIL_ON_DATA_LOSS: envVar(BooleanFromString, 'true or false (stop at start when Kafka deleted records the job had not read)', { default: 'true' }),
  POSTGRES_URL: optionalEnvVar(PostgresUrl, 'a PostgreSQL URL, e.g. postgres://user:password@host:5432/db (the gold windows go there too)', { secret: true }),
  POSTGRES_SCHEMA: optionalEnvVar(NonEmptyString, 'a PostgreSQL schema name (default: the search_path, usually public)'),
  ...windowEnv(300),
} as const;

export interface CardsConfig extends WindowedConfig {
  readonly topic: string;
  readonly failOnDataLoss: boolean;
  /** Where the gold windows go besides Delta; unset: Delta only. */
  readonly postgresUrl: string | undefined;
  readonly postgresSchema: string | undefined;
}

/**
 * A Spark trigger interval (`10 seconds`, `1 minute`, `500 milliseconds`, `interval 2 minutes`,
 * or a number of seconds) as `BATCH_INTERVAL_SECONDS`; `0` (as fast as possible) is its least, 0.01.
 */
export function triggerSeconds(raw: string): { readonly value: string } | string {
  const m = /^(?:interval\s+)?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)?$/i.exec(raw.trim());
  if (m === null) return 'expected a duration such as "10 seconds", "1 minute", "500 milliseconds" or a number of seconds.';
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = unit.startsWith('ms') || unit.startsWith('milli') ? 0.001 : unit.startsWith('s') ? 1 : unit.startsWith('m') ? 60 : 3600;
  const seconds = Number(m[1]) * factor;
  if (seconds > 3600) return 'expected at most 1 hour.';
  return { value: String(Math.max(0.01, seconds)) };
}

/** Reads and checks the cards job's configuration; throws `ConfigError` naming every bad variable. */
export function loadCardsConfig(env: NodeJS.ProcessEnv = process.env): CardsConfig {
  const { config, own } = aliasedJobConfig(
    env,
    {
      DELTA_BASE_PATH: { name: 'OUTPUT_PATH', default: './data/cards' },
      BATCH_INTERVAL_SECONDS: { name: 'TRIGGER_INTERVAL', convert: triggerSeconds },
      BATCH_MAX_RECORDS: { name: 'MAX_OFFSETS_PER_TRIGGER' },
      KAFKA_STARTING_OFFSETS: {
        name: 'STARTING_OFFSETS',
        default: 'latest',
        convert: (raw) => (/^(earliest|latest)$/i.test(raw) ? { value: raw.toLowerCase() } : 'expected earliest or latest (offsets per partition as JSON are not supported).'),
      },
    },
    {
      defaults: { KAFKA_CONSUMER_GROUP: 'cards-medallion', DELTA_BASE_PATH: './data/cards', PIPELINE_ID: 'cards', HTTP_PORT: '8083' },
      env: cardsEnv,
      problems: alwaysValidated('cards'),
    },
  );
  return {
    ...config,
    ...windowSettings(own),
    topic: own.KAFKA_TOPIC,
    failOnDataLoss: own.FAIL_ON_DATA_LOSS,
    postgresUrl: own.POSTGRES_URL,
    postgresSchema: own.POSTGRES_SCHEMA,
  };
}
