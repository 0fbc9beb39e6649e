/**
 * SASL on a wire connection: SaslHandshake v1 then SaslAuthenticate v0 (KIP-152), mechanisms
 * PLAIN (one token) and SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677: client-first,
 * server-first, client-final, server-final; the broker's signature is verified, so a broker
 * that does not hold the user's credentials is refused too). The SCRAM computations are small
 * pure functions, exported for their tests.
 *
 * Like Kafka's own clients, the password is used as its UTF-8 bytes (no SASLprep), and no
 * channel binding is offered (`n,,` → `c=biws`).
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { RxlakeError } from '../../../core/errors.ts';
import type { KafkaSasl } from '../client.ts';
import { API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE, KafkaBrokerError, Reader, Writer } from './protocol.ts';
import type { Connection } from './protocol.ts';

const pbkdf2Async = promisify(pbkdf2);

/** What to check and fix when the broker refuses the credentials (never the password itself). */
const CHECK_CREDENTIALS = 'check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (value not shown), and that KAFKA_SASL_MECHANISM is one the broker has credentials for this user with';

/** A SCRAM mechanism: its name and hash. */
export interface ScramMechanism {
  readonly name: 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
  /** node:crypto's name of the hash. */
  readonly hash: 'sha256' | 'sha512';
  /** The hash's output length in bytes. */
  readonly length: 32 | 64;
}

/** The SCRAM mechanisms Kafka speaks. */
export const SCRAM: Readonly<Record<'scram-sha-256' | 'scram-sha-512', ScramMechanism>> = {
  'scram-sha-256': { name: 'SCRAM-SHA-256', hash: 'sha256', length: 32 },
  'scram-sha-512': { name: 'SCRAM-SHA-512', hash: 'sha512', length: 64 },
};

/** The fewest iterations accepted from a server (RFC 7677 and Kafka's own minimum). */
export const SCRAM_MIN_ITERATIONS = 4096;

/** The GS2 header of a client that neither supports nor asks for channel binding. */
const GS2_HEADER = 'n,,';
/** `c=` of the client-final message: the GS2 header in base64. */
const CHANNEL_BINDING = Buffer.from(GS2_HEADER).toString('base64');

/** A user name as a SCRAM `saslname`: `=` → `=3D`, `,` → `=2C`. */
export function scramSaslName(username: string): string {
  return username.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** A fresh client nonce: 24 random bytes in base64 (printable, no comma). */
export function scramNonce(): string {
  return randomBytes(24).toString('base64');
}

/** The client-first message (`n,,n=<saslname>,r=<nonce>`) and its bare part (without the GS2 header). */
export function scramClientFirst(username: string, clientNonce: string): { readonly message: string; readonly bare: string } {
  const bare = `n=${scramSaslName(username)},r=${clientNonce}`;
  return { message: `${GS2_HEADER}${bare}`, bare };
}

/** The server-first message, read. */
export interface ScramServerFirst {
  /** The whole message as received (part of the AuthMessage). */
  readonly message: string;
  /** The client's nonce followed by the server's. */
  readonly nonce: string;
  readonly salt: Buffer;
  readonly iterations: number;
}

/** A SCRAM message's attributes (`k=value`, comma-separated), in order. */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (m?.[1] !== undefined && m[2] !== undefined && !out.has(m[1])) out.set(m[1], m[2]);
  }
  return out;
}

/** A SCRAM exchange the server broke: not retriable, names what was wrong. */
function scramProtocolError(mechanism: ScramMechanism, what: string): RxlakeError {
  return new RxlakeError(`SASL ${mechanism.name}: ${what}; the broker does not follow RFC 5802, or something between this client and the broker changes the exchange: check that KAFKA_BOOTSTRAP_SERVERS lists the brokers themselves`, {
    code: 'KAFKA_SASL_PROTOCOL',
  });
}

/**
 * Reads the server-first message (`r=<nonce>,s=<salt>,i=<iterations>`): the nonce must start
 * with the client's and add the server's, the iteration count be at least 4096, and no
 * mandatory extension (`m=`) be asked for. An `e=` error names the server's reason.
 */
