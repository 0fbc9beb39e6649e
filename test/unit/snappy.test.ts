import { describe, expect, it } from 'vitest';
import { snappyUncompress } from 'hyparquet';
import { defaultCompressors, nativeSnappy } from '../../src/sinks/delta/snappy.ts';

describe('native SNAPPY for Parquet pages', () => {
  it('loads on this platform (a broken install would silently fall back to the slow JavaScript one)', () => {
    expect(nativeSnappy).toBeTypeOf('function');
    expect(defaultCompressors.SNAPPY).toBe(nativeSnappy);
  });

  it('writes raw SNAPPY blocks that the reader decompresses byte for byte', () => {
    const compress = nativeSnappy;
    if (!compress) throw new Error('native snappy not loaded');
    const text = new TextEncoder().encode(
      Array.from({ length: 2000 }, (_, i) => `{"event_id":"e-${i}","entity_id":"d-${i % 50}","pad":"${'x'.repeat(i % 97)}"}`).join('\n'),
    );
    const random = new Uint8Array(100_000).map((_, i) => (i * 2654435761) >>> 24);
    for (const input of [new Uint8Array(0), new Uint8Array([7]), text, random]) {
      const packed = compress(input);
      const out = new Uint8Array(input.length);
      snappyUncompress(packed, out);
      expect(Buffer.from(out).equals(Buffer.from(input))).toBe(true);
    }
    expect(compress(text).length).toBeLessThan(text.length / 3);
  });
});
