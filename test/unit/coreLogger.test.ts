/**
 * The one logger: pino JSON lines and the jobs' text lines, child bindings, levels, and the one
 * place secrets are redacted (messages, fields, error messages and stacks, errors that leave).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RxlakeError } from '../../src/core/errors.ts';
import { fromPino, pinoLogger, redact, redactError, registerSecret, silentLogger } from '../../src/core/logger.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { decodeEnv, envVar, NonEmptyString, optionalEnvVar } from '../../src/runtime/env.ts';

function capture(format: 'json' | 'text', level: 'debug' | 'info' | 'warn' | 'error' = 'debug'): { lines: string[]; log: ReturnType<typeof pinoLogger> } {
  const lines: string[] = [];
  return { lines, log: pinoLogger({ level, format, destination: (l) => lines.push(l) }) };
}

describe('pinoLogger', () => {
  it('writes JSON lines with level, time, bindings, fields and message', () => {
    const { lines, log } = capture('json');
    log.child({ table: 'bronze_trips' }).info('batch written', { rows: 12, version: 3n, when: new Date(0), payload: new Uint8Array(300), apps: new Map([['a', 1n]]) });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    const entry = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 'info', table: 'bronze_trips', rows: 12, version: '3', when: '1970-01-01T00:00:00.000Z', payload: '<300 bytes>', apps: { a: '1' }, msg: 'batch written' });
    expect(new Date(entry.time as string).toISOString()).toBe(entry.time);
  });

  it('writes errors as fields: class, code, retriable, message, stack and cause', () => {
    const { lines, log } = capture('json');
    const err = new RxlakeError('write failed', { code: 'STORAGE_ERROR', retriable: true, cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    log.warn('retrying', { error: err });
    const { error } = JSON.parse(lines[0] as string) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ type: 'RxlakeError', code: 'STORAGE_ERROR', retriable: true, message: 'write failed', cause: { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } });
    expect(error.stack).toMatch(/^RxlakeError: write failed\n\s+at /);
  });

  it('writes the jobs\' text lines: time, LEVEL, message, key=value', () => {
    const { lines, log } = capture('text');
    log.info('progress', { rows: 50, lag: 0n, in_flight: 0, status: 'healthy', note: 'two words', list: ['a', 1] });
    log.warn('S3 failed, retrying', { attempt: 1, error: new Error('connect ECONNREFUSED 127.0.0.1:9') });
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}progress rows=50 lag=0 in_flight=0 status=healthy note="two words" list=\["a",1\]\n$/);
    expect(lines[1]).toMatch(/ WARN {2}S3 failed, retrying attempt=1 error="connect ECONNREFUSED 127\.0\.0\.1:9"\n$/);
    // the jobs' logger is this one, in text by default
    const job: string[] = [];
    createLogger('info', (l) => job.push(l)).info('health and metrics', { url: 'http://127.0.0.1:8080/health' });
    expect(job[0]).toMatch(/ INFO {2}health and metrics url=http:\/\/127\.0\.0\.1:8080\/health\n$/);
  });

  it('drops lines below its level; the silent logger drops all', () => {
    const { lines, log } = capture('json', 'warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.child({ a: 1 }).error('e');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w', 'e']);
    silentLogger.child({ a: 1 }).error('nothing');
  });

  it('adapts a pino logger of the application\'s own', () => {
    const lines: string[] = [];
    const log = fromPino(pino({ base: { app: 'mine' } }, { write: (l: string) => lines.push(l) }));
    log.child({ table: 't' }).info('hello', { n: 1n });
    expect(JSON.parse(lines[0] as string)).toMatchObject({ app: 'mine', table: 't', n: '1', msg: 'hello' });
  });
});

describe('secret redaction', () => {
  it('cuts registered secrets from messages, fields, nested fields, bindings and error messages and stacks', () => {
    const secret = 'pw-5f3a9c1e';
    registerSecret(secret, undefined, '');
    for (const format of ['json', 'text'] as const) {
      const { lines, log } = capture(format);
      const err = new Error(`auth failed for user:${secret}@host`, { cause: new Error(`inner ${secret}`) });
      log.child({ url: `http://u:${secret}@h` }).error(`login with ${secret} failed`, { password: secret, nested: { list: [secret] }, error: err });
      const out = lines.join('');
      expect(out, format).not.toContain(secret);
      expect(out, format).toContain('***');
    }
    expect(redact(`a ${secret} b ${secret}`)).toBe('a *** b ***');
  });

  it('cuts a secret as it appears inside JSON text, and the longer of two overlapping secrets whole', () => {
    registerSecret('q"uo\\te-7d1', 'abc-91f2', 'abc-91f2-long');
    expect(redact(JSON.stringify({ p: 'q"uo\\te-7d1' }))).toBe('{"p":"***"}');
    expect(redact('x abc-91f2-long y abc-91f2')).toBe('x *** y ***');
  });

  it('gives errors that leave the library a redacted copy of the same class, or the error itself when clean', () => {
    const secret = 'sk-0b7e44d2';
    registerSecret(secret);
    const clean = new RxlakeError('nothing to hide', { code: 'X' });
    expect(redactError(clean)).toBe(clean);
    const dirty = new RxlakeError(`refused ${secret}`, { code: 'X', retriable: true, cause: new Error(`cause ${secret}`) });
    const copy = redactError(dirty);
    expect(copy).not.toBe(dirty);
    expect(copy).toBeInstanceOf(RxlakeError);
    expect([copy.message, copy.code, copy.retriable, (copy.cause as Error).message]).toEqual(['refused ***', 'X', true, 'cause ***']);
    expect(copy.stack).not.toContain(secret);
    expect(copy.stack).toContain('refused ***');
    expect(dirty.message).toBe(`refused ${secret}`); // the original is left as it was
  });

  it('registers the environment\'s secret variables when they are read', () => {
    const { lines, log } = capture('text');
    decodeEnv(
      { USER: envVar(NonEmptyString, 'a name'), PASS: optionalEnvVar(NonEmptyString, 'a password', { secret: true }) },
      { USER: 'alice', PASS: 'hunter2-e9c1' },
    );
    log.info('connecting', { user: 'alice', pass: 'hunter2-e9c1' });
    expect(lines[0]).toContain('user=alice pass=***');
  });
});
