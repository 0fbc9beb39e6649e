import { describe, expect, it } from 'vitest';
import { loadCardsConfig, triggerSeconds } from '../../src/pipelines/cards/config.ts';
import { loadRetailConfig } from '../../src/pipelines/retail/config.ts';
import { ConfigError } from '../../src/runtime/env.ts';

/** The message of the ConfigError `load` throws. */
function problems(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('no ConfigError');
}

describe('loadRetailConfig', () => {
  it('reads the names the retail job\'s users know, with their defaults', () => {
    const c = loadRetailConfig({});
    expect(c.kafka.brokers).toEqual(['localhost:9092']);
    expect(c.topics).toEqual({ transactions: 'transactions', refunds: 'refunds' });
    expect(c.postgres).toEqual({ host: 'localhost', port: 5432, database: 'postgres', user: 'postgres' });
    expect(c.postgresSchema).toBeUndefined();
    expect(c.windowMs).toBe(60_000);
    expect(c.watermarkDelayMs).toBe(120_000);
    expect(c.maxEventTimeLeadMs).toBe(3_600_000);
    expect(c.batch.chunkRecords).toBe(5000);
    expect(loadRetailConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '0' }).maxEventTimeLeadMs).toBeUndefined();
    expect(problems(() => loadRetailConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '-5' }))).toMatch(/MAX_EVENT_TIME_LEAD_SECONDS="-5" is not valid: expected seconds between 0 and 315360000/);
    expect(c.kafka.groupId).toBe('retail-metrics');
    expect(c.pipelineId).toBe('retail');

    const d = loadRetailConfig({ KAFKA_BOOTSTRAP: 'kafka-1:9092,kafka-2:9092', KAFKA_TOPIC: 'sales', KAFKA_TOPIC_REFUNDS: 'returns', PG_HOST: 'db', PG_PORT: '6543', PG_DB: 'retail', PG_USER: 'etl', PG_PASSWORD: 'pw' });
    expect(d.kafka.brokers).toEqual(['kafka-1:9092', 'kafka-2:9092']);
    expect(d.topics).toEqual({ transactions: 'sales', refunds: 'returns' });
    expect(d.postgres).toEqual({ host: 'db', port: 6543, database: 'retail', user: 'etl', password: 'pw' });
  });

  it('takes KAFKA_BOOTSTRAP_SERVERS when KAFKA_BOOTSTRAP is unset, and refuses both set differently', () => {
    expect(loadRetailConfig({ KAFKA_BOOTSTRAP_SERVERS: '10.0.0.1:9092' }).kafka.brokers).toEqual(['10.0.0.1:9092']);
    expect(loadRetailConfig({ KAFKA_BOOTSTRAP: 'a:1', KAFKA_BOOTSTRAP_SERVERS: 'a:1' }).kafka.brokers).toEqual(['a:1']);
    expect(problems(() => loadRetailConfig({ KAFKA_BOOTSTRAP: 'a:1', KAFKA_BOOTSTRAP_SERVERS: 'b:2' }))).toMatch(/KAFKA_BOOTSTRAP and KAFKA_BOOTSTRAP_SERVERS are both set, to different values: set only KAFKA_BOOTSTRAP/);
  });

  it('names every bad variable by the name that was set, and hides the password', () => {
    const message = problems(() => loadRetailConfig({ KAFKA_BOOTSTRAP: 'no port', PG_PORT: '99999', PG_PASSWORD: 'secret', KAFKA_TOPIC: 'x', KAFKA_TOPIC_REFUNDS: 'x', DLQ_VALIDATE_JSON: 'false', WATERMARK_DELAY_SECONDS: '-1' }));
    expect(message).toMatch(/KAFKA_BOOTSTRAP="no port" is not valid/);
    expect(message).not.toMatch(/KAFKA_BOOTSTRAP_SERVERS/);
    expect(message).toMatch(/PG_PORT="99999" is not valid: expected a TCP port/);
    expect(message).toMatch(/KAFKA_TOPIC and KAFKA_TOPIC_REFUNDS name the same topic/);
    expect(message).toMatch(/DLQ_VALIDATE_JSON=false is not valid for the retail job/);
    expect(message).toMatch(/WATERMARK_DELAY_SECONDS="-1" is not valid/);
    expect(message).not.toMatch(/secret/);
  });
});

