/**
 * Kafka security of a job: the TLS settings read from their files (CA, client certificate and
 * key for mutual TLS) and checked at start, the client options they become, and the start-up
 * failures they cause (refused SASL credentials, an untrusted broker certificate, a refused
 * client certificate, TLS against a listener without it) as messages that name the cause and
 * the variable to fix, never a secret.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect, createSecureContext } from 'node:tls';
import { StartupError } from './cli.ts';

/** TLS settings of a Kafka client: PEM texts and switches (what `fromKafka`'s `ssl` takes). */
export interface KafkaTls {
  /** CA certificates to trust instead of Node's built-in ones (PEM). */
  readonly ca?: string;
  /** Client certificate (PEM), for brokers that require one (mutual TLS). */
  readonly cert?: string;
  /** The client certificate's private key (PEM). */
  readonly key?: string;
  /** Password of an encrypted `key`. */
  readonly passphrase?: string;
  /** `false` accepts any broker certificate (no verification). */
  readonly rejectUnauthorized?: boolean;
  /** Host name expected in the broker's certificate (default: the broker's host). */
  readonly servername?: string;
}

/** SASL credentials of a Kafka client (one type per mechanism, as Kafka clients declare them). */
export type KafkaSasl = { [M in 'plain' | 'scram-sha-256' | 'scram-sha-512']: { readonly mechanism: M; readonly username: string; readonly password: string } }['plain' | 'scram-sha-256' | 'scram-sha-512'];

/** The Kafka part of a job's configuration that this module reads. */
export interface KafkaSecurity {
  readonly brokers: readonly string[];
  readonly ssl: boolean | KafkaTls;
  readonly sasl?: { readonly mechanism: KafkaSasl['mechanism']; readonly username: string; readonly password: string };
}

/** The security variables as decoded from the environment. */
export interface KafkaSecurityEnv {
  readonly KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
  readonly KAFKA_SSL_CA_LOCATION?: string | undefined;
  readonly KAFKA_SSL_CERTIFICATE_LOCATION?: string | undefined;
  readonly KAFKA_SSL_KEY_LOCATION?: string | undefined;
  readonly KAFKA_SSL_KEY_PASSWORD?: string | undefined;
  readonly KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION?: boolean | undefined;
}

const TLS_FILE_VARIABLES = ['KAFKA_SSL_CA_LOCATION', 'KAFKA_SSL_CERTIFICATE_LOCATION', 'KAFKA_SSL_KEY_LOCATION', 'KAFKA_SSL_KEY_PASSWORD'] as const;

/**
 * The `ssl` setting of a job from its variables: `false` without TLS, `true` for TLS with
 * Node's built-in CAs and no client certificate, otherwise the PEM texts read from the files.
 * Every problem (a file missing or unreadable, no PEM inside, a certificate without its key, a
 * key its password does not open, TLS files with a protocol without TLS) is a sentence naming
 * the variable and the fix; secrets are never in them.
 */
