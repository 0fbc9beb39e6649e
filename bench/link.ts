/**
 * A simulated network link to the Kafka broker, for benchmarks: what a socket to the broker's
 * port receives arrives no sooner than a round trip after the request that asked for it, and at
 * the link's bandwidth, in order.
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
  /** When the link has delivered everything sent so far (performance.now() ms). */
  free: number;
  /** Chunks on their way, in order, with their arrival time. */
  readonly chunks: Array<{ at: number; chunk: Buffer }>;
  timer: NodeJS.Timeout | undefined;
}

/** The original methods, called with the socket as `this`. */
type Method = (this: net.Socket, ...args: unknown[]) => unknown;
const proto = net.Socket.prototype as unknown as Record<'emit' | 'write', Method>;
const originalEmit = proto.emit;
const originalWrite = proto.write;
const emit = (socket: net.Socket, args: unknown[]): unknown => originalEmit.apply(socket, args);
const links = new WeakMap<net.Socket, Link>();

function linkOf(socket: net.Socket): Link {
  let link = links.get(socket);
  if (!link) {
    link = { free: 0, chunks: [], timer: undefined };
    links.set(socket, link);
  }
  return link;
}

// A request leaves now: its response can start arriving a round trip later. The bytes cross the
// link from then on whatever the receiving process is doing (the kernel buffers them), so
// arrival times do not depend on when the process gets round to reading.
proto.write = function (this: net.Socket, ...args: unknown[]): unknown {
  if (this.remotePort === port) {
    const link = linkOf(this);
    link.free = Math.max(link.free, performance.now() + 2 * latencyMs);
  }
  return originalWrite.apply(this, args);
};

proto.emit = function (this: net.Socket, ...args: unknown[]): unknown {
  if (args[0] !== 'data' || this.remotePort !== port) return emit(this, args);
  const link = linkOf(this);
  const chunk = args[1] as Buffer;
  link.free += chunk.length / bytesPerMs;
  link.chunks.push({ at: link.free, chunk });
  // One timer per socket, so chunks arrive in order (timers of different delays may not).
  const pump = (): void => {
    link.timer = undefined;
    const t = performance.now();
    for (let next = link.chunks[0]; next !== undefined && next.at <= t + 0.5; next = link.chunks[0]) {
      link.chunks.shift();
      emit(this, ['data', next.chunk]);
    }
    const head = link.chunks[0];
    if (head !== undefined) link.timer = setTimeout(pump, Math.max(0, head.at - t));
  };
  link.timer ??= setTimeout(pump, Math.max(0, (link.chunks[0]?.at ?? 0) - performance.now()));
  return true;
};
