/** What the transactions job's integration tests share. */
import { stack } from '../support/stack.ts';

/**
 * The transactions job's variables for one test: the stack's broker and PostgreSQL, the test's
 * own topic prefix, group and pipeline id (which names its PostgreSQL schema), Delta folder,
 * short batches, no HTTP port, no progress line, warnings only; `env` goes over these.
 */
export function transactionsTestEnv(o: { readonly prefix: string; readonly pipelineId: string; readonly base: string }, env: Record<string, string> = {}): Record<string, string> {
  return {
    KAFKA_BOOTSTRAP_SERVERS: stack.kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: o.prefix,
    KAFKA_CONSUMER_GROUP: o.pipelineId,
    PIPELINE_ID: o.pipelineId,
    DELTA_BASE_PATH: o.base,
    POSTGRES_URL: stack.pgUrl,
    POSTGRES_SCHEMA: o.pipelineId,
    BATCH_INTERVAL_SECONDS: '0.3',
    HTTP_PORT: '0',
    PROGRESS_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
    ...env,
  };
}
