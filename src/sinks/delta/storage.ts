/**
 * Where a Delta table's files live: a small object-store interface with two implementations,
 * local disk and S3 (any S3-compatible server with conditional writes).
 *
 * Paths are relative to the table root and use `/` (`_delta_log/00000000000000000003.json`,
 * `_ingestion_date=2026-11-22/part-00000-….parquet`). The one operation with teeth is
 * `putIfAbsent`: it creates a file only if nothing exists under that name, atomically, which is
 * what makes concurrent Delta commits safe.
 */
import type * as S3SdkModule from '@aws-sdk/client-s3';
import type { GetObjectCommandOutput, ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MissingDependencyError, causeChain } from '../../core/errors.ts';
import { registerSecret } from '../../core/logger.ts';
import { withRetry } from '../../core/retry.ts';
import { StorageError, storageError } from './retry.ts';

export interface Storage {
  /** Where the table root is: an absolute local path or `s3://bucket/prefix`. */
  readonly uri: string;
  /** The file's bytes, or `undefined` when it does not exist. */
  read(path: string): Promise<Uint8Array | undefined>;
  /** Writes (or replaces) a whole file; readers never see a partial file. */
  write(path: string, data: Uint8Array): Promise<void>;
  /** Creates the file only if the name is free, atomically. `false`: someone else has it. */
  putIfAbsent(path: string, data: Uint8Array): Promise<boolean>;
  /** Names of the files directly in `dir`, sorted, strictly after `startAfter` when given. */
  list(dir: string, startAfter?: string): Promise<string[]>;
  /** Removes a file; missing files are fine. */
  delete(path: string): Promise<void>;
  /** The same store rooted at `path` below this root (a table under a base path). */
  sub(path: string): Storage;
  /**
   * Every file below `dir` (`''`: the whole root), at any depth, with its size and modification
   * time, in no set order; temporary files of writes in progress are left out. What table
   * maintenance (vacuum) needs; optional for stores of your own.
   */
  walk?(dir: string): Promise<StoredFile[]>;
}

/** A file found by `Storage.walk`. */
export interface StoredFile {
  /** Relative to the root, `/`-separated, not URI-encoded. */
  readonly path: string;
  readonly size: number;
  /** Last modification, epoch milliseconds. */
  readonly modified: number;
}

export interface LocalStorageOptions {
  /** fsync files before they become visible (default true): a commit survives a power cut. */
  fsync?: boolean;
}

/** A table root on local disk. */
export function localStorage(root: string, opts: LocalStorageOptions = {}): Storage {
  const base = resolve(root);
  const fsync = opts.fsync ?? true;
  const full = (path: string): string => join(base, ...path.split('/'));

  async function writeTemp(target: string, data: Uint8Array): Promise<string> {
    const tmp = join(dirname(target), `.${randomUUID()}.tmp`);
    const fh = await open(tmp, 'wx').catch(async (err: unknown) => {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
      await mkdir(dirname(target), { recursive: true });
      return open(tmp, 'wx');
    });
    try {
      await fh.writeFile(data);
      if (fsync) await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    return tmp;
  }

  return {
    uri: base,
    async read(path) {
      try {
        const buf = await readFile(full(path));
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return undefined;
        throw storageError(`read ${path}`, err);
      }
    },
    async write(path, data) {
      const target = full(path);
      try {
        const tmp = await writeTemp(target, data);
        await rename(tmp, target);
      } catch (err) {
        throw storageError(`write ${path}`, err);
      }
    },
    async putIfAbsent(path, data) {
      const target = full(path);
      let tmp: string | undefined;
      try {
        tmp = await writeTemp(target, data);
        await link(tmp, target);
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'EEXIST') return false;
        throw storageError(`create ${path}`, err);
      } finally {
        if (tmp !== undefined) await unlink(tmp).catch(() => undefined);
      }
    },
    async list(dir, startAfter) {
      let names: string[];
      try {
        names = await readdir(full(dir));
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return [];
        throw storageError(`list ${dir}`, err);
      }
      names = names.filter((n) => !n.startsWith('.') && (startAfter === undefined || n > startAfter));
      return names.sort();
    },
    async delete(path) {
      try {
        await unlink(full(path));
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw storageError(`delete ${path}`, err);
      }
    },
    sub(path) {
      return localStorage(join(base, ...path.split('/').filter(Boolean)), opts);
    },
    async walk(dir) {
      const out: StoredFile[] = [];
      const visit = async (rel: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(full(rel), { withFileTypes: true });
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOENT') return;
          throw storageError(`list ${rel || '.'}`, err);
        }
        for (const e of entries) {
          const path = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) await visit(path);
          else if (e.isFile() && !(e.name.startsWith('.') && e.name.endsWith('.tmp'))) {
            try {
              const st = await stat(full(path));
              out.push({ path, size: st.size, modified: st.mtimeMs });
            } catch (err) {
              if ((err as { code?: string }).code !== 'ENOENT') throw storageError(`stat ${path}`, err);
            }
          }
        }
      };
      await visit(dir.replace(/^\/+|\/+$/g, ''));
      return out;
    },
  };
}

