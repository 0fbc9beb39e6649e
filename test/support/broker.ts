/**
 * A Kafka broker of a test's own: a fresh single-node KRaft broker (broker + controller) on free
 * loopback ports with its own temporary log dir, run from the jars `scripts/stack.sh` downloaded
 * under `.stack/` and the stack's own `kafka-server.properties`. Tests start it, stop it
 * (SIGTERM or SIGKILL) and start it again on the same log dir and ports, and throw it away.
 *
 * Readiness is the broker's log line `Kafka Server started`. Clean-up happens even when a test
 * fails: `disposeBrokers()` (call it from `afterAll`), a process `exit` hook, and a watchdog
 * shell that kills the broker's JVM when the test process is gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stack } from './stack.ts';

const HOST = '127.0.0.1';

/** The broker classpath the stack script resolved (`.stack/kafka/libs-<version>/`). */
export function kafkaLibs(): string {
  const stackDir = process.env.RXLAKE_STACK_DIR ?? join(stack.root, '.stack');
  const kafkaDir = join(stackDir, 'kafka');
  const wanted = process.env.KAFKA_VERSION;
  const candidates = existsSync(kafkaDir)
    ? readdirSync(kafkaDir)
        .filter((d) => d.startsWith('libs-') && existsSync(join(kafkaDir, d, '.complete')))
        .filter((d) => wanted === undefined || d === `libs-${wanted}`)
        .sort()
    : [];
  const last = candidates.at(-1);
  if (last === undefined) throw new Error(`no Kafka jars under ${kafkaDir}: run \`bash scripts/stack.sh install kafka\` first`);
  return join(kafkaDir, last);
}

/** A TCP port nobody listens on right now (the kernel's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Kills `pid`'s process group when this test process is gone (SIGKILL of the test runner, a
 * crashed worker): a shell that checks both once a second. Not synchronization: clean-up only.
 */
