import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/runtime/env.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';

describe('loadTransactionsConfig', () => {
  it('gives its own defaults for an empty environment', () => {
    const c = loadTransactionsConfig({});
    expect(c.kafka.groupId).toBe('transactions');
    expect(c.pipelineId).toBe('transactions');
    expect(c.deltaBasePath).toBe('./data/transactions');
    expect(c.http.port).toBe(8081);
    expect(c.transactionTopics).toEqual(['transactions', 'refunds']);
    expect(c.windowMs).toBe(60_000);
    expect(c.watermarkDelayMs).toBe(30_000);
    expect(c.watermarkIdleMs).toBe(30_000);
    expect(c.postgresUrl).toBe('postgres://postgres@127.0.0.1:54329/postgres');
    expect(c.postgresSchema).toBe('transactions');
    expect(loadTransactionsConfig({ PIPELINE_ID: 'eu' }).postgresSchema).toBe('eu');
    expect(loadTransactionsConfig({ PIPELINE_ID: 'eu', POSTGRES_SCHEMA: 'analytics' }).postgresSchema).toBe('analytics');
    // Records waiting in open windows do not count against it (fanOut releases them).
    expect(c.maxInFlightRecords).toBe(100_000);
    // Typed and quarantine batches reach Delta in chunks encoded as they come, as bronze's do.
    expect(c.batch.chunkRecords).toBe(5000);
  });

  it('keeps a value that is set over its own default', () => {
    const c = loadTransactionsConfig({ KAFKA_CONSUMER_GROUP: 'g', MAX_IN_FLIGHT_RECORDS: '5000', TRANSACTION_TOPICS: 'refunds', WINDOW_SECONDS: '300', WATERMARK_DELAY_SECONDS: '2.5' });
    expect(c.kafka.groupId).toBe('g');
    expect(c.maxInFlightRecords).toBe(5000);
    expect(c.transactionTopics).toEqual(['refunds']);
    expect(c.windowMs).toBe(300_000);
    expect(c.watermarkDelayMs).toBe(2500);
  });

  it('MAX_EVENT_TIME_LEAD_SECONDS: 3600 by default, any seconds from 0 (off) to ten years, a bad value named with its fix', () => {
    expect(loadTransactionsConfig({}).maxEventTimeLeadMs).toBe(3_600_000);
    expect(loadTransactionsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '90.5' }).maxEventTimeLeadMs).toBe(90_500);
    expect(loadTransactionsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '0' }).maxEventTimeLeadMs).toBeUndefined();
    expect(loadTransactionsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '315360000' }).maxEventTimeLeadMs).toBe(315_360_000_000);
    for (const bad of ['-1', 'x', '1h', 'Infinity', '315360001']) {
      let err: unknown;
      try {
        loadTransactionsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: bad });
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(`MAX_EVENT_TIME_LEAD_SECONDS=${JSON.stringify(bad)} is not valid: expected seconds between 0 and 315360000, e.g. 3600`);
      expect((err as ConfigError).message).toMatch(/quarantined as EVENT_TIME_TOO_FAR_AHEAD .*0 turns the check off/);
    }
  });

  it('names every bad variable at once, its own and the shared ones, and hides the PostgreSQL URL', () => {
    let err: unknown;
    try {
      loadTransactionsConfig({ POSTGRES_URL: 'mysql://u:secret@h/db', WINDOW_SECONDS: '0.5', BATCH_MAX_RECORDS: 'x', TRANSACTION_TOPICS: 'trades', DLQ_VALIDATE_SCHEMA: 'false' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).toMatch(/POSTGRES_URL=\(hidden\) is not valid: expected a PostgreSQL URL/);
    expect(message).not.toMatch(/secret/);
    expect(message).toMatch(/WINDOW_SECONDS="0.5" is not valid: expected whole seconds/);
    expect(message).toMatch(/BATCH_MAX_RECORDS="x" is not valid/);
    expect(message).toMatch(/TRANSACTION_TOPICS="trades" is not valid/);
    expect(message).toMatch(/DLQ_VALIDATE_SCHEMA=false is not valid for the transactions job/);
  });
});