export function kafkaTlsFromEnv(e: KafkaSecurityEnv): { readonly ssl: boolean | KafkaTls; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const tlsOn = e.KAFKA_SECURITY_PROTOCOL === 'SSL' || e.KAFKA_SECURITY_PROTOCOL === 'SASL_SSL';
  const set = TLS_FILE_VARIABLES.filter((name) => e[name] !== undefined);
  if (!tlsOn) {
    const verification = e.KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION !== undefined ? ['KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION'] : [];
    const named = [...set, ...verification];
    if (named.length > 0) {
      problems.push(
        `${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} set but KAFKA_SECURITY_PROTOCOL=${e.KAFKA_SECURITY_PROTOCOL} does not use TLS: ` +
          `set KAFKA_SECURITY_PROTOCOL=${e.KAFKA_SECURITY_PROTOCOL === 'SASL_PLAINTEXT' ? 'SASL_SSL' : 'SSL or SASL_SSL'} to connect with TLS, or unset ${named.length === 1 ? 'it' : 'them'}.`,
      );
    }
    return { ssl: false, problems };
  }

  const ca = e.KAFKA_SSL_CA_LOCATION === undefined ? undefined : readPem('KAFKA_SSL_CA_LOCATION', e.KAFKA_SSL_CA_LOCATION, problems);
  if (ca !== undefined) checkCertificates('KAFKA_SSL_CA_LOCATION', e.KAFKA_SSL_CA_LOCATION ?? '', ca, 'the PEM file of the CA certificate that signed the brokers\' certificates', problems);

  const certPath = e.KAFKA_SSL_CERTIFICATE_LOCATION;
  const keyPath = e.KAFKA_SSL_KEY_LOCATION;
  if ((certPath === undefined) !== (keyPath === undefined)) {
    problems.push(
      `KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (mutual TLS): set both, the client certificate and its private key (PEM), or neither.`,
    );
  }
  if (e.KAFKA_SSL_KEY_PASSWORD !== undefined && keyPath === undefined) {
    problems.push('KAFKA_SSL_KEY_PASSWORD is set but KAFKA_SSL_KEY_LOCATION is not: set KAFKA_SSL_KEY_LOCATION to the encrypted private key it opens, or unset KAFKA_SSL_KEY_PASSWORD.');
  }
  const cert = certPath === undefined ? undefined : readPem('KAFKA_SSL_CERTIFICATE_LOCATION', certPath, problems);
  if (cert !== undefined && certPath !== undefined) checkCertificates('KAFKA_SSL_CERTIFICATE_LOCATION', certPath, cert, 'the PEM file of the client certificate', problems);
  const key = keyPath === undefined ? undefined : readPem('KAFKA_SSL_KEY_LOCATION', keyPath, problems);
  const keyOk = key !== undefined && keyPath !== undefined && checkKey(keyPath, key, e.KAFKA_SSL_KEY_PASSWORD, problems);
  if (keyOk && cert !== undefined && key !== undefined) {
    try {
      createSecureContext({ cert, key, ...(e.KAFKA_SSL_KEY_PASSWORD !== undefined ? { passphrase: e.KAFKA_SSL_KEY_PASSWORD } : {}) });
    } catch (err) {
      problems.push(
        `KAFKA_SSL_KEY_LOCATION=${JSON.stringify(keyPath)} is not the private key of the certificate in KAFKA_SSL_CERTIFICATE_LOCATION=${JSON.stringify(certPath)} ` +
          `(${reason(err)}): set the two to a certificate and its own key.`,
      );
    }
  }

  const verify = e.KAFKA_ENABLE_SSL_CERTIFICATE_VERIFICATION;
  if (ca === undefined && cert === undefined && key === undefined && verify === undefined) return { ssl: true, problems };
  const ssl: KafkaTls = {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(e.KAFKA_SSL_KEY_PASSWORD !== undefined ? { passphrase: e.KAFKA_SSL_KEY_PASSWORD } : {}),
    ...(verify !== undefined ? { rejectUnauthorized: verify } : {}),
  };
  return { ssl, problems };
}

/** A PEM file's text; `undefined` with a problem when it cannot be read or holds no PEM. */
function readPem(variable: string, path: string, problems: string[]): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = variable === 'KAFKA_SSL_CA_LOCATION' ? 'the CA certificate file' : variable === 'KAFKA_SSL_KEY_LOCATION' ? 'the private key file' : 'the client certificate file';
    if (code === 'ENOENT') problems.push(`${variable}=${JSON.stringify(path)} does not exist: set it to ${what} (PEM).`);
    else if (code === 'EACCES' || code === 'EPERM') problems.push(`${variable}=${JSON.stringify(path)} cannot be read (${code}): let the job's user read it, or point ${variable} at a readable copy.`);
    else if (code === 'EISDIR') problems.push(`${variable}=${JSON.stringify(path)} is a folder: set it to ${what} (PEM) itself.`);
    else problems.push(`${variable}=${JSON.stringify(path)} cannot be read (${code ?? reason(err)}): set it to ${what} (PEM).`);
    return undefined;
  }
  if (!text.includes('-----BEGIN ')) {
    problems.push(`${variable}=${JSON.stringify(path)} holds no PEM block ("-----BEGIN …"): convert it to PEM (e.g. openssl x509 -inform DER / openssl pkcs12 -nodes), or point ${variable} at the PEM file.`);
    return undefined;
  }
  return text;
}

function checkCertificates(variable: string, path: string, pem: string, what: string, problems: string[]): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    problems.push(`${variable}=${JSON.stringify(path)} holds no certificate ("-----BEGIN CERTIFICATE-----"): set it to ${what}.`);
    return;
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      problems.push(`${variable}=${JSON.stringify(path)} holds a certificate that does not parse (${reason(err)}): set it to ${what}.`);
      return;
    }
  }
}

/** Whether the key opens (with its password, if any); otherwise a problem naming the fix. */
function checkKey(path: string, pem: string, passphrase: string | undefined, problems: string[]): boolean {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    problems.push(`KAFKA_SSL_KEY_LOCATION=${JSON.stringify(path)} holds no private key ("-----BEGIN … PRIVATE KEY-----"): set it to the client certificate's private key (PEM).`);
    return false;
  }
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
  if (encrypted && passphrase === undefined) {
    problems.push(`KAFKA_SSL_KEY_LOCATION=${JSON.stringify(path)} is encrypted: set KAFKA_SSL_KEY_PASSWORD to its password.`);
    return false;
  }
  try {
    createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
    return true;
  } catch (err) {
    problems.push(
      encrypted
        ? `KAFKA_SSL_KEY_PASSWORD (set; value not shown) does not open the key in KAFKA_SSL_KEY_LOCATION=${JSON.stringify(path)}: set it to that key's password.`
        : `KAFKA_SSL_KEY_LOCATION=${JSON.stringify(path)} holds a private key that does not parse (${reason(err)}): set it to the client certificate's private key (PEM).`,
    );
    return false;
  }
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = (typeof e.message === 'string' ? e.message : String(err)).split('\n')[0] ?? '';
  return typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