describe('loadCardsConfig', () => {
  it('reads the names the card job\'s users know: latest by default, OUTPUT_PATH, the trigger, the batch size', () => {
    const c = loadCardsConfig({});
    expect(c.kafka.startFrom).toBe('latest');
    expect(c.deltaBasePath).toBe('./data/cards');
    expect(c.topic).toBe('transactions');
    expect(c.failOnDataLoss).toBe(true);
    expect(c.postgresUrl).toBeUndefined();
    expect(c.watermarkDelayMs).toBe(300_000);
    expect(c.maxEventTimeLeadMs).toBe(3_600_000);
    // Delta batches are encoded in chunks as they fill, as bronze's and the transactions job's.
    expect(c.batch.chunkRecords).toBe(5000);
    expect(loadCardsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: '60' }).maxEventTimeLeadMs).toBe(60_000);
    expect(problems(() => loadCardsConfig({ MAX_EVENT_TIME_LEAD_SECONDS: 'soon' }))).toMatch(/MAX_EVENT_TIME_LEAD_SECONDS="soon" is not valid: expected seconds between 0 and 315360000/);
    expect(c.batch.timeSpanMs).toBe(10_000);

    const d = loadCardsConfig({
      KAFKA_BOOTSTRAP_SERVERS: 'k:9092',
      KAFKA_TOPIC: 'card-txns',
      OUTPUT_PATH: 's3://lake/cards',
      TRIGGER_INTERVAL: '30 seconds',
      MAX_OFFSETS_PER_TRIGGER: '20000',
      STARTING_OFFSETS: 'EARLIEST',
      FAIL_ON_DATA_LOSS: 'false',
      POSTGRES_URL: 'postgres://u@db:5432/cards',
    });
    expect(d.kafka.brokers).toEqual(['k:9092']);
    expect(d.topic).toBe('card-txns');
    expect(d.deltaBasePath).toBe('s3://lake/cards');
    expect(d.batch.timeSpanMs).toBe(30_000);
    expect(d.batch.maxRecords).toBe(20_000);
    expect(d.kafka.startFrom).toBe('earliest');
    expect(d.failOnDataLoss).toBe(false);
    expect(d.postgresUrl).toBe('postgres://u@db:5432/cards');
    // rxlake's own names still work when the users' are unset.
    expect(loadCardsConfig({ DELTA_BASE_PATH: '/lake', BATCH_INTERVAL_SECONDS: '2' })).toMatchObject({ deltaBasePath: '/lake', batch: { timeSpanMs: 2000 } });
  });

  it('names every bad variable by the name that was set', () => {
    const message = problems(() => loadCardsConfig({ TRIGGER_INTERVAL: 'often', STARTING_OFFSETS: '{"t":{"0":5}}', MAX_OFFSETS_PER_TRIGGER: '0', FAIL_ON_DATA_LOSS: 'maybe' }));
    expect(message).toMatch(/TRIGGER_INTERVAL="often" is not valid: expected a duration such as "10 seconds"/);
    expect(message).toMatch(/STARTING_OFFSETS="\{.*\}" is not valid: expected earliest or latest \(offsets per partition as JSON are not supported\)/);
    expect(message).toMatch(/MAX_OFFSETS_PER_TRIGGER="0" is not valid/);
    expect(message).toMatch(/FAIL_ON_DATA_LOSS="maybe" is not valid/);
    expect(message).not.toMatch(/BATCH_MAX_RECORDS|KAFKA_STARTING_OFFSETS/);
    expect(problems(() => loadCardsConfig({ OUTPUT_PATH: 'ftp://x' }))).toMatch(/OUTPUT_PATH="ftp:\/\/x" is not valid: expected a local folder or s3:\/\/bucket\/prefix/);
  });

  it('reads Spark trigger intervals', () => {
    const seconds = (s: string) => triggerSeconds(s);
    expect(seconds('10 seconds')).toEqual({ value: '10' });
    expect(seconds('1 minute')).toEqual({ value: '60' });
    expect(seconds('interval 2 minutes')).toEqual({ value: '120' });
    expect(seconds('500 milliseconds')).toEqual({ value: '0.5' });
    expect(seconds('250ms')).toEqual({ value: '0.25' });
    expect(seconds('10 ms')).toEqual({ value: '0.01' });
    expect(seconds('5m')).toEqual({ value: '300' });
    expect(seconds('1 hour')).toEqual({ value: '3600' });
    expect(seconds('15')).toEqual({ value: '15' });
    expect(seconds('0 seconds')).toEqual({ value: '0.01' });
    expect(typeof seconds('2 hours')).toBe('string');
    expect(typeof seconds('soon')).toBe('string');
    expect(typeof seconds('-1 s')).toBe('string');
  });
});