export function parseScramServerFirst(message: string, clientNonce: string, mechanism: ScramMechanism): ScramServerFirst {
  const a = attributes(message);
  const serverError = a.get('e');
  if (serverError !== undefined) throw scramRefused(mechanism, `the broker answered e=${serverError}`);
  if (a.has('m')) throw scramProtocolError(mechanism, 'the server-first message asks for a mandatory extension (m=) this client does not know');
  const nonce = a.get('r');
  const saltText = a.get('s');
  const iterationsText = a.get('i');
  if (nonce === undefined || saltText === undefined || iterationsText === undefined) {
    throw scramProtocolError(mechanism, `the server-first message lacks ${[nonce === undefined ? 'r=' : '', saltText === undefined ? 's=' : '', iterationsText === undefined ? 'i=' : ''].filter((x) => x !== '').join(', ')}`);
  }
  if (!nonce.startsWith(clientNonce) || nonce.length <= clientNonce.length) {
    throw scramProtocolError(mechanism, 'the server nonce does not extend the client nonce');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(saltText)) throw scramProtocolError(mechanism, 'the salt (s=) is not base64');
  const salt = Buffer.from(saltText, 'base64');
  if (!/^[0-9]{1,10}$/.test(iterationsText)) throw scramProtocolError(mechanism, `the iteration count (i=${iterationsText}) is not a number`);
  const iterations = Number(iterationsText);
  if (iterations < SCRAM_MIN_ITERATIONS) {
    throw new RxlakeError(
      `SASL ${mechanism.name}: the broker asks for ${iterations} iterations, fewer than the ${SCRAM_MIN_ITERATIONS} RFC 7677 requires (a weak or forged server-first message): ` +
        `recreate the user's SCRAM credentials on the broker with iterations=${SCRAM_MIN_ITERATIONS} or more (kafka-configs.sh --alter --add-config '${mechanism.name}=[iterations=${SCRAM_MIN_ITERATIONS},password=…]')`,
      { code: 'KAFKA_SASL_PROTOCOL' },
    );
  }
  return { message, nonce, salt, iterations };
}

/** SaltedPassword = PBKDF2(password as UTF-8, salt, iterations) with the mechanism's HMAC. */
export function scramSaltedPassword(mechanism: ScramMechanism, password: string, salt: Uint8Array, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, mechanism.length, mechanism.hash);
}

function hmac(mechanism: ScramMechanism, key: Uint8Array, text: string): Buffer {
  return createHmac(mechanism.hash, key).update(text, 'utf8').digest();
}

/**
 * The client-final message (`c=biws,r=<nonce>,p=<proof>`) and the server signature the
 * server-final message must carry, from the salted password and the first two messages:
 * ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage),
 * ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage).
 */
export function scramClientFinal(
  mechanism: ScramMechanism,
  saltedPassword: Uint8Array,
  clientFirstBare: string,
  serverFirst: ScramServerFirst,
): { readonly message: string; readonly proof: string; readonly serverSignature: string } {
  const withoutProof = `c=${CHANNEL_BINDING},r=${serverFirst.nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst.message},${withoutProof}`;
  const clientKey = hmac(mechanism, saltedPassword, 'Client Key');
  const storedKey = createHash(mechanism.hash).update(clientKey).digest();
  const clientSignature = hmac(mechanism, storedKey, authMessage);
  const proofBytes = Buffer.alloc(clientKey.length);
  for (let i = 0; i < clientKey.length; i++) proofBytes[i] = (clientKey[i] as number) ^ (clientSignature[i] as number);
  const proof = proofBytes.toString('base64');
  const serverSignature = hmac(mechanism, hmac(mechanism, saltedPassword, 'Server Key'), authMessage).toString('base64');
  return { message: `${withoutProof},p=${proof}`, proof, serverSignature };
}

/** The broker refused the credentials (or the SCRAM exchange): names what to check. */
function scramRefused(mechanism: ScramMechanism, why: string): RxlakeError {
  return new RxlakeError(`SASL ${mechanism.name} authentication failed: ${why}: ${CHECK_CREDENTIALS}`, { code: 'KAFKA_SASL_AUTHENTICATION_FAILED' });
}

/**
 * Checks the server-final message: `v=<ServerSignature>` must equal the one computed here (the
 * broker proves it holds the user's credentials); `e=<error>` fails with the server's reason.
 */
