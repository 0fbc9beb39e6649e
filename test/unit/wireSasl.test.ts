/**
 * SASL of the wire fetcher: the SCRAM computations against RFC 7677's SCRAM-SHA-256 example,
 * and whole exchanges (SaslHandshake v1, SaslAuthenticate v0) with a SCRAM server written here
 * from RFC 5802 — it verifies the client's proof the way a broker does (from the stored key
 * only) and signs back — for SCRAM-SHA-512 and SCRAM-SHA-256; then every way the exchange can
 * go wrong: refused credentials, a forged server signature, a server `e=` error, too few
 * iterations, a nonce that does not extend ours, an unsupported mechanism; and PLAIN. No error
 * message ever holds the password.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RxlakeError } from '../../src/core/errors.ts';
import type { KafkaSasl } from '../../src/sources/kafka/client.ts';
import { API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE, Reader, Writer } from '../../src/sources/kafka/wire/protocol.ts';
import type { Connection } from '../../src/sources/kafka/wire/protocol.ts';
import {
  SCRAM,
  authenticate,
  checkScramServerFinal,
  parseScramServerFirst,
  scramClientFinal,
  scramClientFirst,
  scramSaltedPassword,
  scramSaslName,
} from '../../src/sources/kafka/wire/sasl.ts';

// RFC 7677 section 3: C: n,,n=user,r=rOprNGfwEbeRWgbNEkqO / S: r=…%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,
// s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096 / C: c=biws,r=…,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
// / S: v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4= (user "user", password "pencil").
describe('SCRAM computations (RFC 7677 section 3, SCRAM-SHA-256)', () => {
  const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
  const serverFirstText = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const mechanism = SCRAM['scram-sha-256'];

  it('client-first, client-final with the proof, and the server signature', async () => {
    const first = scramClientFirst('user', clientNonce);
    expect(first.message).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(first.bare).toBe('n=user,r=rOprNGfwEbeRWgbNEkqO');
    const serverFirst = parseScramServerFirst(serverFirstText, clientNonce, mechanism);
    expect(serverFirst.nonce).toBe('rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    expect(serverFirst.iterations).toBe(4096);
    expect(serverFirst.salt.toString('base64')).toBe('W22ZaJ0SNY7soEsUEjb6gQ==');
    const salted = await scramSaltedPassword(mechanism, 'pencil', serverFirst.salt, serverFirst.iterations);
    const final = scramClientFinal(mechanism, salted, first.bare, serverFirst);
    expect(final.proof).toBe('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(final.message).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(final.serverSignature).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(() => checkScramServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=', final.serverSignature, mechanism)).not.toThrow();
  });

  it('refuses a server-final signature that differs by one bit, and names the server\'s e= error', () => {
    const good = Buffer.from('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=', 'base64');
    const bad = Buffer.from(good);
    bad[0] = (bad[0] as number) ^ 1;
    expect(() => checkScramServerFinal(`v=${bad.toString('base64')}`, good.toString('base64'), mechanism)).toThrow(/server signature does not match.*KAFKA_BOOTSTRAP_SERVERS/);
    expect(() => checkScramServerFinal('v=AAAA', good.toString('base64'), mechanism)).toThrow(/server signature does not match/);
    expect(() => checkScramServerFinal('e=invalid-proof', good.toString('base64'), mechanism)).toThrow(/e=invalid-proof.*KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/);
    expect(() => checkScramServerFinal('x=1', good.toString('base64'), mechanism)).toThrow(/neither v= nor e=/);
  });

  it('escapes = and , in the user name', () => {
    expect(scramSaslName('a=b,c')).toBe('a=3Db=2Cc');
    expect(scramClientFirst('=,', 'N').message).toBe('n,,n==3D=2C,r=N');
  });

  it('refuses a server-first with too few iterations, a foreign nonce, missing fields or a mandatory extension', () => {
    const text = (i: number, r = `${clientNonce}xyz`): string => `r=${r},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=${i}`;
    expect(() => parseScramServerFirst(text(4095), clientNonce, mechanism)).toThrow(/4095 iterations, fewer than the 4096/);
    expect(parseScramServerFirst(text(4096), clientNonce, mechanism).iterations).toBe(4096);
    expect(() => parseScramServerFirst(text(4096, 'someoneElsesNonce'), clientNonce, mechanism)).toThrow(/does not extend the client nonce/);
    expect(() => parseScramServerFirst(text(4096, clientNonce), clientNonce, mechanism)).toThrow(/does not extend the client nonce/);
    expect(() => parseScramServerFirst(`r=${clientNonce}x,i=4096`, clientNonce, mechanism)).toThrow(/lacks s=/);
    expect(() => parseScramServerFirst(`m=x,${text(4096)}`, clientNonce, mechanism)).toThrow(/mandatory extension/);
    expect(() => parseScramServerFirst('e=unknown-user', clientNonce, mechanism)).toThrow(/e=unknown-user.*KAFKA_SASL_PASSWORD/);
  });
});

// ---------------------------------------------------------------------------------------------
// A SCRAM server from RFC 5802 section 3, for whole exchanges
// ---------------------------------------------------------------------------------------------

interface ServerOptions {
  /** Mechanisms the server enables. */
  readonly enabled?: readonly string[];
  readonly iterations?: number;
  /** Replaces the server's signature in the server-final message. */
  readonly forgeSignature?: boolean;
  /** Answers the client-final message with `e=<this>` instead of a signature. */
  readonly finalError?: string;
  /** Replaces the server nonce (normally ours + random). */
  readonly nonce?: (clientNonce: string) => string;
}

