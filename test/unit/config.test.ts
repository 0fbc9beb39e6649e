import { describe, expect, it } from 'vitest';
import { loadBronzeConfig } from '../../src/pipelines/bronze/config.ts';
import { jobConsumerSettings as bronzeConsumerSettings } from '../../src/runtime/config.ts';
import { ConfigError } from '../../src/runtime/env.ts';

describe('loadBronzeConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const c = loadBronzeConfig({});
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.groupId).toBe('bronze-ingestion');
    expect(c.kafka.sasl).toBeUndefined();
    expect(c.kafka.ssl).toBe(false);
    expect(c.deltaBasePath).toBe('./data/bronze');
    expect(c.batch).toEqual({ timeSpanMs: 10_000, maxRecords: 50_000, maxBytes: 33_554_432, chunkRecords: 5_000 });
    expect(c.maxReadAheadRecords).toBe(10_000);
    expect(c.maxInFlightRecords).toBe(30_000);
    expect(c.maxInFlightBytes).toBe(16 * 1024 * 1024);
    expect(c.dlq).toEqual({ enabled: true, validateJson: true, validateSchema: true });
    expect(c.topics).toHaveLength(8);
    expect(c.s3).toBeUndefined();
    expect(bronzeConsumerSettings(c)).toMatchObject({ maxWaitTimeInMs: 200, maxBytes: 4_194_304, maxBytesPerPartition: 524_288 });
  });

  it('takes BATCH_CHUNK_RECORDS=0 for whole batches and rejects a bad chunk or read-ahead size', () => {
    expect(loadBronzeConfig({ BATCH_CHUNK_RECORDS: '0' }).batch.chunkRecords).toBe(0);
    expect(() => loadBronzeConfig({ BATCH_CHUNK_RECORDS: '-1' })).toThrow(/BATCH_CHUNK_RECORDS="-1" is not valid/);
    expect(() => loadBronzeConfig({ MAX_READ_AHEAD_RECORDS: '0' })).toThrow(/MAX_READ_AHEAD_RECORDS="0" is not valid/);
  });

  it('sets V8 heap growth to 100 % by default, 0 to leave V8 its own, and rejects other values', () => {
    expect(loadBronzeConfig({}).heapGrowingPercent).toBe(100);
    expect(loadBronzeConfig({ HEAP_GROWING_PERCENT: '0' }).heapGrowingPercent).toBe(0);
    expect(() => loadBronzeConfig({ HEAP_GROWING_PERCENT: 'lean' })).toThrow(/HEAP_GROWING_PERCENT="lean" is not valid: expected an integer from 0 to 1000/);
    expect(() => loadBronzeConfig({ HEAP_GROWING_PERCENT: '5000' })).toThrow(/HEAP_GROWING_PERCENT="5000" is not valid/);
  });

  it('passes the fetch sizes to the consumer and rejects unusable ones', () => {
    const c = loadBronzeConfig({ KAFKA_FETCH_MAX_BYTES: '1048576', KAFKA_PARTITION_FETCH_MAX_BYTES: '262144' });
    expect(bronzeConsumerSettings(c)).toMatchObject({ maxBytes: 1_048_576, maxBytesPerPartition: 262_144 });
    expect(() => loadBronzeConfig({ KAFKA_FETCH_MAX_BYTES: '100' })).toThrow(/KAFKA_FETCH_MAX_BYTES="100" is not valid: expected a number of bytes/);
  });

  it('reads S3, SASL and the DLQ switches', () => {
    const c = loadBronzeConfig({
      KAFKA_BOOTSTRAP_SERVERS: 'a:9092, b:9093',
      KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      DELTA_BASE_PATH: 's3://lake/bronze',
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
      AWS_ACCESS_KEY_ID: 'k',
      AWS_SECRET_ACCESS_KEY: 's',
      BATCH_INTERVAL_SECONDS: '2.5',
      DLQ_VALIDATE_SCHEMA: 'false',
      BRONZE_TOPICS: 'trips,payments',
    });
    expect(c.kafka.brokers).toEqual(['a:9092', 'b:9093']);
    expect(c.kafka.ssl).toBe(true);
    expect(c.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(c.s3).toEqual({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9000', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    expect(c.batch.timeSpanMs).toBe(2500);
    expect(c.dlq.validateSchema).toBe(false);
    expect(c.topics).toEqual(['trips', 'payments']);
  });

  it('names every bad variable and what it accepts, hiding secrets', () => {
    let err: unknown;
    try {
      loadBronzeConfig({ BATCH_INTERVAL_SECONDS: 'ten', DLQ_ENABLED: 'maybe', BRONZE_TOPICS: 'trips,nope', KAFKA_BOOTSTRAP_SERVERS: 'no-port' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('BATCH_INTERVAL_SECONDS="ten" is not valid: expected a number of seconds');
    expect(msg).toContain('DLQ_ENABLED="maybe" is not valid: expected true or false');
    expect(msg).toContain('BRONZE_TOPICS="trips,nope"');
    expect(msg).toContain('KAFKA_BOOTSTRAP_SERVERS="no-port"');
    expect((err as ConfigError).problems).toHaveLength(4);
  });

  it('requires SASL credentials with a SASL protocol, never printing the password', () => {
    expect(() => loadBronzeConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: 'hunter2' })).toThrow(
      /KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required/,
    );
    try {
      loadBronzeConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: 'hunter2' });
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('rejects a base path with an unsupported scheme or a bad bucket', () => {
    expect(() => loadBronzeConfig({ DELTA_BASE_PATH: 'gs://bucket/x' })).toThrow(/DELTA_BASE_PATH="gs:\/\/bucket\/x" is not valid/);
    expect(() => loadBronzeConfig({ DELTA_BASE_PATH: 's3://B_/x' })).toThrow(/valid bucket name/);
    expect(() => loadBronzeConfig({ AWS_ACCESS_KEY_ID: 'only-key' })).toThrow(/go together/);
  });
});
