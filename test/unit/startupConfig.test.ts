import { describe, expect, it } from 'vitest';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { loadTransactionsConfig } from '../../src/pipelines/transactions/config.ts';

describe('start-up check settings', () => {
  it('stop at once on missing topics and retry unreachable storage for 5 minutes by default', () => {
    const c = loadBronzeConfig({});
    expect(c.kafka.topicsWaitMs).toBe(0);
    expect(c.storageStartupTimeoutMs).toBe(300_000);
    expect(loadTransactionsConfig({}).kafka.topicsWaitMs).toBe(0);
  });

  it('read KAFKA_TOPICS_WAIT_SECONDS and STORAGE_STARTUP_TIMEOUT_SECONDS, and name bad values', () => {
    const c = loadBronzeConfig({ KAFKA_TOPICS_WAIT_SECONDS: '90', STORAGE_STARTUP_TIMEOUT_SECONDS: '2.5' });
    expect(c.kafka.topicsWaitMs).toBe(90_000);
    expect(c.storageStartupTimeoutMs).toBe(2_500);
    expect(() => loadBronzeConfig({ KAFKA_TOPICS_WAIT_SECONDS: 'forever' })).toThrow(/KAFKA_TOPICS_WAIT_SECONDS="forever" is not valid: expected seconds between 0 and 86400/);
    expect(() => loadBronzeConfig({ STORAGE_STARTUP_TIMEOUT_SECONDS: '-1' })).toThrow(/STORAGE_STARTUP_TIMEOUT_SECONDS="-1" is not valid/);
  });
});
