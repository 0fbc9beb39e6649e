import { describe, expect, it } from 'vitest';
import { logLevel } from 'kafkajs';
import type { LogEntry } from 'kafkajs';
import { GenerateOptionError, compactKafkaLog, parseCliArgs } from '../../src/pipelines/rideshare/generate.ts';

function flagOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseCliArgs(argv, env);
  } catch (err) {
    if (err instanceof GenerateOptionError) return err.flag;
    throw err;
  }
  throw new Error(`accepted ${argv.join(' ')}`);
}

describe('generate CLI arguments', () => {
  it('maps flags to generateEvents options', () => {
    const { options, manifestFile, quiet, help } = parseCliArgs(
      [
        '--topics', 'gps_pings, trips',
        '--count', '1000',
        '--corrupt-fraction', '0.25',
        '--corruption-kinds', 'null_value,truncated_json',
        '--partitions', '6',
        '--seed', '42',
        '--batch-size', '500',
        '--max-in-flight', '2',
        '--payload-bytes', '1024',
        '--topic-prefix', 'bench.',
        '--manifest', 'out.json',
        '--quiet',
      ],
      {},
    );
    expect(options).toEqual({
      topics: ['gps_pings', 'trips'],
      count: 1000,
      corruptFraction: 0.25,
      corruptionKinds: ['null_value', 'truncated_json'],
      partitions: 6,
      seed: 42,
      batchSize: 500,
      maxInFlight: 2,
      payloadBytes: 1024,
      topicPrefix: 'bench.',
    });
    expect(manifestFile).toBe('out.json');
    expect(quiet).toBe(true);
    expect(help).toBe(false);
  });

  it('reads "all" topics, rate mode and the topic prefix from the environment', () => {
    const { options } = parseCliArgs(['--topics', 'all', '--rate', '250', '--duration', '3'], { KAFKA_TOPIC_PREFIX: 'staging.' });
    expect(options).toEqual({ rate: 250, durationSeconds: 3, topicPrefix: 'staging.' });
  });

  it('builds SASL settings from the bronze environment variables', () => {
    const { options } = parseCliArgs(['--count', '1'], {
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
    });
    expect(options.kafkaConfig).toEqual({ ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } });
    expect(parseCliArgs(['--count', '1'], { KAFKA_SECURITY_PROTOCOL: 'SSL' }).options.kafkaConfig).toEqual({ ssl: true });
    expect(flagOf(['--count', '1'], { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT' })).toBe('KAFKA_SASL_USERNAME');
    expect(flagOf(['--count', '1'], { KAFKA_SECURITY_PROTOCOL: 'KERBEROS' })).toBe('KAFKA_SECURITY_PROTOCOL');
  });

  it('names the bad flag', () => {
    expect(flagOf(['--count', '10', '--what'])).toBe('--what');
    expect(flagOf([])).toBe('--count/--rate');
    expect(flagOf(['--count', '1', '--rate', '1'])).toBe('--count/--rate');
    expect(flagOf(['--count', '-1'])).toBe('--count');
    expect(flagOf(['--count', '1.5'])).toBe('--count');
    expect(flagOf(['--rate', '0'])).toBe('--rate');
    expect(flagOf(['--rate', 'fast'])).toBe('--rate');
    expect(flagOf(['--rate', '5', '--duration', '-2'])).toBe('--duration');
    expect(flagOf(['--count', '1', '--corrupt-fraction', '1.01'])).toBe('--corrupt-fraction');
    expect(flagOf(['--count', '1', '--corruption-kinds', 'bit_flip'])).toBe('--corruption-kinds');
    expect(flagOf(['--count', '1', '--partitions', '0'])).toBe('--partitions');
    expect(flagOf(['--count', '1', '--batch-size', '0'])).toBe('--batch-size');
    expect(flagOf(['--count', '1', '--payload-bytes', 'big'])).toBe('--payload-bytes');
    expect(flagOf(['--count', '1', '--topics', 'gps_pings,cars'])).toBe('--topics');
    expect(flagOf(['--count', '1', '--replication-factor', '0'])).toBe('--replication-factor');
    expect(flagOf(['--count', '1', '--seed', '1.5'])).toBe('--seed');
  });

  it('--help needs nothing else', () => {
    expect(parseCliArgs(['--help'], {}).help).toBe(true);
    expect(parseCliArgs(['-h'], {}).help).toBe(true);
  });
});

describe('the generator\'s kafkajs log lines', () => {
  it('leaves out answers kafkajs retries by itself, prints outages as warnings and the rest as errors, with the reason', () => {
    const lines: string[] = [];
    const log = compactKafkaLog((l) => lines.push(l))(logLevel.WARN);
    const entry = (level: number, namespace: string, message: string, error?: string): LogEntry => ({ namespace, level, label: '', log: { timestamp: '', message, ...(error !== undefined ? { error } : {}) } });
    log(entry(logLevel.ERROR, 'Connection', 'Response InitProducerId(key: 22, version: 1)', 'The group coordinator is not available'));
    log(entry(logLevel.ERROR, 'Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    log(entry(logLevel.ERROR, 'Connection', 'Response SaslAuthenticate(key: 36, version: 1)', 'Authentication failed'));
    log(entry(logLevel.WARN, 'Producer', 'Limiting retries for the idempotent producer may invalidate EoS guarantees'));
    expect(lines).toEqual([
      'generate: kafkajs WARN Connection error: connect ECONNREFUSED 127.0.0.1:9092\n',
      'generate: kafkajs ERROR Response SaslAuthenticate(key: 36, version: 1): Authentication failed\n',
      'generate: kafkajs WARN Limiting retries for the idempotent producer may invalidate EoS guarantees\n',
    ]);
  });
});