export function reapWithTestProcess(pid: number): void {
  const watchdog = spawn(
    'bash',
    ['-c', 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -KILL -- "-$2" 2>/dev/null; kill -KILL "$2" 2>/dev/null; exit 0', 'reaper', String(process.pid), String(pid)],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
}

export interface BrokerOptions {
  /** Partitions of `__consumer_offsets`; the stack uses 10, Kafka's default is 50 (a longer young-broker window). */
  readonly offsetsTopicPartitions?: number;
  /** Extra `server.properties` lines (`key=value`), appended last. */
  readonly extraProperties?: Readonly<Record<string, string>>;
  /** JVM heap flags; default `-Xms64m -Xmx384m`. */
  readonly heap?: string;
  /** How long `start()` waits for `Kafka Server started`; default 90 s. */
  readonly startTimeoutMs?: number;
}

export interface BrokerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const live = new Set<TestBroker>();

/** A single-node KRaft broker owned by one test. */
export class TestBroker {
  readonly dir: string;
  readonly port: number;
  readonly controllerPort: number;
  readonly options: BrokerOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<BrokerExit> | undefined;
  private out = '';
  /** Times `start()` saw the broker ready (1 after the first start). */
  starts = 0;

  private constructor(dir: string, port: number, controllerPort: number, options: BrokerOptions) {
    this.dir = dir;
    this.port = port;
    this.controllerPort = controllerPort;
    this.options = options;
  }

  /** Allocates ports and a log dir, writes the configuration and formats the storage (not started). */
  static async create(options: BrokerOptions = {}): Promise<TestBroker> {
    const dir = await mkdtemp(join(tmpdir(), 'rxlake-broker-'));
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    const broker = new TestBroker(dir, port, controllerPort, options);
    live.add(broker);
    try {
      await broker.configure();
    } catch (err) {
      await broker.dispose();
      throw err;
    }
    return broker;
  }

  /** `host:port` for clients. */
  get brokers(): string[] {
    return [`${HOST}:${this.port}`];
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The broker's console output since its last start (its log4j console appender). */
  output(): string {
    return this.out;
  }

  private get propertiesFile(): string {
    return join(this.dir, 'server.properties');
  }

  private log4j(): string {
    return `-Dlog4j.configuration=file:${join(stack.root, 'scripts', 'stack', 'kafka-log4j.properties')}`;
  }

  private async configure(): Promise<void> {
    const template = readFileSync(join(stack.root, 'scripts', 'stack', 'kafka-server.properties'), 'utf8');
    let props = template
      .replaceAll('@HOST@', HOST)
      .replaceAll('@PORT@', String(this.port))
      .replaceAll('@CONTROLLER_PORT@', String(this.controllerPort))
      .replaceAll('@DATA@', join(this.dir, 'data'));
    const extra: Record<string, string> = { ...this.options.extraProperties };
    if (this.options.offsetsTopicPartitions !== undefined) extra['offsets.topic.num.partitions'] = String(this.options.offsetsTopicPartitions);
    for (const [k, v] of Object.entries(extra)) {
      const line = new RegExp(`^${k.replaceAll('.', '\\.')}=.*$`, 'm');
      props = line.test(props) ? props.replace(line, `${k}=${v}`) : `${props}\n${k}=${v}\n`;
    }
    await writeFile(this.propertiesFile, props);
    // A Kafka Uuid is 16 random bytes in URL-safe base64 without padding.
    const clusterId = randomBytes(16).toString('base64url');
    const format = spawnSync(
      'java',
      ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', this.log4j(), '-cp', `${kafkaLibs()}/*`, 'kafka.tools.StorageTool', 'format', '-c', this.propertiesFile, '-t', clusterId, '--ignore-formatted'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (format.status !== 0) throw new Error(`kafka storage format failed (${format.status ?? format.signal}): ${format.stdout}${format.stderr}`);
  }

  /** Starts the JVM and resolves once it logged `Kafka Server started`; rejects (with its output) if it exits first. */
  async start(): Promise<void> {
    if (this.running) throw new Error('broker already running');
    this.out = '';
    const heap = (this.options.heap ?? '-Xms64m -Xmx384m').split(/\s+/).filter((s) => s !== '');
    const child = spawn(
      'java',
      [
        ...heap,
        '-Xshare:auto',
        '-XX:TieredStopAtLevel=1',
        '-XX:+UseSerialGC',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        this.log4j(),
        `-Dkafka.logs.dir=${this.dir}`,
        '-cp',
        `${kafkaLibs()}/*`,
        'kafka.Kafka',
        this.propertiesFile,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    if (child.pid !== undefined) reapWithTestProcess(child.pid);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const timeoutMs = this.options.startTimeoutMs ?? 90_000;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const onData = (d: Buffer): void => {
        this.out += d.toString();
        if (this.out.length > 4_000_000) this.out = this.out.slice(-2_000_000);
        if (this.out.includes('Kafka Server started')) finish();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) => finish(new Error(`broker on ${this.port} exited during start-up (${code ?? signal}):\n${this.out.slice(-4000)}`)));
      const timer = setTimeout(() => finish(new Error(`broker on ${this.port} not started after ${timeoutMs} ms:\n${this.out.slice(-4000)}`)), timeoutMs);
    });
    this.starts += 1;
  }

  /** Stops the JVM with `signal` (SIGTERM: a controlled shutdown) and resolves once it has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', timeoutMs = 60_000): Promise<BrokerExit> {
    const child = this.child;
    const exited = this.exited;
    if (child === undefined || exited === undefined) return { code: null, signal: null };
    if (this.running) {
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the JVM (if running) and removes the log dir. */
  async dispose(): Promise<void> {
    if (this.running) await this.stop('SIGKILL');
    live.delete(this);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Disposes every broker this process created and has not disposed yet. */
export async function disposeBrokers(): Promise<void> {
  await Promise.all([...live].map((b) => b.dispose()));
}

process.once('exit', () => {
  for (const b of live) {
    const pid = b.pid;
    if (pid === undefined || !b.running) continue;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
