/** What the benchmarks measure and read from the command line, shared between them. */
import { readFileSync } from 'node:fs';

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
