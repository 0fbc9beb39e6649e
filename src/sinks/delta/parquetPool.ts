/**
 * Parquet encoding off the main thread: a small pool of worker threads that turn packed column
 * payloads (see `columnar.ts`, handed over by transfer, not copied per row) into Parquet bytes
 * and Delta stats, so the thread that consumes and validates records keeps running while a
 * batch is encoded.
 *
 * Failure rules: a worker that cannot start (no worker support, a missing file, no way to load
 * TypeScript) makes the pool encode on the calling thread from then on, with one warning; a
 * worker that dies while encoding rejects that file with a retriable `ParquetWorkerError` and is
 * replaced; after `maxCrashes` such deaths in a row the pool encodes on the calling thread too.
 * A file never waits forever: `jobTimeoutMs` bounds one encoding.
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ResourceLimits, WorkerOptions } from 'node:worker_threads';
import type { SchemaElement } from 'hyparquet';
import type { PackedFile } from './columnar.ts';
import { encodePacked, transferList } from './columnar.ts';
import type { EncodedFile } from './parquet.ts';
import { defaultLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import { InvalidValueError } from './parquet.ts';
import { DeltaError } from './retry.ts';
import type { EncodeReply, EncodeRequest } from './parquetWorker.ts';

/** A worker died (or timed out) while encoding a file: retriable, the next attempt gets a new worker. */
export class ParquetWorkerError extends DeltaError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, cause, code: 'PARQUET_WORKER' });
    this.name = 'ParquetWorkerError';
  }
}

export interface ParquetWorkerPoolOptions {
  /** Worker threads (default: cores − 1, at least 1, at most 4). */
  size?: number;
  /** The worker script (default `parquetWorker.ts`/`.js` next to this module); for bundlers that move it. */
  workerUrl?: URL;
  /**
   * V8 limits of each worker (e.g. `maxOldGenerationSizeMb`); a worker over them dies. Default
   * `{ maxYoungGenerationSizeMb: 8 }`: a small young generation costs the worker a little more
   * scavenging and saves ~50 MB of resident memory (measured with the bronze benchmark, same
   * throughput); it cannot make a worker run out of memory.
   */
  resourceLimits?: ResourceLimits;
  /** How long a worker may take to start before the pool encodes inline instead (default 30 000 ms). */
  startTimeoutMs?: number;
  /** Longest one file may take to encode; then the worker is stopped and the file rejected (default 300 000 ms). */
  jobTimeoutMs?: number;
  /** Worker deaths in a row after which the pool stops using workers (default 3). */
  maxCrashes?: number;
  /** An idle worker exits after this long (default 30 000 ms); a new one starts on demand. */
  idleTimeoutMs?: number;
  /** Where the switch to inline encoding is reported: any `Logger` (only `warn` is used); default `defaultLogger()`. */
  logger?: Pick<Logger, 'warn'>;
}

export interface EncodeOptions {
  rowGroupSize?: number;
  statsStringLength?: number;
}

interface Job {
  readonly request: Omit<EncodeRequest, 'id'>;
  readonly resolve: (file: EncodedFile) => void;
  readonly reject: (err: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  ready: boolean;
  /** Terminated on purpose (idle, close, timeout): its exit is not a crash. */
  retired: boolean;
  job: { id: number; job: Job; timer: NodeJS.Timeout | undefined } | undefined;
  error: unknown;
  timer: NodeJS.Timeout | undefined;
}

export type ParquetPoolMode = 'worker' | 'inline';

let nextId = 1;
const SPARE_BUFFERS = 1;

/** A pool of Parquet-encoding worker threads (started lazily, on the first file). */
export class ParquetWorkerPool {
  readonly #size: number;
  readonly #opts: ParquetWorkerPoolOptions;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #queue: Job[] = [];
  readonly #slots = new Set<Slot>();
  #mode: ParquetPoolMode = 'worker';
  /** Payload buffers back from the workers, reused for the next files' string columns. */
  readonly #spare: ArrayBuffer[] = [];
  #crashes = 0;
  #started = 0;

  constructor(options: ParquetWorkerPoolOptions = {}) {
    this.#opts = options;
    this.#size = Math.max(1, Math.floor(options.size ?? Math.min(4, availableParallelism() - 1)));
    this.#logger = options.logger ?? defaultLogger();
  }

  /** `'worker'` while workers are used; `'inline'` once the pool gave up on them. */
  get mode(): ParquetPoolMode {
    return this.#mode;
  }

  /** Workers started so far (replacements included). */
  get workersStarted(): number {
    return this.#started;
  }

