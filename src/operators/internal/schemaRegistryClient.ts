/**
 * A client of a schema registry's Confluent-compatible REST API (Confluent Schema Registry's, or
 * Apicurio Registry's `/apis/ccompat/v7`): schemas by id and by subject
 * version, with the registry's answers sorted into "no such schema" (`undefined`), an outage
 * (`SchemaRegistryUnavailableError`, retriable: the caller waits and asks again) and anything
 * else (`SchemaRegistryError`: wrong URL, refused credentials — a configuration to fix).
 */
import type { ObservableInput } from 'rxjs';

/** A schema as the registry holds it. */
export interface RegisteredSchema {
  /** `AVRO` (the registry's default when it names none), `JSON` or `PROTOBUF`. */
  readonly schemaType: 'AVRO' | 'JSON' | 'PROTOBUF';
  /** The schema text. */
  readonly schema: string;
  /** Named schemas this one uses, each under a subject and version of the registry. */
  readonly references: readonly SchemaReference[];
}

export interface SchemaReference {
  /** The name the schema uses for it (an Avro full name, a JSON Schema `$ref`). */
  readonly name: string;
  readonly subject: string;
  readonly version: number;
}

/**
 * Where schemas come from. `undefined`: the registry has no such schema. An error whose
 * `retriable` is `true` is an outage (asked again after a wait); any other error is not.
 * Results may be Promises or Observables (virtual time in tests).
 */
export interface SchemaSource {
  schemaById(id: number): ObservableInput<RegisteredSchema | undefined>;
  schemaByVersion(subject: string, version: number): ObservableInput<RegisteredSchema | undefined>;
}

export interface SchemaRegistryClientOptions {
  /**
   * Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081` (Confluent) or
   * `http://127.0.0.1:8080/apis/ccompat/v7` (Apicurio). User info in the URL is used as basic
   * authentication and never shown in messages.
   */
  readonly url: string;
  /** Basic authentication (Confluent Cloud: API key and secret); wins over user info in `url`. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** One request's time limit, ms (default 10 000); beyond it the request counts as an outage. */
  readonly requestTimeoutMs?: number;
}

/** The registry did not answer, or answered that it cannot now (5xx, 429, 408): retriable. */
export class SchemaRegistryUnavailableError extends Error {
  readonly retriable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SchemaRegistryUnavailableError';
  }
}

/** The registry refused the request in a way that asking again will not change. */
export class SchemaRegistryError extends Error {
  readonly retriable = false;
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SchemaRegistryError';
    this.status = status;
  }
}

/** Confluent's error code for "schema not found" (also "subject not found" 40401, "version not found" 40402). */
const NOT_FOUND_CODES = new Set([40401, 40402, 40403]);

/** Schemas over HTTP from a Confluent-compatible registry (Node's `fetch`). */
export class SchemaRegistryClient implements SchemaSource {
  readonly #base: string;
  /** The URL without user info, for messages. */
  readonly #shown: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(options: SchemaRegistryClientOptions) {
    const url = new URL(options.url);
    const userInfo = url.username !== '' ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : undefined;
    url.username = '';
    url.password = '';
    this.#base = url.toString().replace(/\/+$/, '');
    this.#shown = this.#base;
    const auth = options.auth ?? userInfo;
    this.#headers = {
      Accept: 'application/vnd.schemaregistry.v1+json, application/json',
      ...(auth !== undefined ? { Authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {}),
      ...options.headers,
    };
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /** The registry's URL (without user info). */
  get url(): string {
    return this.#shown;
  }

  schemaById(id: number): Promise<RegisteredSchema | undefined> {
    return this.#get(`/schemas/ids/${id}`, `schema id ${id}`);
  }

  schemaByVersion(subject: string, version: number): Promise<RegisteredSchema | undefined> {
    return this.#get(`/subjects/${encodeURIComponent(subject)}/versions/${version}`, `subject ${JSON.stringify(subject)} version ${version}`);
  }

  async #get(path: string, what: string): Promise<RegisteredSchema | undefined> {
    const where = `${this.#shown}${path}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.#base}${path}`, { headers: this.#headers, signal: AbortSignal.timeout(this.#timeoutMs) });
      text = await res.text();
    } catch (err) {
      throw new SchemaRegistryUnavailableError(`schema registry at ${this.#shown} did not answer for ${what}: ${causeText(err)}`, { cause: err });
    }
    const body = parseJson(text);
    if (res.status === 404 && NOT_FOUND_CODES.has(Number((body as { error_code?: unknown } | undefined)?.error_code))) return undefined;
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new SchemaRegistryUnavailableError(`schema registry at ${this.#shown} answered HTTP ${res.status} for ${what}: ${shortText(text)}`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new SchemaRegistryError(`schema registry at ${this.#shown} refused the request for ${what} (HTTP ${res.status}): check its credentials (basic authentication) and their rights`, res.status);
    }
    if (!res.ok) {
      throw new SchemaRegistryError(
        `schema registry at ${where} answered HTTP ${res.status} for ${what} (${shortText(text)}): check that the URL is the registry's Confluent-compatible API ` +
          '(Confluent: http://host:8081; Apicurio: http://host:8080/apis/ccompat/v7)',
        res.status,
      );
    }
    const schema = (body as { schema?: unknown } | undefined)?.schema;
    if (typeof schema !== 'string') {
      throw new SchemaRegistryError(`schema registry at ${where} answered ${what} without a schema (${shortText(text)}): is the URL the registry's Confluent-compatible API?`, res.status);
    }
    const type = (body as { schemaType?: unknown }).schemaType;
    const refs = (body as { references?: unknown }).references;
    return {
      schemaType: type === 'JSON' || type === 'PROTOBUF' ? type : 'AVRO',
      schema,
      references: Array.isArray(refs)
        ? refs
            .filter((r): r is { name: string; subject: string; version: number } => typeof r === 'object' && r !== null && typeof (r as { name?: unknown }).name === 'string')
            .map((r) => ({ name: r.name, subject: r.subject, version: Number(r.version) }))
        : [],
    };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function shortText(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t === '' ? 'empty body' : t;
}

/** fetch's own message ("fetch failed") says little: the cause's code says more. */
function causeText(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const code = typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  return code !== undefined ? `${code} (${message})` : message;
}
