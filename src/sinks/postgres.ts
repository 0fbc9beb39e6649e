/**
 * A PostgreSQL table as a sink: a table spec (columns, primary key, conflict policy), created if
 * missing, and a writer that lands one batch per transaction as a multi-row upsert.
 *
 * Two guarantees, depending on the rows:
 * - Rows that are Kafka records (`topic`, `partition`, `offset`) are written exactly once: the
 *   transaction that writes them also records, per (table, appId, topic, partition), the last
 *   offset written in an offsets table, and rows at or below it are skipped. A replay after a
 *   crash or rebalance writes nothing twice, whatever the conflict policy.
 * - Other rows (e.g. window aggregates) rely on the upsert itself: writing the same row again
 *   leaves the table as it was (`onConflict: 'update'` stores the row's latest values,
 *   `'nothing'` keeps the first). No offsets are recorded; a replay rewrites the rows.
 */
import type { Pool, PoolClient } from 'pg';
import type { ObservableInput } from 'rxjs';
import { RxlakeError, isRetriable } from '../core/errors.ts';
import type { RxlakeErrorOptions } from '../core/errors.ts';
import { withRetry } from '../core/retry.ts';
import type { RecordRef } from '../types.ts';

/**
 * One column. Value conventions: `bigint` columns take a bigint (or a safe integer number);
 * `bytea` a `Uint8Array`; `timestamptz`/`timestamp` a bigint of epoch microseconds (UTC), a
 * `Date`, or a number of epoch milliseconds; `date` a `Date` (its UTC day) or a `'YYYY-MM-DD'`
 * string; `json`/`jsonb` any value (stringified as JSON; a string is taken as JSON text);
 * text-like columns take a string, or a `Uint8Array` of UTF-8 (decoded, invalid UTF-8 is an
 * error); numbers, booleans and strings go as they are; `null`/`undefined` is null.
 */
export interface PgColumn<Row> {
  readonly name: string;
  /**
   * SQL type as in `CREATE TABLE` and in a cast: `'text'`, `'bigint'`, `'integer'`, `'double
   * precision'`, `'timestamptz'`, `'bytea'`, `'jsonb'`, … (not array types, not `serial`). SQL
   * text used as is: never from untrusted input.
   */
  readonly type: string;
  /** How to read the value from a row; default `row[name]`. */
  readonly get?: (row: Row) => unknown;
  /** Default true; primary-key columns are always NOT NULL. */
  readonly nullable?: boolean;
}

export interface PgTableSpec<Row> {
  /** Table name (unquoted; quoted in SQL as given). */
  readonly name: string;
  /** Schema; default the connection's `search_path` (usually `public`). Created if missing. */
  readonly schema?: string;
  readonly columns: readonly PgColumn<Row>[];
  /** Primary-key column names: the `ON CONFLICT` target. */
  readonly primaryKey: readonly string[];
  /**
   * What a row whose key the table (or the same batch) already holds does: `'update'` (default)
   * replaces the non-key columns — the last row of a key wins; `'nothing'` keeps what is there —
   * the first row of a key wins.
   */
  readonly onConflict?: 'update' | 'nothing';
}

export interface PgTableOptions {
  /** Offsets table, in the table's schema; default `'rxlake_offsets'`. */
  readonly offsetsTable?: string;
  /** Rows per INSERT statement (all of a batch's statements share one transaction); default 10 000. */
  readonly maxRowsPerStatement?: number;
}

export interface PgWriteOptions {
  /**
   * Exactly-once for rows that are Kafka records: the offsets key (with the record's topic and
   * partition) of a row, a function of its topic and partition (called once per run of rows of
   * one partition). Given, every row must carry `topic`, `partition` and `offset` (a bigint).
   */
  readonly appId?: (ref: RecordRef) => string;
  /** Aborted before the commit: the transaction is rolled back and the write rejects. */
  readonly signal?: AbortSignal;
}

export interface PgWriteResult {
  /** Rows inserted or updated. */
  readonly rows: number;
  /**
   * Rows not written: replayed records (at or below their recorded offset), rows superseded by
   * another row of the same key in the batch, and with `onConflict: 'nothing'` rows whose key
   * the table already held. `rows + skipped` is the batch's length.
   */
  readonly skipped: number;
  /** Of `skipped`, the replayed records. */
  readonly replayed: number;
}

