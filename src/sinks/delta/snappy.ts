/**
 * SNAPPY for Parquet pages: the native `snappy` package (prebuilt for Linux, macOS and Windows)
 * when it loads on this platform — 3–6× faster than hyparquet-writer's JavaScript compressor —
 * else that JavaScript one. Both write the standard raw SNAPPY block format.
 */
import { createRequire } from 'node:module';

type Compress = (input: Uint8Array) => Uint8Array;

function loadNative(): Compress | undefined {
  if (process.env.RXLAKE_SNAPPY === 'js') return undefined;
  try {
    const { compressSync } = createRequire(import.meta.url)('snappy') as { compressSync: (input: Uint8Array) => Buffer };
    const probe = compressSync(new Uint8Array([1, 2, 3]));
    if (!(probe instanceof Uint8Array)) return undefined;
    return (input) => compressSync(input);
  } catch {
    return undefined;
  }
}

/**
 * The native compressor, or `undefined` when the package is missing for this platform (or
 * `RXLAKE_SNAPPY=js` is set): Parquet files are then compressed in JavaScript.
 */
export const nativeSnappy: Compress | undefined = loadNative();

/** The `compressors` map given to hyparquet-writer (empty: its built-in JavaScript SNAPPY). */
export const defaultCompressors: { SNAPPY?: Compress } = nativeSnappy ? { SNAPPY: nativeSnappy } : {};