/** What a broker stores for a SCRAM user: salt, iterations, StoredKey, ServerKey (never the password). */
function credentials(hash: 'sha256' | 'sha512', password: string, iterations: number): { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer } {
  const salt = randomBytes(16);
  const length = hash === 'sha256' ? 32 : 64;
  const salted = pbkdf2Sync(password, salt, iterations, length, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return { salt, iterations, storedKey: createHash(hash).update(clientKey).digest(), serverKey: createHmac(hash, salted).update('Server Key').digest() };
}

/**
 * A `Connection` (only what `authenticate` uses) answering as a broker with user `user` whose
 * password is `password`; `log` collects what the client sent.
 */
function fakeBroker(mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'PLAIN', password: string, options: ServerOptions = {}): { conn: Connection; log: string[] } {
  const hash = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512';
  const creds = credentials(hash, password, options.iterations ?? 4096);
  const enabled = options.enabled ?? [mechanism];
  const log: string[] = [];
  let chosen: string | undefined;
  let clientFirstBare = '';
  let serverFirst = '';
  const response = (build: (w: Writer) => void): Buffer => {
    const w = new Writer().i32(0);
    build(w);
    return w.bytes();
  };
  const authenticateResponse = (error: number, message: string | null, bytes: string): Buffer => response((w) => w.i16(error).string(message).bytes32(Buffer.from(bytes)));
  const request = (apiKey: number, apiVersion: number, payload: Buffer): Promise<Buffer> => {
    const r = new Reader(payload, 0);
    if (apiKey === API_SASL_HANDSHAKE) {
      expect(apiVersion).toBe(1);
      const asked = r.string();
      log.push(`handshake ${asked}`);
      if (!enabled.includes(asked)) return Promise.resolve(response((w) => w.i16(33).array(enabled, (x, m) => x.string(m))));
      chosen = asked;
      return Promise.resolve(response((w) => w.i16(0).array(enabled, (x, m) => x.string(m))));
    }
    expect(apiKey).toBe(API_SASL_AUTHENTICATE);
    expect(apiVersion).toBe(0);
    const token = (r.bytes32() as Buffer).toString('utf8');
    log.push(token);
    if (chosen === 'PLAIN') {
      const [, user, pw] = token.split('\u0000');
      return Promise.resolve(user === 'user' && pw === password ? authenticateResponse(0, null, '') : authenticateResponse(58, 'Authentication failed: Invalid username or password', ''));
    }
    if (serverFirst === '') {
      const m = /^n,,(n=([^,]*),r=([^,]+))$/.exec(token);
      if (m === null) return Promise.resolve(authenticateResponse(58, 'malformed client-first', ''));
      clientFirstBare = m[1] as string;
      const clientNonce = m[3] as string;
      const nonce = options.nonce?.(clientNonce) ?? `${clientNonce}${randomBytes(12).toString('base64')}`;
      serverFirst = `r=${nonce},s=${creds.salt.toString('base64')},i=${creds.iterations}`;
      return Promise.resolve(authenticateResponse(0, null, serverFirst));
    }
    const m = /^(c=biws,r=([^,]+)),p=(.+)$/.exec(token);
    if (m === null) return Promise.resolve(authenticateResponse(58, 'malformed client-final', ''));
    const authMessage = `${clientFirstBare},${serverFirst},${m[1] as string}`;
    const clientSignature = createHmac(hash, creds.storedKey).update(authMessage).digest();
    const proof = Buffer.from(m[3] as string, 'base64');
    const clientKey = Buffer.from(proof.map((b, i) => b ^ (clientSignature[i] as number)));
    const ok = proof.length === clientSignature.length && timingSafeEqual(createHash(hash).update(clientKey).digest(), creds.storedKey);
    if (!ok) return Promise.resolve(authenticateResponse(58, `Authentication failed during authentication due to invalid credentials with SASL mechanism ${mechanism}`, ''));
    if (options.finalError !== undefined) return Promise.resolve(authenticateResponse(0, null, `e=${options.finalError}`));
    const signature = options.forgeSignature === true ? randomBytes(clientSignature.length) : createHmac(hash, creds.serverKey).update(authMessage).digest();
    return Promise.resolve(authenticateResponse(0, null, `v=${signature.toString('base64')}`));
  };
  return { conn: { address: 'broker.test:9096', request } as unknown as Connection, log };
}

const PASSWORD = 'the-secret-Pässwort,=';

async function failure(conn: Connection, sasl: KafkaSasl): Promise<RxlakeError> {
  const err = await authenticate(conn, sasl, 1000).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RxlakeError);
  const e = err as RxlakeError;
  expect(e.message).not.toContain(PASSWORD);
  expect(e.retriable).toBe(false);
  return e;
}