/**
 * What `pgSink` writes through: a `PgTable`, or a table of your own with the same contract (an
 * in-memory one in tests). `write` lands the whole batch or nothing, as `PgTable.write` does,
 * and yields one result: a Promise, or an Observable (which a test scheduler can drive).
 */
export interface PgSinkTarget<Row> {
  /** `schema.name` (or `name`): what acks and messages name. */
  readonly qualifiedName: string;
  /** Writes `rows` in one transaction (see `PgTable.write`). */
  write(rows: readonly Row[], opts?: PgWriteOptions): ObservableInput<PgWriteResult>;
}

/**
 * A PostgreSQL sink failure: names the table and the cause (`cause`; the server's SQLSTATE in
 * `sqlState`); `retriable` tells whether trying again can help. `code`: `PG_SINK_ERROR`, or
 * `SCHEMA_MISMATCH` (an existing table does not match its spec), `INVALID_SPEC`.
 */
export class PgSinkError extends RxlakeError {
  /** The SQLSTATE the server answered with (`57P01`, `23505`, …), when it did. */
  readonly sqlState: string | undefined;

  constructor(message: string, options: RxlakeErrorOptions & { readonly sqlState?: string } = {}) {
    const { sqlState, ...rest } = options;
    super(message, { code: 'PG_SINK_ERROR', ...rest });
    this.name = 'PgSinkError';
    this.sqlState = sqlState;
  }
}

/**
 * Whether a PostgreSQL or connection error is worth retrying: `isRetriable`, which knows the
 * SQLSTATE classes of PostgreSQL (08, 40, 53, 57) and the `pg` client's connection failures.
 *
 * @deprecated Use `isRetriable`.
 * @param err The error, as thrown by `pg` or by `PgTable`.
 * @return True when a new attempt can succeed.
 */
export const isRetriablePg: (err: unknown) => boolean = isRetriable;

/** Wraps an error as a `PgSinkError` naming the table, with `retriable` classified. */
function pgError(table: string, err: unknown): PgSinkError {
  if (err instanceof PgSinkError) return err;
  const e = err as { message?: unknown; code?: unknown; detail?: unknown; errors?: unknown; severity?: unknown } | null;
  const first = Array.isArray(e?.errors) ? (e.errors[0] as { message?: unknown } | undefined) : undefined;
  const message =
    typeof e?.message === 'string' && e.message !== '' ? e.message : typeof first?.message === 'string' ? first.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const detail = typeof e?.detail === 'string' ? ` (${e.detail})` : '';
  return new PgSinkError(`PostgreSQL table ${table}: ${message}${detail}${code ? ` [${code}]` : ''}`, {
    retriable: isRetriable(err),
    cause: err,
    ...(code !== undefined && typeof e?.severity === 'string' ? { sqlState: code } : {}),
  });
}

/** SQLSTATEs of two sessions creating the same object at once (the loser's statement is a no-op when run again). */
const DUPLICATE_OBJECT = new Set(['23505', '42P07', '42P06', '42710']);

/** Quotes an SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

type Kind = 'bytea' | 'timestamp' | 'date' | 'json' | 'text' | 'other';

function kindOf(type: string): Kind {
  const t = type.trim().toLowerCase().replace(/\s+/g, ' ');
  if (t === 'bytea') return 'bytea';
  if (t.startsWith('timestamp')) return 'timestamp';
  if (t === 'date') return 'date';
  if (t === 'json' || t === 'jsonb') return 'json';
  if (/^(text|varchar|character|char|citext|name|bpchar)\b/.test(t)) return 'text';
  return 'other';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Epoch microseconds as an ISO-8601 UTC timestamp with all six fractional digits. */
function microsToIso(us: bigint): string {
  const ms = us >= 0n ? us / 1000n : -((-us + 999n) / 1000n);
  const sub = Number(us - ms * 1000n);
  const iso = new Date(Number(ms)).toISOString(); // RangeError beyond ±8.64e15 ms
  return `${iso.slice(0, -1)}${String(sub).padStart(3, '0')}Z`;
}