/**
 * The security options of a Kafka client (`ssl`, `sasl`) for a job's configuration: fresh
 * objects on every call (kafkajs caches an authenticator on the `sasl` object it is given).
 */
export function kafkaClientSecurity(kafka: KafkaSecurity): { ssl?: true | KafkaTls; sasl?: KafkaSasl } {
  return {
    ...(kafka.ssl === true ? { ssl: true as const } : kafka.ssl !== false ? { ssl: { ...kafka.ssl } } : {}),
    ...(kafka.sasl !== undefined ? { sasl: { ...kafka.sasl } } : {}),
  };
}

// ---- start-up failures ------------------------------------------------------------------------

/** OpenSSL/Node verification codes of a broker certificate the client does not trust. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** The broker refused the client's certificate (or its absence): TLS alerts. */
const CLIENT_CERT_REFUSED = /ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_UNKNOWN|ALERT_HANDSHAKE_FAILURE|ALERT_ACCESS_DENIED/;
/** TLS spoken to a listener without it. */
const NOT_TLS = /WRONG_VERSION_NUMBER|before secure TLS connection was established|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/i;

interface Found {
  readonly code?: string;
  readonly name?: string;
  readonly message: string;
}

/** The errors along `err`'s `cause` chain (kafkajs wraps a failed connection in retries). */
function chain(err: unknown): Found[] {
  const out: Found[] = [];
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 10; depth++) {
    const { name, code, message, cause } = e as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    out.push({
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof name === 'string' ? { name } : {}),
      message: typeof message === 'string' ? message : '',
    });
    if (cause === e) break;
    e = cause;
  }
  return out;
}

/**
 * A Kafka failure at start caused by the security settings, as a `StartupError` naming the
 * cause and the variables to fix: refused SASL credentials or mechanism, an untrusted or expired
 * broker certificate, a broker certificate for another host, a refused client certificate, TLS
 * against a listener without it. `undefined` for any other error. Secrets are never quoted.
 */
export function kafkaSecurityStartupError(err: unknown, kafka: KafkaSecurity): StartupError | undefined {
  if (err instanceof StartupError) return undefined;
  const found = chain(err);
  const where = `Kafka at ${kafka.brokers.join(',')} (KAFKA_BOOTSTRAP_SERVERS)`;
  const sasl = found.find((f) => f.name === 'KafkaJSSASLAuthenticationError');
  if (sasl !== undefined) {
    const detail = redact(sasl.message, kafka);
    const mechanism = kafka.sasl?.mechanism.toUpperCase() ?? 'none';
    if (/mechanism is not supported/i.test(sasl.message)) {
      return new StartupError(
        `${where} does not accept KAFKA_SASL_MECHANISM=${mechanism} (${detail}): set KAFKA_SASL_MECHANISM to a mechanism the broker enables (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512).`,
        { cause: err },
      );
    }
    return new StartupError(
      `${where} refused the SASL credentials of user ${JSON.stringify(kafka.sasl?.username ?? '')} (${mechanism}; ${detail}): ` +
        'check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (set; value not shown), and that KAFKA_SASL_MECHANISM is one the broker has credentials for this user with.',
      { cause: err },
    );
  }
  const tls = kafka.ssl === false ? undefined : kafka.ssl === true ? {} : kafka.ssl;
  if (tls === undefined) return undefined;
  const caNow = tls.ca === undefined ? 'KAFKA_SSL_CA_LOCATION is unset, so only Node\'s built-in CAs are trusted' : 'the CA in KAFKA_SSL_CA_LOCATION did not sign it';
  const untrusted = found.find((f) => f.code !== undefined && UNTRUSTED.has(f.code));
  if (untrusted !== undefined) {
    return new StartupError(
      `${where}: the broker's TLS certificate is not trusted (${untrusted.code}: ${certMessage(untrusted)}; ${caNow}): ` +
        'set KAFKA_SSL_CA_LOCATION to the PEM file of the CA that signed the brokers\' certificates.',
      { cause: err },
    );
  }
  const expired = found.find((f) => f.code !== undefined && EXPIRED.has(f.code));
  if (expired !== undefined) {
    return new StartupError(
      `${where}: the broker's TLS certificate is not valid now (${expired.code}: ${certMessage(expired)}): renew the broker's certificate, or check this machine's clock.`,
      { cause: err },
    );
  }
  const altname = found.find((f) => f.code === 'ERR_TLS_CERT_ALTNAME_INVALID');
  if (altname !== undefined) {
    return new StartupError(
      `${where}: the broker's TLS certificate is for another host (${certMessage(altname)}): list the brokers in KAFKA_BOOTSTRAP_SERVERS by a name their certificates hold.`,
      { cause: err },
    );
  }
  const refused = found.find((f) => CLIENT_CERT_REFUSED.test(f.code ?? '')) ?? found.find((f) => CLIENT_CERT_REFUSED.test(f.message.replace(/ /g, '_').toUpperCase()));
  if (refused !== undefined) {
    const now = tls.cert === undefined ? 'KAFKA_SSL_CERTIFICATE_LOCATION is unset, so no client certificate was sent' : 'the certificate in KAFKA_SSL_CERTIFICATE_LOCATION was sent';
    return new StartupError(
      `${where} refused the TLS handshake at the client certificate (${refused.code ?? 'TLS alert'}; ${now}): ` +
        'set KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION to a client certificate (and its key) signed by a CA the broker trusts, or use a listener that does not require one.',
      { cause: err },
    );
  }
  const plain = found.find((f) => NOT_TLS.test(f.code ?? '')) ?? found.find((f) => NOT_TLS.test(f.message));
  if (plain !== undefined) {
    return new StartupError(
      `${where} did not complete a TLS handshake (${plain.code ?? 'connection closed'}: ${certMessage(plain)}): ` +
        'that listener may not speak TLS — check that KAFKA_SECURITY_PROTOCOL (SSL, SASL_SSL) matches the listener of KAFKA_BOOTSTRAP_SERVERS.',
      { cause: err },
    );
  }
  return undefined;
}