/**
 * The part of an AWS SDK v3 `S3Client` (`@aws-sdk/client-s3`) that S3 storage uses: an
 * `S3Client` is one. Declared here so that the package's types do not depend on the SDK, an
 * optional peer dependency.
 */
export interface S3ClientLike {
  send(command: object): Promise<unknown>;
}

/** Access keys of S3 (registered as secrets: never logged). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3Options {
  bucket: string;
  /** Key prefix of the table root (no leading or trailing `/` needed). */
  prefix?: string;
  endpoint?: string;
  region?: string;
  credentials?: S3Credentials;
  /** Path-style addressing; default true when an endpoint is given (S3-compatible servers). */
  forcePathStyle?: boolean;
  /** Use this client (an `S3Client` of `@aws-sdk/client-s3`) instead of building one (its settings win). */
  client?: S3ClientLike;
}

/** Retries of a conditional PUT that raced another one (409): short, fully jittered waits. */
const CONDITIONAL_CONFLICT_RETRY = { initialMs: 20, maxMs: 1000, jitter: 1, maxAttempts: 20 } as const;

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * The AWS SDK is loaded on first use of an S3 table, not at import: it costs ~40 MB of resident
 * memory that a job writing to local disk has no use for. It is an optional peer dependency:
 * without it, S3 storage fails with a `MissingDependencyError` that says what to install.
 */
type S3Sdk = typeof S3SdkModule;
let sdkLoading: Promise<S3Sdk> | undefined;
function loadSdk(uri: string): Promise<S3Sdk> {
  sdkLoading ??= import('@aws-sdk/client-s3').catch((err: unknown) => {
    if (isMissingPackage(err, '@aws-sdk/client-s3')) throw new MissingDependencyError('@aws-sdk/client-s3', `S3 storage (${uri})`, { cause: err });
    throw err;
  });
  return sdkLoading;
}

/** Whether `err` is Node's "cannot find package `name`". */
function isMissingPackage(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    (e.message.includes(`'${name}'`) || e.message.includes(`"${name}"`) || e.message.includes(`${name}/`))
  );
}

interface S3Connection {
  readonly sdk: S3Sdk;
  readonly client: S3ClientLike;
}

/** A table root in an S3 bucket. Commits use `PutObject` with `If-None-Match: *`. */
export function s3Storage(opts: S3Options): Storage {
  registerSecret(opts.credentials?.secretAccessKey, opts.credentials?.sessionToken);
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const uri = `s3://${opts.bucket}${prefix ? `/${prefix}` : ''}`;
  let connecting: Promise<S3Connection> | undefined;
  const connect = (): Promise<S3Connection> => {
    connecting ??= loadSdk(uri).then((sdk) => ({
      sdk,
      client:
        opts.client ??
        new sdk.S3Client({
          region: opts.region ?? 'us-east-1',
          ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
          forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
          ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
        }),
    }));
    return connecting;
  };
  return s3WithClient(connect, opts.bucket, prefix, opts);
}

