/**
 * The Kafka source's log and backoff on the library's logger and retry formula: lines below the
 * source's threshold are dropped, the SASL password and TLS passphrase are registered as secrets
 * (so the library's loggers and the errors that leave the source are redacted), the Kafka
 * policies double to their cap with bounded jitter.
 */
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/core/logger.ts';
import { backoffDelay } from '../../src/core/retry.ts';
import { LOOKUP_POLICY, REJOIN_POLICY, RESTART_MAX_MS, RESTART_POLICY } from '../../src/sources/kafka/backoff.ts';
import { describeError, thresholdLogger } from '../../src/sources/kafka/logging.ts';
import { captureLogger, harness } from './kafkaFakes.ts';

describe('thresholdLogger', () => {
  it('drops lines below the threshold, in children too; nothing writes no line', () => {
    const lines: string[] = [];
    const log = thresholdLogger(captureLogger(lines), 'warn');
    log.debug('dropped');
    log.info('dropped');
    log.warn('kept', { offset: 12n });
    log.child({ groupId: 'g' }).info('dropped');
    log.child({ groupId: 'g' }).error('kept too');
    expect(lines).toEqual(['warn kept {"offset":"12"}', 'error kept too {"groupId":"g"}']);
    const silent = thresholdLogger(captureLogger(lines), 'nothing');
    silent.error('x');
    expect(lines).toHaveLength(2);
  });

  it('describes errors as name: message', () => {
    expect(describeError(new RangeError('x'))).toBe('RangeError: x');
    expect(describeError('plain')).toBe('plain');
  });
});

describe('secrets of the Kafka source', () => {
  it('registers the SASL password and the TLS passphrase: the library redacts them everywhere', () => {
    const password = 'hunter2-kafka-logging';
    const passphrase = 'pass-phrase-kafka-logging';
    expect(redact(`${password} ${passphrase}`)).toBe(`${password} ${passphrase}`);
    harness({ sasl: { mechanism: 'plain', username: 'u', password }, ssl: { passphrase } });
    expect(redact(`a ${password} b ${passphrase}`)).toBe('a *** b ***');
  });
});

describe('Kafka backoff policies', () => {
  it('double from the first wait up to 30 s, with up to 40 % jitter below the full delay', () => {
    const none = (): number => 0;
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, RESTART_POLICY, none))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(backoffDelay(1, REJOIN_POLICY, none)).toBe(200);
    expect(backoffDelay(2, LOOKUP_POLICY, none)).toBe(400);
    expect(backoffDelay(1, RESTART_POLICY, () => 0.999_999)).toBe(600);
    expect(backoffDelay(99, RESTART_POLICY, () => 0.5)).toBe(RESTART_MAX_MS * 0.8);
  });
});
