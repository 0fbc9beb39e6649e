/** What the benchmarks measure and read from the command line, shared between them. */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

/** `--name <positive number>` from the command line, or `dflt`. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

/** Peak resident memory of this process so far (VmHWM), MB. */
export function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m?.[1] ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** CPU used since the call, in seconds: the whole process, and its main thread where measurable. */
export function cpuMeter(): () => { cpuSeconds: number; mainCpuSeconds?: number } {
  const thread = (process as { threadCpuUsage?: (prev?: NodeJS.CpuUsage) => NodeJS.CpuUsage }).threadCpuUsage?.bind(process);
  const p0 = process.cpuUsage();
  const t0 = thread?.();
  const secs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;
  return () => {
    const p = secs(process.cpuUsage(p0));
    const t = thread && t0 ? secs(thread(t0)) : undefined;
    return t === undefined ? { cpuSeconds: p } : { cpuSeconds: p, mainCpuSeconds: t };
  };
}

/**
 * Bytes allocated on V8's heap (the main thread's) since the call: what was used before each
 * garbage collection minus what was left after the one before, plus the growth since the last,
 * from V8's own statistics (`v8.GCProfiler`, Node 20.5+). Undefined where it is missing.
 */
export function allocationMeter(): () => { allocatedMb: number; gcs: number } | undefined {
  const Profiler = (v8 as { GCProfiler?: new () => { start(): void; stop(): { statistics: Array<{ beforeGC: { heapStatistics: { usedHeapSize: number } }; afterGC: { heapStatistics: { usedHeapSize: number } } }> } } }).GCProfiler;
  if (Profiler === undefined) return () => undefined;
  const profiler = new Profiler();
  const used0 = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  return () => {
    const { statistics } = profiler.stop();
    let allocated = 0;
    let after = used0;
    for (const s of statistics) {
      allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
      after = s.afterGC.heapStatistics.usedHeapSize;
    }
    allocated += Math.max(0, v8.getHeapStatistics().used_heap_size - after);
    return { allocatedMb: allocated / 2 ** 20, gcs: statistics.length };
  };
}
