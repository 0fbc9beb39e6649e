/**
 * A Delta table root in memory: the `Storage` of tests and examples, with the same contract as
 * local disk and S3 (an atomic `putIfAbsent`, whole-file writes, sorted listings), plus a hook
 * to delay or fail any operation.
 */
import type { Storage } from './storage.ts';
import { storageError } from './retry.ts';

/** One operation on a memory store, as `MemoryStorageOptions.before` sees it. */
export interface MemoryStorageOperation {
  readonly op: 'read' | 'write' | 'putIfAbsent' | 'list' | 'delete';
  /** The file's path (for `list`, the folder's) from the root of the store `memoryStorage` made. */
  readonly path: string;
}

export interface MemoryStorageOptions {
  /** Name in the store's `uri` (`memory://name`); default a number unique in the process. */
  readonly name?: string;
  /**
   * Runs before each operation takes effect. Return a promise to delay the operation until it
   * settles (latency); throw, or reject, to fail it (the error reaches the caller as a
   * `StorageError`, retriable when the error says so — `retriable: true`, a code like
   * `ECONNRESET`, an HTTP 5xx — as from disk or S3). Default: none.
   */
  readonly before?: (operation: MemoryStorageOperation) => void | Promise<void>;
}

/** A `Storage` in memory whose files can be looked at. */
export interface MemoryStorage extends Storage {
  /** Every file of the store, by path from its root: shared with its `sub` stores, live. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  sub(path: string): MemoryStorage;
}

let stores = 0;

const clean = (path: string): string => path.split('/').filter(Boolean).join('/');

/**
 * A table root in memory: for tests (of your own pipelines too) and examples, where no disk or
 * S3 server is wanted. `putIfAbsent` is atomic, so several `DeltaTable` handles on one store
 * behave as several writers of one table; data is copied in and out, so callers may reuse
 * their buffers. Nothing survives the process.
 *
 * ## Example
 * ```ts
 * const storage = memoryStorage();
 * const table = await DeltaTable.openOrCreate(storage.sub('bronze_trips'), spec, { encoder: 'inline' });
 * await lastValueFrom(from([rows]).pipe(deltaSink(table)));
 * [...storage.files.keys()]; // ['bronze_trips/_delta_log/00000000000000000000.json', …]
 *
 * // A commit that fails once with a retriable error:
 * let failures = 1;
 * const flaky = memoryStorage({
 *   before: ({ op }) => {
 *     if (op === 'putIfAbsent' && failures-- > 0) throw new StorageError('injected', { retriable: true });
 *   },
 * });
 * ```
 *
 * @param options `name` (of the `uri`), `before` (a hook to delay or fail operations).
 * @return The store, rooted at its top.
 */
export function memoryStorage(options: MemoryStorageOptions = {}): MemoryStorage {
  stores += 1;
  const name = options.name ?? String(stores);
  return memoryStore(new Map(), `memory://${name}`, '', options);
}

function memoryStore(files: Map<string, Uint8Array>, uri: string, prefix: string, options: MemoryStorageOptions): MemoryStorage {
  const keyOf = (path: string): string => {
    const p = clean(path);
    return prefix && p ? `${prefix}/${p}` : prefix || p;
  };
  /** Runs the hook, then `fn`; any failure as a `StorageError` naming the operation. */
  const run = async <T>(op: MemoryStorageOperation['op'], path: string, fn: (key: string) => T): Promise<T> => {
    const key = keyOf(path);
    try {
      await options.before?.({ op, path: key });
      return fn(key);
    } catch (err) {
      throw storageError(`${op === 'putIfAbsent' ? 'create' : op} ${uri}/${key}`, err);
    }
  };
  return {
    uri: prefix ? `${uri}/${prefix}` : uri,
    files,
    read: (path) =>
      run('read', path, (key) => {
        const data = files.get(key);
        return data === undefined ? undefined : data.slice();
      }),
    write: (path, data) =>
      run('write', path, (key) => {
        files.set(key, data.slice());
      }),
    putIfAbsent: (path, data) =>
      run('putIfAbsent', path, (key) => {
        if (files.has(key)) return false;
        files.set(key, data.slice());
        return true;
      }),
    list: (dir, startAfter) =>
      run('list', dir, (key) => {
        const from = key ? `${key}/` : '';
        const names: string[] = [];
        for (const k of files.keys()) {
          if (!k.startsWith(from)) continue;
          const name = k.slice(from.length);
          if (name && !name.includes('/') && (startAfter === undefined || name > startAfter)) names.push(name);
        }
        return names.sort();
      }),
    delete: (path) =>
      run('delete', path, (key) => {
        files.delete(key);
      }),
    sub: (path) => memoryStore(files, uri, keyOf(path), options),
  };
}
