import { describe, expect, it } from 'vitest';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';
import { jobEnv, kafkaTopicOf, loadJobConfig } from '../../src/runtime/config.ts';
import { ConfigError, envVar, numberIn } from '../../src/runtime/env.ts';

const defaults = { KAFKA_CONSUMER_GROUP: 'g', DELTA_BASE_PATH: './data/x', PIPELINE_ID: 'x', HTTP_PORT: '9999' };

describe('loadJobConfig', () => {
  it('reads the shared variables with the job defaults, and the job own ones', () => {
    const { config, own } = loadJobConfig({ EXTRA: '7', KAFKA_TOPIC_PREFIX: 'p.' }, { defaults, env: { EXTRA: envVar(numberIn(1, 9), 'a digit', { default: '1' }) } });
    expect(config.kafka.groupId).toBe('g');
    expect(config.deltaBasePath).toBe('./data/x');
    expect(config.pipelineId).toBe('x');
    expect(config.http.port).toBe(9999);
    expect(config.batch.chunkRecords).toBe(5000);
    expect(own.EXTRA).toBe(7);
    expect(kafkaTopicOf(config, 'trips')).toBe('p.trips');
    expect(jobEnv({ ...defaults, BATCH_CHUNK_RECORDS: '0' }).BATCH_CHUNK_RECORDS.default).toBe('0');
  });

  it('names every bad variable at once: shared, own, and the job checks', () => {
    let err: unknown;
    try {
      loadJobConfig({ BATCH_MAX_RECORDS: 'x', EXTRA: '0' }, { defaults, env: { EXTRA: envVar(numberIn(1, 9), 'a digit') }, problems: () => ['JOB_CHECK is off.'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual(['BATCH_MAX_RECORDS="x" is not valid: expected a positive integer, e.g. 50000.', 'EXTRA="0" is not valid: expected a digit.', 'JOB_CHECK is off.']);
  });

  it('gives each job only its own topics variable', () => {
    expect(() => loadBronzeConfig({ TRANSACTION_TOPICS: 'nope' })).not.toThrow();
    expect(() => loadTransactionsConfig({ BRONZE_TOPICS: 'nope' })).not.toThrow();
    expect(loadTransactionsConfig({})).not.toHaveProperty('topics');
  });
});