export function checkScramServerFinal(message: string, expectedServerSignature: string, mechanism: ScramMechanism): void {
  const a = attributes(message);
  const serverError = a.get('e');
  if (serverError !== undefined) throw scramRefused(mechanism, `the broker answered e=${serverError}`);
  const v = a.get('v');
  if (v === undefined) throw scramProtocolError(mechanism, 'the server-final message has neither v= nor e=');
  const got = Buffer.from(v, 'base64');
  const want = Buffer.from(expectedServerSignature, 'base64');
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new RxlakeError(
      `SASL ${mechanism.name}: the broker's server signature does not match — it does not hold this user's SCRAM credentials, or something between this client and the broker impersonates it: ` +
        'check that KAFKA_BOOTSTRAP_SERVERS lists the intended brokers, and that the user\'s credentials on them were made from KAFKA_SASL_PASSWORD (value not shown)',
      { code: 'KAFKA_SASL_SERVER_SIGNATURE' },
    );
  }
}

/** One SaslAuthenticate v0 round trip: the server's bytes, or the broker's refusal as an error. */
async function saslAuthenticate(conn: Connection, token: Buffer, mechanism: string, username: string, timeoutMs: number): Promise<Buffer> {
  const r = new Reader(await conn.request(API_SASL_AUTHENTICATE, 0, new Writer().bytes32(token).bytes(), 'SaslAuthenticate', timeoutMs), 4);
  const error = r.i16();
  const message = r.nullableString();
  const bytes = r.bytes32();
  if (error !== 0) {
    throw new RxlakeError(`SASL ${mechanism} authentication of user ${JSON.stringify(username)} with ${conn.address} failed: ${message ?? `error ${error}`}: ${CHECK_CREDENTIALS}`, {
      code: 'KAFKA_SASL_AUTHENTICATION_FAILED',
    });
  }
  return Buffer.from(bytes ?? Buffer.alloc(0));
}

/** Adds the connection's address and the user to a SCRAM failure's message. */
function where(err: unknown, conn: Connection, username: string): unknown {
  if (!(err instanceof RxlakeError) || !err.code.startsWith('KAFKA_SASL') || err.message.includes(conn.address)) return err;
  return new RxlakeError(err.message.replace(/^SASL ([A-Z0-9-]+)/, `SASL $1 with ${conn.address} (user ${JSON.stringify(username)})`), { code: err.code, retriable: err.retriable, cause: err });
}

/** Authenticates `conn` (right after it opened) with PLAIN or SCRAM; rejects naming the broker's answer and the variables to fix. */
export async function authenticate(conn: Connection, sasl: KafkaSasl, timeoutMs: number): Promise<void> {
  const mechanism = sasl.mechanism.toUpperCase();
  const hs = new Reader(await conn.request(API_SASL_HANDSHAKE, 1, new Writer().string(mechanism).bytes(), 'SaslHandshake', timeoutMs), 4);
  const error = hs.i16();
  if (error === 33) {
    const enabled = hs.array((x) => x.string());
    throw new RxlakeError(`the broker at ${conn.address} does not enable SASL ${mechanism} (it enables ${enabled.join(', ') || 'none'}): set KAFKA_SASL_MECHANISM to one of those`, {
      code: 'KAFKA_UNSUPPORTED_SASL_MECHANISM',
    });
  }
  if (error !== 0) throw new KafkaBrokerError(error, `SASL ${mechanism} with ${conn.address}`);
  if (sasl.mechanism === 'plain') {
    await saslAuthenticate(conn, Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8'), mechanism, sasl.username, timeoutMs);
    return;
  }
  const scram = SCRAM[sasl.mechanism];
  try {
    const clientNonce = scramNonce();
    const first = scramClientFirst(sasl.username, clientNonce);
    const serverFirstBytes = await saslAuthenticate(conn, Buffer.from(first.message, 'utf8'), mechanism, sasl.username, timeoutMs);
    const serverFirst = parseScramServerFirst(serverFirstBytes.toString('utf8'), clientNonce, scram);
    const salted = await scramSaltedPassword(scram, sasl.password, serverFirst.salt, serverFirst.iterations);
    const final = scramClientFinal(scram, salted, first.bare, serverFirst);
    const serverFinal = await saslAuthenticate(conn, Buffer.from(final.message, 'utf8'), mechanism, sasl.username, timeoutMs);
    checkScramServerFinal(serverFinal.toString('utf8'), final.serverSignature, scram);
  } catch (err) {
    throw where(err, conn, sasl.username);
  }
}
