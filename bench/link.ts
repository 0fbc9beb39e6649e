/**
 * A simulated network link to the Kafka broker, for benchmarks: every chunk a socket to the
 * broker's port receives is delivered after a one-way latency and at a bandwidth, in order.
 * Loopback has neither; a broker on another machine has both, and a client that fetches and
 * processes in turn waits for each response to cross the link.
 *
 * Loaded with `--import` before the code under test; `bench/bronze.bench.ts --link-mbps N
 * [--link-latency-ms L]` does that for both of its phases. Environment: LINK_MBPS (megabits per
 * second, default 1000), LINK_LATENCY_MS (one way, default 0.5), LINK_PORT (the broker's port,
 * default 9092). Only data received from that port is delayed; delivery runs on the receiving
 * process's event loop, as socket reads do.
 */
import net from 'node:net';

const latencyMs = Number(process.env.LINK_LATENCY_MS ?? 0.5);
const bytesPerMs = (Number(process.env.LINK_MBPS ?? 1000) * 1e6) / 8 / 1000;
const port = Number(process.env.LINK_PORT ?? 9092);
if (!(latencyMs >= 0) || !(bytesPerMs > 0) || !(port > 0)) {
  throw new Error('bench/link.ts: LINK_LATENCY_MS must be >= 0, LINK_MBPS and LINK_PORT > 0');
}

interface Link {
  /** When the link is free again (performance.now() ms). */
  free: number;
  /** Chunks on their way, in order, with their arrival time. */
  readonly chunks: Array<{ at: number; chunk: Buffer }>;
  timer: NodeJS.Timeout | undefined;
}

/** The original `emit`, called as a plain function with the socket as `this`. */
// eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound with .apply below
const original = net.Socket.prototype.emit as (this: net.Socket, event: string | symbol, ...args: unknown[]) => boolean;
const emit = (socket: net.Socket, event: string | symbol, args: unknown[]): boolean => original.apply(socket, [event, ...args]);
const links = new WeakMap<net.Socket, Link>();

net.Socket.prototype.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]): boolean {
  if (event !== 'data' || this.remotePort !== port) return emit(this, event, args);
  const now = performance.now();
  let link = links.get(this);
  if (!link) {
    link = { free: 0, chunks: [], timer: undefined };
    links.set(this, link);
  }
  const chunk = args[0] as Buffer;
  link.free = Math.max(now + latencyMs, link.free) + chunk.length / bytesPerMs;
  link.chunks.push({ at: link.free, chunk });
  // One timer per socket, so chunks arrive in order (timers of different delays may not).
  const l = link;
  const pump = (): void => {
    l.timer = undefined;
    const t = performance.now();
    for (let next = l.chunks[0]; next !== undefined && next.at <= t + 0.5; next = l.chunks[0]) {
      l.chunks.shift();
      emit(this, 'data', [next.chunk]);
    }
    const head = l.chunks[0];
    if (head !== undefined) l.timer = setTimeout(pump, Math.max(0, head.at - t));
  };
  l.timer ??= setTimeout(pump, Math.max(0, (l.chunks[0]?.at ?? now) - now));
  return true;
} as typeof net.Socket.prototype.emit;
