/**
 * SASL on a wire connection: SaslHandshake v1 then SaslAuthenticate v0 (KIP-152), mechanism
 * PLAIN; SCRAM-SHA-256/512 not yet.
 */
import { RxlakeError } from '../../../core/errors.ts';
import type { KafkaSasl } from '../client.ts';
import { API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE, KafkaBrokerError, Reader, Writer } from './protocol.ts';
import type { Connection } from './protocol.ts';

/** Authenticates `conn` (right after it opened); rejects naming the broker's answer. */
export async function authenticate(conn: Connection, sasl: KafkaSasl, timeoutMs: number): Promise<void> {
  const mechanism = sasl.mechanism.toUpperCase();
  const hs = new Reader(await conn.request(API_SASL_HANDSHAKE, 1, new Writer().string(mechanism).bytes(), 'SaslHandshake', timeoutMs), 4);
  const error = hs.i16();
  if (error !== 0) throw new KafkaBrokerError(error, `SASL ${mechanism} with ${conn.address}`);
  if (sasl.mechanism !== 'plain') throw new RxlakeError(`the wire client does not speak SASL ${mechanism} yet: use KAFKA_CLIENT=kafkajs`, { code: 'KAFKA_SASL_MECHANISM' });
  const token = Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8');
  const r = new Reader(await conn.request(API_SASL_AUTHENTICATE, 0, new Writer().bytes32(token).bytes(), 'SaslAuthenticate', timeoutMs), 4);
  const authError = r.i16();
  const message = r.nullableString();
  if (authError !== 0) throw new RxlakeError(`SASL ${mechanism} authentication with ${conn.address} failed: ${message ?? `error ${authError}`}: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`, { code: 'KAFKA_SASL_AUTHENTICATION_FAILED' });
}
