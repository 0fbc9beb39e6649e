/**
 * The transactions job's configuration: the variables every job reads (`src/runtime/config.ts`:
 * Kafka, Delta storage, batching, dead letters, HTTP, logging — the bronze job's names and checks)
 * with defaults of its own, plus its topics, the windows and PostgreSQL.
 */
import { isRight } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';
import { loadJobConfig } from '../../runtime/config.ts';
import type { JobConfig } from '../../runtime/config.ts';
import { BooleanFromString, NonEmptyString, envVar, numberIn, optionalEnvVar, subsetOf } from '../../runtime/env.ts';
import { TRANSACTION_TOPICS } from './events.ts';
import type { TransactionTopic } from './events.ts';

const PostgresUrl = new t.Type<string, string, string>(
  'PostgresUrl',
  (u): u is string => typeof u === 'string',
  (s, c) => (/^postgres(ql)?:\/\/[^/\s]+(\/[^\s]*)?$/.test(s) ? t.success(s) : t.failure(s, c)),
  (s) => s,
);

const transactionsEnv = {
  TRANSACTION_TOPICS: envVar(subsetOf(TRANSACTION_TOPICS), `"all" or a comma-separated subset of ${TRANSACTION_TOPICS.join(', ')}`, { default: 'all' }),
  POSTGRES_URL: envVar(PostgresUrl, 'a PostgreSQL URL, e.g. postgres://user:password@host:5432/db', { default: 'postgres://postgres@127.0.0.1:54329/postgres', secret: true }),
  POSTGRES_SCHEMA: optionalEnvVar(NonEmptyString, 'a PostgreSQL schema name (default: the PIPELINE_ID, so two pipelines never share a window table)'),
  WINDOW_SECONDS: envVar(numberIn(1, 86_400, true), 'whole seconds between 1 and 86400, e.g. 60 (tumbling window length)', { default: '60' }),
  WATERMARK_DELAY_SECONDS: envVar(numberIn(0, 86_400), 'seconds between 0 and 86400, e.g. 30 (how far behind a partition\'s newest event time its watermark stays)', { default: '30' }),
  WATERMARK_IDLE_SECONDS: envVar(numberIn(0.1, 86_400), 'seconds between 0.1 and 86400, e.g. 30 (a partition silent this long stops holding the watermark back)', { default: '30' }),
} as const;

export interface TransactionsConfig extends JobConfig {
  readonly transactionTopics: readonly TransactionTopic[];
  readonly postgresUrl: string;
  /** Schema of the PostgreSQL window tables (created if missing). */
  readonly postgresSchema: string;
  readonly windowMs: number;
  readonly watermarkDelayMs: number;
  readonly watermarkIdleMs: number;
}

/** Reads and checks the transactions job's configuration; throws `ConfigError` naming every bad variable. */
export function loadTransactionsConfig(env: NodeJS.ProcessEnv = process.env): TransactionsConfig {
  const { config, own } = loadJobConfig(env, {
    defaults: { KAFKA_CONSUMER_GROUP: 'transactions', DELTA_BASE_PATH: './data/transactions', PIPELINE_ID: 'transactions', HTTP_PORT: '8081', BATCH_CHUNK_RECORDS: '0' },
    env: transactionsEnv,
    problems: alwaysValidated,
  });
  return {
    ...config,
    transactionTopics: own.TRANSACTION_TOPICS,
    postgresUrl: own.POSTGRES_URL,
    postgresSchema: own.POSTGRES_SCHEMA ?? config.pipelineId,
    windowMs: own.WINDOW_SECONDS * 1000,
    watermarkDelayMs: Math.round(own.WATERMARK_DELAY_SECONDS * 1000),
    watermarkIdleMs: Math.round(own.WATERMARK_IDLE_SECONDS * 1000),
  };
}

/** The job types every event, so JSON and schema checks cannot be switched off. */
function alwaysValidated(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  for (const name of ['DLQ_VALIDATE_JSON', 'DLQ_VALIDATE_SCHEMA'] as const) {
    const raw = (env[name] ?? '').trim();
    const decoded = raw === '' ? undefined : BooleanFromString.decode(raw);
    if (decoded !== undefined && isRight(decoded) && !decoded.right) {
      problems.push(`${name}=false is not valid for the transactions job: it types every event, so events are always checked; unset ${name}.`);
    }
  }
  return problems;
}