describe('authenticate: whole exchanges', () => {
  for (const mechanism of ['scram-sha-512', 'scram-sha-256'] as const) {
    it(`${mechanism}: the server verifies the proof, the client verifies the server's signature`, async () => {
      const { conn, log } = fakeBroker(SCRAM[mechanism].name, PASSWORD, { iterations: 8192 });
      await authenticate(conn, { mechanism, username: 'user', password: PASSWORD }, 1000);
      expect(log).toHaveLength(3);
      expect(log[0]).toBe(`handshake ${SCRAM[mechanism].name}`);
      expect(log[1]).toMatch(/^n,,n=user,r=[A-Za-z0-9+/=]{32}$/);
      expect(log[2]).toMatch(/^c=biws,r=[^,]+,p=[A-Za-z0-9+/=]+$/);
      expect(log.join('\n')).not.toContain(PASSWORD);
    });
  }

  it('a wrong password: refused by the broker, the error names the user, the broker and KAFKA_SASL_PASSWORD', async () => {
    const { conn } = fakeBroker('SCRAM-SHA-512', 'another password');
    const e = await failure(conn, { mechanism: 'scram-sha-512', username: 'user', password: PASSWORD });
    expect(e.code).toBe('KAFKA_SASL_AUTHENTICATION_FAILED');
    expect(e.message).toContain('SASL SCRAM-SHA-512 authentication of user "user" with broker.test:9096 failed: Authentication failed during authentication due to invalid credentials');
    expect(e.message).toContain('check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (value not shown)');
  });

  it('a server that does not hold the credentials (forged signature) is refused', async () => {
    const { conn } = fakeBroker('SCRAM-SHA-512', PASSWORD, { forgeSignature: true });
    const e = await failure(conn, { mechanism: 'scram-sha-512', username: 'user', password: PASSWORD });
    expect(e.code).toBe('KAFKA_SASL_SERVER_SIGNATURE');
    expect(e.message).toContain('SASL SCRAM-SHA-512 with broker.test:9096 (user "user"): the broker\'s server signature does not match');
  });

  it('a server-final e= error is named', async () => {
    const { conn } = fakeBroker('SCRAM-SHA-256', PASSWORD, { finalError: 'other-error' });
    const e = await failure(conn, { mechanism: 'scram-sha-256', username: 'user', password: PASSWORD });
    expect(e.message).toContain('the broker answered e=other-error');
    expect(e.message).toContain('KAFKA_SASL_PASSWORD');
  });

  it('too few iterations and a nonce that does not extend ours are refused before any proof is sent', async () => {
    const weak = fakeBroker('SCRAM-SHA-512', PASSWORD, { iterations: 1000 });
    expect((await failure(weak.conn, { mechanism: 'scram-sha-512', username: 'user', password: PASSWORD })).message).toMatch(/asks for 1000 iterations, fewer than the 4096/);
    expect(weak.log).toHaveLength(2);
    const foreign = fakeBroker('SCRAM-SHA-512', PASSWORD, { nonce: () => 'not-our-nonce' });
    expect((await failure(foreign.conn, { mechanism: 'scram-sha-512', username: 'user', password: PASSWORD })).message).toMatch(/broker\.test:9096.*does not extend the client nonce/);
    expect(foreign.log).toHaveLength(2);
  });

  it('a mechanism the broker does not enable: names the ones it does and KAFKA_SASL_MECHANISM', async () => {
    const { conn } = fakeBroker('SCRAM-SHA-512', PASSWORD, { enabled: ['PLAIN', 'SCRAM-SHA-512'] });
    const e = await failure(conn, { mechanism: 'scram-sha-256', username: 'user', password: PASSWORD });
    expect(e.message).toBe('the broker at broker.test:9096 does not enable SASL SCRAM-SHA-256 (it enables PLAIN, SCRAM-SHA-512): set KAFKA_SASL_MECHANISM to one of those');
  });

  it('PLAIN still works, and its refusal names KAFKA_SASL_PASSWORD without the password', async () => {
    const ok = fakeBroker('PLAIN', PASSWORD);
    await authenticate(ok.conn, { mechanism: 'plain', username: 'user', password: PASSWORD }, 1000);
    expect(ok.log).toEqual(['handshake PLAIN', `\u0000user\u0000${PASSWORD}`]);
    const refused = fakeBroker('PLAIN', 'another password');
    const e = await failure(refused.conn, { mechanism: 'plain', username: 'user', password: PASSWORD });
    expect(e.message).toContain('Invalid username or password');
    expect(e.message).toContain('KAFKA_SASL_PASSWORD');
  });
});