/** A row value as the parameter array element its column's type expects. */
function toParam(value: unknown, kind: Kind): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'bytea':
      if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      throw new TypeError(`expected a Uint8Array, got ${typeof value}`);
    case 'timestamp':
      if (typeof value === 'bigint') return microsToIso(value);
      if (value instanceof Date) return value.toISOString();
      if (typeof value === 'number') return new Date(value).toISOString();
      if (typeof value === 'string') return value;
      throw new TypeError(`expected epoch microseconds (bigint), a Date or epoch milliseconds, got ${typeof value}`);
    case 'date':
      if (value instanceof Date) return value.toISOString().slice(0, 10);
      if (typeof value === 'string') return value;
      throw new TypeError(`expected a Date or a 'YYYY-MM-DD' string, got ${typeof value}`);
    case 'json':
      if (typeof value === 'string') return value;
      if (typeof value === 'bigint') return value.toString();
      return JSON.stringify(value);
    case 'text':
      if (value instanceof Uint8Array) return utf8.decode(value);
      if (typeof value === 'string') return value;
      break;
    case 'other':
      break;
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  throw new TypeError(`unsupported value of type ${Object.prototype.toString.call(value)}`);
}

/** A converted key value as a map key: `null`, or a string distinct per value. */
function keyPart(v: unknown): string | null {
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function isRecordRef(row: unknown): row is RecordRef {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Partial<RecordRef>;
  return typeof r.topic === 'string' && typeof r.partition === 'number' && typeof r.offset === 'bigint';
}

interface Prepared {
  /** Column-major parameter arrays, one per column. */
  readonly columns: unknown[][];
  readonly count: number;
}

/**
 * A PostgreSQL table written by `pgSink`: created with its primary key (and the offsets table)
 * if missing; each `write` is one transaction.
 */
export class PgTable<Row> implements PgSinkTarget<Row> {
  readonly pool: Pool;
  readonly spec: PgTableSpec<Row>;
  /** The table's name as the spec gives it (what acks name). */
  readonly name: string;
  /** `schema.name` (or `name`): the table's key in the offsets table. */
  readonly qualifiedName: string;
  /** The quoted, schema-qualified name to use in SQL. */
  readonly sqlName: string;
  readonly #offsets: string;
  readonly #maxRows: number;
  readonly #kinds: readonly Kind[];
  readonly #getters: readonly ((row: Row) => unknown)[];
  readonly #keyIndexes: readonly number[];
  readonly #insertSql: string;
  readonly #keepFirst: boolean;

  private constructor(pool: Pool, spec: PgTableSpec<Row>, opts: PgTableOptions) {
    this.pool = pool;
    this.spec = spec;
    this.name = spec.name;
    this.qualifiedName = spec.schema === undefined ? spec.name : `${spec.schema}.${spec.name}`;
    const prefix = spec.schema === undefined ? '' : `${ident(spec.schema)}.`;
    this.sqlName = prefix + ident(spec.name);
    this.#offsets = prefix + ident(opts.offsetsTable ?? 'rxlake_offsets');
    this.#maxRows = opts.maxRowsPerStatement ?? 10_000;
    this.#kinds = spec.columns.map((c) => kindOf(c.type));
    this.#getters = spec.columns.map((c) => c.get ?? ((row: Row): unknown => (row as Record<string, unknown>)[c.name]));
    this.#keyIndexes = spec.primaryKey.map((k) => spec.columns.findIndex((c) => c.name === k));
    this.#keepFirst = spec.onConflict === 'nothing';
    const names = spec.columns.map((c) => ident(c.name)).join(', ');
    const arrays = spec.columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ');
    const keys = spec.primaryKey.map(ident).join(', ');
    const updates = spec.columns.filter((c) => !spec.primaryKey.includes(c.name)).map((c) => `${ident(c.name)} = EXCLUDED.${ident(c.name)}`);
    const action = spec.onConflict === 'nothing' || updates.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${updates.join(', ')}`;
    this.#insertSql = `INSERT INTO ${this.sqlName} (${names}) SELECT * FROM unnest(${arrays}) AS u(${names}) ON CONFLICT (${keys}) ${action}`;
  }

  /**
   * Opens the table described by `spec`, creating it (with its primary key), its schema and the
   * offsets table when missing. Safe when several processes do it at once. Rejects with a
   * `PgSinkError` when the spec is invalid or an existing table lacks a column or has another
   * type for one.
   *
   * Give the pool an `'error'` listener: `pg` emits there when an idle connection is lost (e.g.
   * a server restart), and an unheard `'error'` ends the process.
   *
   * ## Example
   * ```ts
   * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
   * pool.on('error', (err) => log.warn('idle PostgreSQL connection lost', err));
   * const table = await PgTable.openOrCreate(pool, {
   *   name: 'payments',
   *   columns: [
   *     { name: 'topic', type: 'text' },
   *     { name: 'partition', type: 'integer' },
   *     { name: 'offset', type: 'bigint' },
   *     { name: 'value', type: 'bytea' },
   *   ],
   *   primaryKey: ['topic', 'partition', 'offset'],
   * });
   * ```
   *
   * @param pool A `pg` pool: each write takes one of its connections for its transaction.
   * @param spec Name, schema, columns, primary key and conflict policy.
   * @param opts Offsets table name, rows per INSERT statement.
   * @return The opened table.
   */
  static async openOrCreate<Row>(pool: Pool, spec: PgTableSpec<Row>, opts: PgTableOptions = {}): Promise<PgTable<Row>> {
    validate(spec, opts);
    const table = new PgTable(pool, spec, opts);
    const columns = spec.columns.map((c) => `${ident(c.name)} ${c.type}${c.nullable === false || spec.primaryKey.includes(c.name) ? ' NOT NULL' : ''}`);
    const ddl = [
      ...(spec.schema === undefined ? [] : [`CREATE SCHEMA IF NOT EXISTS ${ident(spec.schema)}`]),
      `CREATE TABLE IF NOT EXISTS ${table.sqlName} (${columns.join(', ')}, PRIMARY KEY (${spec.primaryKey.map(ident).join(', ')}))`,
      `CREATE TABLE IF NOT EXISTS ${table.#offsets} (table_name text NOT NULL, app_id text NOT NULL, topic text NOT NULL, ` +
        `"partition" integer NOT NULL, last_offset bigint, updated_at timestamptz NOT NULL DEFAULT now(), ` +
        `PRIMARY KEY (table_name, app_id, topic, "partition"))`,
    ];
    try {
      for (const sql of ddl) {
        // Two sessions creating the same object at once: one wins, the other sees a duplicate
        // (of the relation, its row type or a catalog key) and tries again, now a no-op.
        await withRetry(() => pool.query(sql), {
          maxAttempts: 5,
          initialMs: 10,
          maxMs: 100,
          retryIf: (err) => DUPLICATE_OBJECT.has((err as { code?: unknown }).code as string),
        });
      }
      await table.#check();
    } catch (err) {
      throw pgError(table.qualifiedName, err);
    }
    return table;
  }

  /** Rejects when the existing table lacks a spec column or has another type for it. */
  async #check(): Promise<void> {
    const { rows } = await this.pool.query<{ name: string; actual: string | null; expected: string | null }>(
      `SELECT s.name, a.atttypid::regtype::text AS actual, to_regtype(s.type)::text AS expected
         FROM unnest($2::text[], $3::text[]) AS s(name, type)
         LEFT JOIN pg_attribute a ON a.attrelid = to_regclass($1) AND a.attname = s.name AND a.attnum > 0 AND NOT a.attisdropped`,
      [this.sqlName, this.spec.columns.map((c) => c.name), this.spec.columns.map((c) => c.type)],
    );
    const problems = rows
      .filter((r) => r.actual !== r.expected)
      .map((r) => (r.actual === null ? `column "${r.name}" is missing` : `column "${r.name}" is ${r.actual}, the spec says ${r.expected ?? '(unknown type)'}`));
    if (problems.length) throw new PgSinkError(`the existing table does not match its spec: ${problems.join('; ')}`, { code: 'SCHEMA_MISMATCH' });
  }

  /**
   * The last offset of `topic`/`partition` written to this table under `appId`, or `undefined`.
   *
   * ## Example
   * ```ts
   * const last = await table.lastOffset('orders-payments-0', 'payments', 0);
   * ```
   *
   * @param appId The offsets key, as `pgSink` builds it (`${pipelineId}-${topic}-${partition}` by default).
   * @param topic Kafka topic.
   * @param partition Kafka partition.
   * @return The last offset written, or `undefined` when none was.
   */
  async lastOffset(appId: string, topic: string, partition: number): Promise<bigint | undefined> {
    try {
      const { rows } = await this.pool.query<{ last_offset: string | null }>(
        `SELECT last_offset::text AS last_offset FROM ${this.#offsets} WHERE table_name = $1 AND app_id = $2 AND topic = $3 AND "partition" = $4`,
        [this.qualifiedName, appId, topic, partition],
      );
      const last = rows[0]?.last_offset;
      return last === null || last === undefined ? undefined : BigInt(last);
    } catch (err) {
      throw pgError(this.qualifiedName, err);
    }
  }

  /**
   * The next offset to read for `topic`/`partition` (the last written + 1), or `undefined`: what
   * `fromKafka`'s `resumeFrom` option expects.
   *
   * ## Example
   * ```ts
   * fromKafka({ ..., resumeFrom: (topic, partition) => table.resumeFrom(`orders-${topic}-${partition}`, topic, partition) });
   * ```
   *
   * @param appId The offsets key, as `pgSink` builds it.
   * @param topic Kafka topic.
   * @param partition Kafka partition.
   * @return The offset to resume from, or `undefined` when nothing was written.
   */
  async resumeFrom(appId: string, topic: string, partition: number): Promise<bigint | undefined> {
    const last = await this.lastOffset(appId, topic, partition);
    return last === undefined ? undefined : last + 1n;
  }

  /**
   * Writes `rows` in one transaction: with `appId`, first locks the batch's offsets rows and
   * skips records at or below them; then keeps one row per primary key (the last, or with
   * `onConflict: 'nothing'` the first); upserts them; records the new last offsets; commits.
   * Any failure rolls everything back and rejects with a `PgSinkError` (`retriable` set).
   *
   * ## Example
   * ```ts
   * const { rows, skipped } = await table.write(batch, { appId: (r) => `orders-${r.topic}-${r.partition}` });
   * ```
   *
   * @param rows The batch.
   * @param opts `appId` for exactly-once Kafka records; `signal` to give up before the commit.
   * @return Rows written and skipped.
   */
  async write(rows: readonly Row[], opts: PgWriteOptions = {}): Promise<PgWriteResult> {
    if (rows.length === 0) return { rows: 0, skipped: 0, replayed: 0 };
    const { appId, signal } = opts;
    let groups: Map<string, { appId: string; topic: string; partition: number; max: bigint }> | undefined;
    let rowGroup: (string | undefined)[] | undefined;
    if (appId) {
      groups = new Map();
      rowGroup = [];
      let lastRef: RecordRef | undefined;
      let lastKey = '';
      for (const row of rows) {
        if (!isRecordRef(row)) {
          throw new PgSinkError(`PostgreSQL table ${this.qualifiedName}: exactly-once needs rows that are Kafka records (topic, partition, offset as bigint)`);
        }
        if (lastRef === undefined || row.partition !== lastRef.partition || row.topic !== lastRef.topic) {
          const id = appId(row);
          lastKey = `${id}\u0000${row.topic}\u0000${row.partition}`;
          lastRef = row;
          const g = groups.get(lastKey);
          if (!g) groups.set(lastKey, { appId: id, topic: row.topic, partition: row.partition, max: row.offset });
        }
        const g = groups.get(lastKey);
        if (g && row.offset > g.max) g.max = row.offset;
        rowGroup.push(lastKey);
      }
    }
    const client = await this.#connect();
    // An error event between queries (a lost connection) must not go unheard.
    const onError = (): void => {};
    client.on('error', onError);
    let broken = false;
    try {
      await client.query('BEGIN');
      let replayed = 0;
      let keep: readonly Row[] = rows;
      let advanced: { appId: string; topic: string; partition: number; max: bigint }[] = [];
      if (groups && rowGroup) {
        const list = [...groups.values()];
        const keys = [list.map((g) => g.appId), list.map((g) => g.topic), list.map((g) => g.partition)];
        await client.query(
          `INSERT INTO ${this.#offsets} (table_name, app_id, topic, "partition") SELECT $1, a, t, p FROM unnest($2::text[], $3::text[], $4::integer[]) AS u(a, t, p)
           ON CONFLICT DO NOTHING`,
          [this.qualifiedName, ...keys],
        );
        const { rows: stored } = await client.query<{ app_id: string; topic: string; partition: number; last_offset: string | null }>(
          `SELECT o.app_id, o.topic, o."partition", o.last_offset::text AS last_offset FROM ${this.#offsets} o
             JOIN unnest($2::text[], $3::text[], $4::integer[]) AS u(a, t, p) ON o.app_id = u.a AND o.topic = u.t AND o."partition" = u.p
            WHERE o.table_name = $1 ORDER BY o.app_id, o.topic, o."partition" FOR UPDATE OF o`,
          [this.qualifiedName, ...keys],
        );
        const last = new Map<string, bigint>();
        for (const s of stored) if (s.last_offset !== null) last.set(`${s.app_id}\u0000${s.topic}\u0000${s.partition}`, BigInt(s.last_offset));
        const kept: Row[] = [];
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i] as Row & RecordRef;
          const done = last.get(rowGroup[i] as string);
          if (done !== undefined && row.offset <= done) replayed++;
          else kept.push(row);
        }
        keep = kept;
        advanced = list.filter((g) => {
          const done = last.get(`${g.appId}\u0000${g.topic}\u0000${g.partition}`);
          return done === undefined || g.max > done;
        });
      }
      let written = 0;
      const { columns, count } = this.#prepare(keep);
      for (let start = 0; start < count; start += this.#maxRows) {
        const params = count <= this.#maxRows ? columns : columns.map((values) => values.slice(start, start + this.#maxRows));
        const result = await client.query(this.#insertSql, params);
        written += result.rowCount ?? 0;
      }
      if (advanced.length) {
        await client.query(
          `UPDATE ${this.#offsets} o SET last_offset = u.l, updated_at = now()
             FROM unnest($2::text[], $3::text[], $4::integer[], $5::bigint[]) AS u(a, t, p, l)
            WHERE o.table_name = $1 AND o.app_id = u.a AND o.topic = u.t AND o."partition" = u.p`,
          [this.qualifiedName, advanced.map((g) => g.appId), advanced.map((g) => g.topic), advanced.map((g) => g.partition), advanced.map((g) => g.max.toString())],
        );
      }
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('write aborted');
      await client.query('COMMIT');
      return { rows: written, skipped: rows.length - written, replayed };
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw pgError(this.qualifiedName, err);
    } finally {
      client.removeListener('error', onError);
      // A connection that could not roll back is discarded rather than returned to the pool.
      client.release(broken);
    }
  }

  async #connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw pgError(this.qualifiedName, err);
    }
  }

  /** Converts rows to column arrays, keeping one row per primary key (the last, or with `'nothing'` the first). */
  #prepare(rows: readonly Row[]): Prepared {
    const n = this.spec.columns.length;
    const columns: unknown[][] = Array.from({ length: n }, () => []);
    const index = new Map<string, number>();
    const values: unknown[] = new Array<unknown>(n);
    let count = 0;
    for (const row of rows) {
      for (let c = 0; c < n; c++) {
        try {
          values[c] = toParam((this.#getters[c] as (row: Row) => unknown)(row), this.#kinds[c] as Kind);
        } catch (err) {
          const column = this.spec.columns[c] as PgColumn<Row>;
          const detail = err instanceof Error ? err.message : String(err);
          throw new PgSinkError(`PostgreSQL table ${this.qualifiedName}: column "${column.name}" (${column.type}): ${detail}`, { cause: err });
        }
      }
      const key = JSON.stringify(this.#keyIndexes.map((k) => keyPart(values[k])));
      let at = index.get(key);
      if (at === undefined) {
        at = count++;
        index.set(key, at);
      } else if (this.#keepFirst) {
        continue;
      }
      for (let c = 0; c < n; c++) (columns[c] as unknown[])[at] = values[c];
    }
    return { columns, count };
  }
}

function validate<Row>(spec: PgTableSpec<Row>, opts: PgTableOptions): void {
  const fail = (why: string): never => {
    throw new PgSinkError(`PostgreSQL table ${spec.name}: invalid spec: ${why}`, { code: 'INVALID_SPEC' });
  };
  if (!spec.name) fail('no name');
  if (spec.columns.length === 0) fail('no columns');
  const names = new Set<string>();
  for (const c of spec.columns) {
    if (names.has(c.name)) fail(`column "${c.name}" appears twice`);
    names.add(c.name);
    if (!c.type.trim()) fail(`column "${c.name}" has no type`);
    if (/\[\s*\d*\s*\]\s*$/.test(c.type) || /\barray\s*$/i.test(c.type)) fail(`column "${c.name}": array types are not supported`);
  }
  if (spec.primaryKey.length === 0) fail('no primary key');
  for (const k of spec.primaryKey) {
    if (!names.has(k)) fail(`primary key column "${k}" is not a column`);
    if (spec.columns.find((c) => c.name === k)?.nullable === true) fail(`primary key column "${k}" cannot be nullable`);
  }
  if (new Set(spec.primaryKey).size !== spec.primaryKey.length) fail('a primary key column appears twice');
  const max = opts.maxRowsPerStatement;
  if (max !== undefined && !(Number.isInteger(max) && max > 0)) fail(`maxRowsPerStatement must be a positive integer, got ${max}`);
}
