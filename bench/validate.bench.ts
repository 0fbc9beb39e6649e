/**
 * Validation cost per record: generated gps_pings padded to 400 bytes as `generate
 * --payload-bytes 400` does (most are longer already: ~414 bytes on average), checked (a) the
 * slow way — strict UTF-8 decode, `JSON.parse`, `codec.is` — and (b) by the byte-level guard
 * (`bronzeBytesGuards.gps_pings`). Prints ns/record for each, best of several passes.
 *
 * Run: npx tsx bench/validate.bench.ts [records] [payloadBytes]
 *  or: .stack/node-24.9.0/bin/node bench/validate.bench.ts
 */
import { performance } from 'node:perf_hooks';
import { bronzeBytesGuards, bronzeCodecs } from '../src/pipelines/rideshare/codecs.ts';
import { createEventGenerator, padJson } from '../src/pipelines/rideshare/events.ts';

const N = Number(process.argv[2] ?? 200_000);
const PAYLOAD_BYTES = Number(process.argv[3] ?? 400);
const PASSES = 5;

const gen = createEventGenerator({ seed: 1 });
const records: Uint8Array[] = [];
let totalBytes = 0;
for (let i = 0; i < N; i++) {
  const b = Buffer.from(padJson(JSON.stringify(gen.next('gps_pings').value), PAYLOAD_BYTES));
  records.push(b);
  totalBytes += b.byteLength;
}

const codec = bronzeCodecs.gps_pings;
const guard = bronzeBytesGuards.gps_pings;
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function slow(): number {
  let ok = 0;
  for (const b of records) {
    const parsed: unknown = JSON.parse(strict.decode(b));
    if (codec.is(parsed)) ok++;
  }
  return ok;
}

function fast(): number {
  let ok = 0;
  for (const b of records) if (guard(b)) ok++;
  return ok;
}

function measure(name: string, run: () => number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let p = 0; p < PASSES; p++) {
    const t0 = performance.now();
    const ok = run();
    const ms = performance.now() - t0;
    if (ok !== N) throw new Error(`${name}: accepted ${ok} of ${N}`);
    best = Math.min(best, ms);
  }
  const ns = (best * 1e6) / N;
  console.log(`${name.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns/record  (${(N / best / 1000).toFixed(2)} M records/s, best of ${PASSES})`);
  return ns;
}

console.log(`node ${process.version}: ${N} gps_pings, ${(totalBytes / N).toFixed(0)} bytes on average`);
const a = measure('(a) TextDecoder + JSON.parse + codec.is', slow);
const b = measure('(b) bytes guard', fast);
console.log(`speed-up ${(a / b).toFixed(1)}x`);