  /**
   * Encodes one file. The payload's buffers are transferred to the worker: `file` must not be
   * used afterwards. Rejects with the encoder's error, or a retriable `ParquetWorkerError` when
   * the worker died or took longer than `jobTimeoutMs`.
   */
  encode(file: PackedFile, schema: SchemaElement[], opts: EncodeOptions = {}): Promise<EncodedFile> {
    const request: Omit<EncodeRequest, 'id'> = {
      file,
      schema,
      ...(opts.rowGroupSize === undefined ? {} : { rowGroupSize: opts.rowGroupSize }),
      ...(opts.statsStringLength === undefined ? {} : { statsStringLength: opts.statsStringLength }),
    };
    return new Promise<EncodedFile>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#pump();
    });
  }

  /**
   * A byte buffer of at least `size` bytes for `packColumns`: a recycled payload buffer when one
   * fits, else a new one with some room to spare (so it fits the next batch too).
   */
  readonly allocate = (size: number): Uint8Array => {
    let best = -1;
    for (let i = 0; i < this.#spare.length; i++) {
      const len = (this.#spare[i] as ArrayBuffer).byteLength;
      if (len >= size && len <= size * 2 + 65_536 && (best < 0 || len < (this.#spare[best] as ArrayBuffer).byteLength)) best = i;
    }
    if (best >= 0) return new Uint8Array(this.#spare.splice(best, 1)[0] as ArrayBuffer);
    return new Uint8Array(Math.ceil(size * 1.25) + 1024);
  };

  #recycle(buffers: readonly ArrayBuffer[]): void {
    for (const b of buffers) {
      if (b.byteLength < 1 << 20 || b.byteLength === 0) continue;
      this.#spare.push(b);
    }
    // Keep the largest one: the next file packs into it instead of a fresh allocation.
    if (this.#spare.length > SPARE_BUFFERS) {
      this.#spare.sort((a, b) => b.byteLength - a.byteLength);
      this.#spare.length = SPARE_BUFFERS;
    }
  }

  /** Stops every worker; files being encoded are rejected. Later `encode` calls start new ones. */
  async close(): Promise<void> {
    const slots = [...this.#slots];
    for (const slot of slots) slot.retired = true;
    await Promise.all(slots.map((slot) => this.#stop(slot, new ParquetWorkerError('parquet worker pool closed'))));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      if (this.#mode === 'inline') {
        this.#runInline(this.#queue.shift() as Job);
        continue;
      }
      let free: Slot | undefined;
      for (const slot of this.#slots) {
        if (slot.ready && !slot.job && !slot.retired) {
          free = slot;
          break;
        }
      }
      if (!free) {
        const starting = [...this.#slots].some((s) => !s.ready && !s.retired);
        if (!starting && this.#live() < this.#size) this.#spawn();
        return;
      }
      this.#dispatch(free, this.#queue.shift() as Job);
    }
  }

  #live(): number {
    let n = 0;
    for (const s of this.#slots) if (!s.retired) n += 1;
    return n;
  }

  #runInline(job: Job): void {
    // Still asynchronous for the caller, like the worker path.
    setImmediate(() => {
      try {
        const { file, schema, rowGroupSize, statsStringLength } = job.request;
        job.resolve(
          encodePacked(file, schema, {
            ...(rowGroupSize === undefined ? {} : { rowGroupSize }),
            ...(statsStringLength === undefined ? {} : { statsStringLength }),
          }),
        );
      } catch (err) {
        job.reject(err);
      }
    });
  }

  #goInline(reason: string, err?: unknown): void {
    if (this.#mode === 'inline') return;
    this.#mode = 'inline';
    this.#logger.warn(`${reason}: encoding Parquet on the calling thread from now on`, err === undefined ? {} : { error: err });
    for (const slot of [...this.#slots]) {
      if (!slot.job) {
        slot.retired = true;
        void this.#stop(slot, undefined);
      }
    }
  }

  #spawn(): void {
    let spec: { filename: string | URL; options: WorkerOptions } | undefined;
    try {
      spec = workerSpec(this.#opts.workerUrl);
    } catch (err) {
      this.#goInline('cannot locate the Parquet worker', err);
      return;
    }
    if (!spec) {
      this.#goInline('this runtime cannot load the TypeScript Parquet worker (no type stripping, no tsx)');
      return;
    }
    let worker: Worker;
    try {
      worker = new Worker(spec.filename, {
        ...spec.options,
        resourceLimits: this.#opts.resourceLimits ?? DEFAULT_RESOURCE_LIMITS,
      });
    } catch (err) {
      this.#goInline('cannot start a Parquet worker', err);
      return;
    }
    this.#started += 1;
    const slot: Slot = { worker, ready: false, retired: false, job: undefined, error: undefined, timer: undefined };
    this.#slots.add(slot);
    slot.timer = setTimeout(() => {
      slot.error = new Error(`the worker did not start within ${this.#opts.startTimeoutMs ?? 30_000} ms`);
      void worker.terminate();
    }, this.#opts.startTimeoutMs ?? 30_000);
    slot.timer.unref();
    worker.on('message', (msg: EncodeReply) => this.#onMessage(slot, msg));
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', (code) => this.#onExit(slot, code));
  }

  #onMessage(slot: Slot, msg: EncodeReply): void {
    if (msg.kind === 'ready') {
      clearTimeout(slot.timer);
      slot.ready = true;
      this.#idle(slot);
      this.#pump();
      return;
    }
    const current = slot.job;
    if (!current || current.id !== msg.id) return;
    clearTimeout(current.timer);
    slot.job = undefined;
    this.#recycle(msg.spare);
    if (msg.kind === 'done') {
      this.#crashes = 0;
      current.job.resolve({ bytes: msg.bytes, stats: msg.stats, numRecords: msg.numRecords });
    } else {
      current.job.reject(rebuildError(msg.error));
    }
    this.#idle(slot);
    this.#pump();
  }

  #onExit(slot: Slot, code: number): void {
    clearTimeout(slot.timer);
    this.#slots.delete(slot);
    const current = slot.job;
    slot.job = undefined;
    if (current) clearTimeout(current.timer);
    if (!slot.ready && !slot.retired) {
      // Never started: workers do not work here (or the script is missing).
      this.#goInline(`the Parquet worker could not start (exit code ${code})`, slot.error);
      if (current) this.#runInline(current.job);
      this.#pump();
      return;
    }
    if (current) {
      const why = slot.error instanceof Error ? `: ${slot.error.message}` : ` (exit code ${code})`;
      current.job.reject(new ParquetWorkerError(`the Parquet worker died while encoding a file${why}`, slot.error));
      if (!slot.retired) {
        this.#crashes += 1;
        if (this.#crashes >= (this.#opts.maxCrashes ?? 3)) this.#goInline(`the Parquet worker died ${this.#crashes} times in a row`, slot.error);
      }
    }
    this.#pump();
  }

  #dispatch(slot: Slot, job: Job): void {
    clearTimeout(slot.timer);
    const id = nextId++;
    const timeoutMs = this.#opts.jobTimeoutMs ?? 300_000;
    const timer = setTimeout(() => {
      slot.error = new Error(`encoding took longer than ${timeoutMs} ms`);
      slot.retired = true; // a timeout is not a crash of the worker code
      void this.#stop(slot, undefined);
    }, timeoutMs);
    timer.unref();
    slot.job = { id, job, timer };
    slot.worker.ref(); // a file in progress keeps the process alive
    try {
      slot.worker.postMessage({ id, ...job.request } satisfies EncodeRequest, transferList(job.request.file));
    } catch (err) {
      clearTimeout(timer);
      slot.job = undefined;
      job.reject(err);
      this.#idle(slot);
    }
  }

  /** An idle worker does not keep the process alive, and exits after `idleTimeoutMs`. */
  #idle(slot: Slot): void {
    slot.worker.unref();
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      if (slot.job) return;
      slot.retired = true;
      void this.#stop(slot, undefined);
    }, this.#opts.idleTimeoutMs ?? 30_000);
    slot.timer.unref();
  }

  async #stop(slot: Slot, reason: Error | undefined): Promise<void> {
    const current = slot.job;
    if (current && reason) {
      slot.job = undefined;
      clearTimeout(current.timer);
      current.job.reject(reason);
    }
    await slot.worker.terminate();
  }
}

function rebuildError(e: Extract<EncodeReply, { kind: 'failed' }>['error']): Error {
  const err =
    e.name === 'InvalidValueError'
      ? new InvalidValueError(e.message)
      : new DeltaError(`Parquet encoding failed: ${e.message}`, { retriable: e.retriable, ...(e.code === undefined ? {} : { code: e.code }) });
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

/**
 * How to start the worker: the compiled `.js` or, running from `.ts` sources, the `.ts` file
 * itself on a Node that strips types; on an older Node the worker loads tsx's API first (tsx
 * hooks registered on the main thread do not reach worker threads there). `undefined`: cannot.
 */
function workerSpec(url: URL | undefined): { filename: string | URL; options: WorkerOptions } | undefined {
  const own = url ?? new URL(import.meta.url.endsWith('.ts') ? './parquetWorker.ts' : './parquetWorker.js', import.meta.url);
  if (!own.pathname.endsWith('.ts') || (process.features as { typescript?: unknown }).typescript) return { filename: own, options: {} };
  const tsx = tsxApi();
  if (!tsx) return undefined;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(own.href)}); });`;
  return { filename: code, options: { eval: true } };
}

/** The file URL of tsx's ESM API, when tsx is installed. */
function tsxApi(): string | undefined {
  try {
    const resolved = import.meta.resolve('tsx/esm/api');
    if (resolved.startsWith('file:')) return resolved;
  } catch {
    // not resolvable this way (some test runners): try the package folder
  }
  try {
    const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
    const file = join(dirname(pkg), 'dist', 'esm', 'api', 'index.mjs');
    return existsSync(file) ? pathToFileURL(file).href : undefined;
  } catch {
    return undefined;
  }
}

const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 8 };

let shared: ParquetWorkerPool | undefined;

/** The process-wide pool tables use by default (created on first use). */
export function sharedParquetPool(): ParquetWorkerPool {
  shared ??= new ParquetWorkerPool();
  return shared;
}
