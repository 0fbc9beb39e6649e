/**
 * The Kafka source's log, redaction and backoff: secrets never leave in a line or an error,
 * levels below the threshold are dropped, backoff doubles to its cap with bounded jitter.
 */
import { describe, expect, it } from 'vitest';
import { backoff, RESTART_MAX_MS } from '../../src/sources/kafka/backoff.ts';
import { describeError, makeLogger, redactor } from '../../src/sources/kafka/logging.ts';

const SECRET = 'hunter2-secret';

describe('redactor', () => {
  it('redacts the SASL password and the TLS passphrase from text and errors, keeping errors without secrets as they are', () => {
    const r = redactor({ sasl: { mechanism: 'plain', username: 'u', password: SECRET }, ssl: { passphrase: 'pass-phrase' } });
    expect(r.text(`a ${SECRET} b pass-phrase`)).toBe('a *** b ***');
    const clean = new Error('connect ECONNREFUSED');
    expect(r.error(clean)).toBe(clean);
    const leaky = new TypeError(`bad ${SECRET}`);
    const safe = r.error(leaky) as Error;
    expect(safe).not.toBe(leaky);
    expect(safe.name).toBe('TypeError');
    expect(safe.message).toBe('bad ***');
    expect(safe.stack).not.toContain(SECRET);
    expect(r.errorText(`plain ${SECRET}`)).toBe('plain ***');
    // No secrets configured: nothing to do.
    const none = redactor({ ssl: true });
    expect(none.secrets).toEqual([]);
    expect(none.error(leaky)).toBe(leaky);
  });
});

describe('makeLogger', () => {
  it('drops lines below the threshold, redacts message and fields, writes bigints as decimal strings', () => {
    const lines: unknown[] = [];
    const log = makeLogger((level, message, extra) => lines.push({ level, message, extra }), redactor({ sasl: { mechanism: 'plain', username: 'u', password: SECRET } }), 'warn');
    log('info', 'dropped', {});
    log('warn', `kept ${SECRET}`, { offset: 12n, nested: { p: SECRET } });
    log('error', 'circular', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })());
    expect(lines).toEqual([
      { level: 'warn', message: 'kept ***', extra: { offset: '12', nested: { p: '***' } } },
      { level: 'error', message: 'circular', extra: {} },
    ]);
    const silent = makeLogger((l) => lines.push(l), redactor({}), 'nothing');
    silent('error', 'x', {});
    expect(lines).toHaveLength(2);
  });

  it('describes errors as name: message', () => {
    expect(describeError(new RangeError('x'))).toBe('RangeError: x');
    expect(describeError('plain')).toBe('plain');
  });
});

describe('backoff', () => {
  it('doubles from the first wait up to 30 s, with ±20 % jitter', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoff(a, 1_000, mid))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(backoff(1, 200, mid)).toBe(200);
    expect(backoff(1, 1_000, () => 0)).toBe(800);
    expect(backoff(1, 1_000, () => 0.999_999)).toBe(1_200);
    expect(backoff(99, 1_000, () => 0.999_999)).toBe(RESTART_MAX_MS * 1.2);
  });
});