/** The short reason of a TLS error (kafkajs prefixes "Connection error: "). */
function certMessage(f: Found): string {
  return f.message.replace(/^Connection error:\s*/, '').split('\n')[0]?.trim() ?? '';
}

function redact(text: string, kafka: KafkaSecurity): string {
  const secrets = [kafka.sasl?.password, typeof kafka.ssl === 'object' ? kafka.ssl.passphrase : undefined].filter((s): s is string => s !== undefined && s.length > 0);
  return secrets.reduce((t, s) => t.split(s).join('***'), text);
}

/** A Kafka ApiVersions v0 request (correlation id 1, client id "rxlake-probe"): answered before any SASL exchange. */
const API_VERSIONS_REQUEST = ((): Buffer => {
  const clientId = Buffer.from('rxlake-probe');
  const body = Buffer.alloc(10 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2); // version 0
  body.writeInt32BE(1, 4); // correlation id
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
})();

/** Errors of a broker that cannot be reached at all: the next bootstrap server is tried. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/**
 * Stops at once with the `kafkaSecurityStartupError` of a TLS handshake that cannot succeed — a
 * broker certificate the client does not trust (or expired, or for another host), a client
 * certificate the broker refuses — where the Kafka client would retry it for several seconds
 * first. It opens one TLS connection to the first bootstrap server that answers and sends one
 * ApiVersions request (a broker that refuses the client certificate under TLS 1.3 says so only
 * after the handshake). Anything else — no TLS configured, no broker reachable, an answer, a
 * timeout — resolves: the Kafka client's own checks follow.
 */
export async function probeKafkaTls(kafka: KafkaSecurity, timeoutMs = 5_000): Promise<void> {
  if (kafka.ssl === false) return;
  const options = kafka.ssl === true ? {} : kafka.ssl;
  for (const broker of kafka.brokers) {
    const cut = broker.lastIndexOf(':');
    const host = broker.slice(0, cut);
    const port = Number(broker.slice(cut + 1));
    const outcome = await new Promise<'answered' | 'no-answer' | Error>((resolve) => {
      let settled = false;
      const socket = connect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...options });
      const done = (result: 'answered' | 'no-answer' | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      const timer = setTimeout(() => done('no-answer'), timeoutMs);
      socket.once('secureConnect', () => socket.write(API_VERSIONS_REQUEST));
      socket.once('data', () => done('answered'));
      socket.once('error', (err: Error) => done(err));
      socket.once('close', () => done('no-answer'));
    });
    if (!(outcome instanceof Error)) return;
    if (UNREACHABLE.has((outcome as NodeJS.ErrnoException).code ?? '')) continue;
    const startup = kafkaSecurityStartupError(outcome, kafka);
    // TLS spoken to a listener without it may also be a broker going down: the client retries that.
    if (startup !== undefined && !NOT_TLS.test(`${(outcome as NodeJS.ErrnoException).code ?? ''} ${outcome.message}`)) throw startup;
    return;
  }
}