function s3WithClient(connect: () => Promise<S3Connection>, bucket: string, prefix: string, opts: S3Options): Storage {
  const keyOf = (path: string): string => (prefix ? `${prefix}/${path}` : path);
  const storage: Storage = {
    uri: `s3://${bucket}${prefix ? `/${prefix}` : ''}`,
    async read(path) {
      const { sdk, client } = await connect();
      try {
        const out = (await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: keyOf(path) }))) as GetObjectCommandOutput;
        if (!out.Body) return new Uint8Array(0);
        return await out.Body.transformToByteArray();
      } catch (err) {
        const name = (err as { name?: string }).name;
        if (name === 'NoSuchKey' || name === 'NotFound' || statusOf(err) === 404) return undefined;
        throw storageError(`read ${storage.uri}/${path}`, err);
      }
    },
    async write(path, data) {
      const { sdk, client } = await connect();
      try {
        await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: keyOf(path), Body: data }));
      } catch (err) {
        throw storageError(`write ${storage.uri}/${path}`, err);
      }
    },
    async putIfAbsent(path, data) {
      const { sdk, client } = await connect();
      try {
        // 409 ConditionalRequestConflict: a concurrent conditional write raced us; try again.
        return await withRetry(
          async () => {
            try {
              await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: keyOf(path), Body: data, IfNoneMatch: '*' }));
              return true;
            } catch (err) {
              if (statusOf(err) === 412 || (err as { name?: string }).name === 'PreconditionFailed') return false;
              throw err;
            }
          },
          { ...CONDITIONAL_CONFLICT_RETRY, retryIf: (err) => statusOf(err) === 409 },
        );
      } catch (err) {
        throw storageError(`create ${storage.uri}/${path}`, err);
      }
    },
    async list(dir, startAfter) {
      const dirKey = keyOf(dir.replace(/\/+$/, '')) + '/';
      const names: string[] = [];
      let token: string | undefined;
      const { sdk, client } = await connect();
      try {
        do {
          const out = (await client.send(new sdk.ListObjectsV2Command({
            Bucket: bucket,
            Prefix: dirKey,
            Delimiter: '/',
            ...(token === undefined && startAfter !== undefined ? { StartAfter: dirKey + startAfter } : {}),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }))) as ListObjectsV2CommandOutput;
          for (const obj of out.Contents ?? []) {
            if (obj.Key === undefined) continue;
            const name = obj.Key.slice(dirKey.length);
            if (name && !name.includes('/') && (startAfter === undefined || name > startAfter)) names.push(name);
          }
          token = out.IsTruncated ? out.NextContinuationToken : undefined;
        } while (token !== undefined);
      } catch (err) {
        throw storageError(`list ${storage.uri}/${dir}`, err);
      }
      return names.sort();
    },
    async delete(path) {
      const { sdk, client } = await connect();
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
      } catch (err) {
        if (statusOf(err) !== 404) throw storageError(`delete ${storage.uri}/${path}`, err);
      }
    },
    sub(path) {
      const clean = path.split('/').filter(Boolean).join('/');
      return s3WithClient(connect, bucket, prefix ? `${prefix}/${clean}` : clean, opts);
    },
    async walk(dir) {
      const clean = dir.replace(/^\/+|\/+$/g, '');
      const rootKey = prefix ? `${prefix}/` : '';
      const dirKey = clean ? `${rootKey}${clean}/` : rootKey;
      const out: StoredFile[] = [];
      let token: string | undefined;
      const { sdk, client } = await connect();
      try {
        do {
          const page = (await client.send(new sdk.ListObjectsV2Command({
            Bucket: bucket,
            ...(dirKey ? { Prefix: dirKey } : {}),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }))) as { Contents?: Array<{ Key?: string; Size?: number; LastModified?: Date }>; IsTruncated?: boolean; NextContinuationToken?: string };
          for (const obj of page.Contents ?? []) {
            if (obj.Key === undefined || obj.Key.endsWith('/')) continue;
            out.push({ path: obj.Key.slice(rootKey.length), size: obj.Size ?? 0, modified: obj.LastModified?.getTime() ?? 0 });
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token !== undefined);
      } catch (err) {
        throw storageError(`list ${storage.uri}/${clean}`, err);
      }
      return out;
    },
  };
  return storage;
}

export interface S3ConnectionOptions {
  endpoint?: string;
  region?: string;
  credentials?: S3Credentials;
  forcePathStyle?: boolean;
  /** Use this client (an `S3Client` of `@aws-sdk/client-s3`) instead of building one. */
  client?: S3ClientLike;
}

/** `s3://bucket/prefix` → S3 storage; `file:///path` or a plain path → local disk. */
export function storageFromUri(uri: string, s3: S3ConnectionOptions = {}): Storage {
  if (uri.startsWith('s3://') || uri.startsWith('s3a://')) {
    const rest = uri.slice(uri.indexOf('://') + 3);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (!bucket) throw new StorageError(`no bucket in ${uri}`);
    return s3Storage({ bucket, prefix, ...s3 });
  }
  if (uri.startsWith('file://')) return localStorage(fileURLToPath(uri));
  return localStorage(uri);
}

/** Why a storage operation failed, when the fix lies outside the job: see `storageFailureOf`. */
export type StorageFailure = 'access-denied' | 'no-such-bucket' | 'unreachable';

/** S3 error names of refused credentials or permissions (HTTP 403), and of no credentials at all. */
const ACCESS_DENIED_NAMES = new Set([
  'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired',
  'AuthorizationHeaderMalformed', 'InvalidClientTokenId', 'AllAccessDisabled', 'AccountProblem', 'CredentialsProviderError',
]);

/** Node and undici codes of a server that cannot be reached at all. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'ECONNRESET',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
]);

/**
 * Classifies a storage failure (a `StorageError` or what the S3 SDK or Node threw, looked up
 * along the `cause` chain): `'access-denied'` (HTTP 403, or no credentials found),
 * `'no-such-bucket'`, `'unreachable'` (connection refused, unknown host, timeouts); otherwise
 * `undefined`. Jobs turn these into messages that name the setting to fix.
 */
export function storageFailureOf(err: unknown): StorageFailure | undefined {
  for (const e of causeChain(err)) {
    const x = e as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
    const names = [x.name, x.code].filter((v): v is string => typeof v === 'string');
    if (x.$metadata?.httpStatusCode === 403 || names.some((n) => ACCESS_DENIED_NAMES.has(n))) return 'access-denied';
    if (names.includes('NoSuchBucket')) return 'no-such-bucket';
    if (names.some((n) => UNREACHABLE_CODES.has(n))) return 'unreachable';
  }
  return undefined;
}
