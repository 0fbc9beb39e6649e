/**
 * The benchmark as users read it: on ONE freshly produced topic, in ONE run, every system reads
 * the same records from the earliest offset to the end, each in its own process, measured from
 * outside the same way (bench/treerss.py: wall time, CPU seconds of every thread of the process
 * and of its children, peak RSS):
 *
 *   kcat -C -e           librdkafka reading the topic, output discarded: the floor (run first and
 *                        last; ratios are to the mean of the two)
 *   kcat -G              the same through a consumer group
 *   raw consume          each Node Kafka client reading through a group, records discarded
 *                        (bench/clients/consume.ts): kafkajs, the library's wire client, @platformatic/kafka,
 *                        @confluentinc/kafka-javascript (KafkaJS-style and librdkafka-style APIs)
 *   wire reader          with --wire: bench/clients/wire.ts, Fetch responses decoded in Node
 *                        without a client (no group, like kcat -C -e), `--mode views` (no object
 *                        per record) and `--mode objects` (one small object per record)
 *   rxlake bronze        `src/pipelines/bronze.ts --until-caught-up` into a local folder
 *   Python baseline      bench/python/bronze_baseline.py (confluent-kafka + delta-rs), if present
 *   Spark                bench/spark/bronze_spark.py, with --spark
 *
 *   npm run bench:machine -- [--records 1000000] [--payload-bytes 400] [--partitions 6]
 *       [--node PATH]... [--clients kafkajs,wire,platformatic,confluent,confluent-rdkafka]
 *       [--rounds 1] [--spark] [--no-python] [--wire] [--no-bronze] [--bronze-clients kafkajs,wire]
 *       [--topic-prefix P --records N (reuse a topic)]
 *
 *   --node PATH   Node for the Node phases (raw consume, bronze); repeat it to run them on
 *                 several Nodes in the same run (e.g. this Node and the one
 *                 `scripts/node-current.sh` installs). Default: the Node running this script.
 *                 Nodes from 22.18 run the TypeScript as is, older ones through tsx.
 *   --rounds N    repeat the sequence N times on the same topic; every figure is then the
 *                 median over the rounds.
 *   --wire        add the wire-level reader's phases (views, objects) after each Node's clients.
 *   --no-bronze   leave out the rxlake bronze phases (a run about the clients only).
 *   --bronze-clients LIST  the Kafka clients bronze runs with (KAFKA_CLIENT), one phase each;
 *                 default kafkajs. `wire` in --clients is the same client read raw, through the
 *                 library's KafkaClient seam without the source.
 *
 * Installs what it needs on first use: kcat (bench/clients/install-kcat.sh), a source build of
 * @confluentinc/kafka-javascript per Node ABI (bench/clients/build-confluent.sh; skipped with a
 * note when it fails), @platformatic/kafka 1.x for Nodes older than 22.22, the baselines' Python
 * virtualenvs (bench/venvs.sh), all under .stack/. Needs the local stack (scripts/stack.sh up;
 * KAFKA_BOOTSTRAP_SERVERS / KAFKA_PORT and RXLAKE_STACK_DIR are followed).
 * Progress goes to stderr; the table, the date and the Node versions to stdout; every figure
 * as JSON to bench/results/machine-<time>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
/** The stack's folder (its delta-rs venv is the judge); the benchmark's own installs go to .stack/. */
const stackDir = process.env.RXLAKE_STACK_DIR ?? join(root, '.stack');
const benchDir = join(root, '.stack');
const brokers = process.env.KAFKA_BOOTSTRAP_SERVERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`;
const allClients = ['kafkajs', 'wire', 'platformatic', 'confluent', 'confluent-rdkafka'] as const;

const { values: opts } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    'payload-bytes': { type: 'string', default: '400' },
    partitions: { type: 'string', default: '6' },
    node: { type: 'string', multiple: true },
    clients: { type: 'string', default: allClients.join(',') },
    rounds: { type: 'string', default: '1' },
    spark: { type: 'boolean', default: false },
    'no-python': { type: 'boolean', default: false },
    wire: { type: 'boolean', default: false },
    'no-bronze': { type: 'boolean', default: false },
    'bronze-clients': { type: 'string', default: 'kafkajs' },
    'topic-prefix': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`${(/\/\*\*([\s\S]*?)\*\//.exec(readFileSync(import.meta.filename, 'utf8'))?.[1] ?? '').replace(/^ \* ?/gm, '')}\n`);
  process.exit(0);
}
const records = Number(opts.records);
const rounds = Number(opts.rounds);
const clients = (opts.clients ?? '').split(',').filter(Boolean);
const bronzeClients = (opts['bronze-clients'] ?? '').split(',').filter(Boolean);
for (const c of bronzeClients) if (c !== 'kafkajs' && c !== 'wire') throw new Error(`--bronze-clients: unknown client ${c} (known: kafkajs, wire)`);
for (const c of clients) if (!(allClients as readonly string[]).includes(c)) throw new Error(`--clients: unknown client ${c} (known: ${allClients.join(', ')})`);
if (!Number.isInteger(records) || records <= 0 || !Number.isInteger(rounds) || rounds <= 0) throw new Error('--records and --rounds must be positive integers');

const log = (line: string): void => void process.stderr.write(`[bench:machine] ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Runtimes and set-up
// ---------------------------------------------------------------------------------------------

interface NodeRuntime {
  path: string;
  version: string;
  /** Runs `.ts` files as they are (22.18+), else through tsx. */
  native: boolean;
  abi: string;
}

function nodeRuntime(path: string): NodeRuntime {
  const out = spawnSync(path, ['-p', 'JSON.stringify([process.version, process.versions.modules])'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`--node ${path}: cannot run it (${out.stderr.trim()})`);
  const [version, abi] = JSON.parse(out.stdout) as [string, string];
  const [major = 0, minor = 0] = version.slice(1).split('.').map(Number);
  return { path, version, abi, native: major > 22 || (major === 22 && minor >= 18) };
}

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.slice(1).split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** `node [flags] file.ts …` for a runtime: tsx below 22.18. */
function nodeCommand(rt: NodeRuntime, flags: string[], file: string, args: string[]): string[] {
  return [rt.path, ...flags, ...(rt.native ? [] : ['--import', 'tsx']), file, ...args];
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Measuring one phase
// ---------------------------------------------------------------------------------------------

interface Measured {
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  exit: number;
}

interface PhaseSpec {
  id: string;
  label: string;
  kind: 'kcat' | 'raw' | 'bronze' | 'python' | 'spark';
  cmd: string[];
  env?: NodeJS.ProcessEnv;
  /** stdout is discarded (kcat prints every record). */
  discardStdout?: boolean;
  /** After a successful run: records read or written (checked), files, notes. */
  check?: (stdout: string) => Promise<{ records: number; files?: number; note?: string; extra?: Record<string, unknown> }>;
}

/** What bench/clients/consume.ts prints. */
interface RawConsume {
  version: string;
  records: number;
  redelivered: number;
  seconds: number;
  firstRecordSeconds: number;
  mainCpuSeconds?: number;
}

interface PhaseResult extends Measured {
  id: string;
  label: string;
  kind: PhaseSpec['kind'];
  records: number;
  files?: number;
  note?: string;
  error?: string;
  extra?: Record<string, unknown>;
}

/** Runs a phase under bench/treerss.py, killing it after `limitSeconds`. */
async function runPhase(spec: PhaseSpec, work: string, limitSeconds: number): Promise<PhaseResult> {
  const out = join(work, `${spec.id}.measure.json`);
  const child = spawn('python3', [join(root, 'bench', 'treerss.py'), out, ...spec.cmd], {
    cwd: root,
    env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: brokers, ...spec.env },
    stdio: ['ignore', spec.discardStdout ? 'ignore' : 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, limitSeconds * 1000);
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  clearTimeout(timer);
  const base = { id: spec.id, label: spec.label, kind: spec.kind, records: 0 };
  if (timedOut || code !== 0 || !existsSync(out)) {
    const why = timedOut ? `killed after ${limitSeconds} s` : `exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
    return { ...base, wall_s: 0, cpu_s: 0, peak_rss_mb: 0, exit: code, error: why };
  }
  const m = JSON.parse(readFileSync(out, 'utf8')) as Measured;
  try {
    const checked = spec.check ? await spec.check(stdout) : { records };
    if (checked.records !== records) throw new Error(`read ${checked.records} records, expected ${records}`);
    return { ...base, ...m, ...checked };
  } catch (err) {
    return { ...base, ...m, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Rows and data files of a Delta table as delta-rs reads them. */
function deltaTable(uri: string): { records: number; files: number } {
  const py = process.env.RXLAKE_PYTHON ?? join(stackDir, 'venv', 'bin', 'python');
  const r = sh(py, [join(root, 'scripts', 'delta_verify.py'), uri, '--columns', '_kafka_offset']);
  if (!r.ok) throw new Error(`delta-rs cannot read ${uri}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  const t = JSON.parse(r.stdout) as { num_rows: number; files: unknown[] };
  return { records: t.num_rows, files: t.files.length };
}

function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as T;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const nodes = (opts.node?.length ? opts.node : [process.execPath]).map(nodeRuntime);

  // --- set-up: kcat, client builds, virtualenvs ---
  log('set-up: kcat');
  const kcatInstall = sh('bash', [join(root, 'bench', 'clients', 'install-kcat.sh')]);
  if (!kcatInstall.ok) throw new Error(`cannot install kcat: ${kcatInstall.stderr}`);
  const kcat = kcatInstall.stdout.trim();
  const kcatVersion = /Version (\S+).*librdkafka (\S+)/s.exec(sh(kcat, ['-V']).stdout);

  const confluentDirs = new Map<string, string>();
  const confluentNotes = new Map<string, string>();
  if (clients.some((c) => c.startsWith('confluent'))) {
    for (const rt of nodes) {
      log(`set-up: @confluentinc/kafka-javascript for Node ${rt.version} (source build on first use, up to 15 minutes)`);
      const r = sh('bash', [join(root, 'bench', 'clients', 'build-confluent.sh'), '--node', rt.path, '--timeout', '900']);
      if (r.ok) confluentDirs.set(rt.abi, r.stdout.trim().split('\n').pop() ?? '');
      else confluentNotes.set(rt.abi, `build failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    }
  }
  // @platformatic/kafka 2.x needs Node 22.22+ (Promise.withResolvers and more); 1.x runs on 20.19+.
  let platformatic1: string | undefined;
  if (clients.includes('platformatic') && nodes.some((rt) => !atLeast(rt.version, 22, 22))) {
    platformatic1 = join(benchDir, 'platformatic-kafka-1');
    if (!existsSync(join(platformatic1, 'node_modules', '@platformatic', 'kafka'))) {
      log('set-up: @platformatic/kafka@^1 (for Nodes older than 22.22) into ' + platformatic1);
      mkdirSync(platformatic1, { recursive: true });
      writeFileSync(join(platformatic1, 'package.json'), '{"name":"platformatic-kafka-1","private":true}\n');
      const r = spawnSync('npm', ['i', '--no-audit', '--no-fund', '@platformatic/kafka@^1'], { cwd: platformatic1, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`npm i @platformatic/kafka@^1 failed: ${r.stderr}`);
    }
  }
  const python = !opts['no-python'] && existsSync(join(root, 'bench', 'python', 'bronze_baseline.py'));
  let venvPy: string | undefined;
  let sparkPy: string | undefined;
  if (python || opts.spark) {
    log(`set-up: Python virtualenvs (bench/venvs.sh${opts.spark ? ' --spark' : ''})`);
    const r = sh('bash', [join(root, 'bench', 'venvs.sh'), ...(opts.spark ? ['--spark'] : [])]);
    if (!r.ok) throw new Error(`bench/venvs.sh failed: ${r.stderr}`);
    venvPy = /^python=(.*)$/m.exec(r.stdout)?.[1];
    sparkPy = /^spark=(.*)$/m.exec(r.stdout)?.[1];
  }

  // --- the topic ---
  let prefix = opts['topic-prefix'];
  let payloadBytes = Number(opts['payload-bytes']);
  let topicBytes: number | undefined;
  if (prefix === undefined) {
    prefix = `bench-machine-${Date.now().toString(36)}.`;
    const partitions = Number(opts.partitions);
    log(`producing ${records} gps_pings (~${payloadBytes} B) to ${prefix}gps_pings (${partitions} partitions)…`);
    const { generateEvents } = await import('../src/pipelines/rideshare/generate.ts');
    const manifest = await generateEvents({
      brokers: brokers.split(','),
      topicPrefix: prefix,
      topics: ['gps_pings'],
      count: records,
      partitions,
      payloadBytes,
      batchSize: 2000,
      onProgress: (p) => log(`  produced ${p.produced} (${Math.round(p.eventsPerSecond)} ev/s)`),
      progressIntervalMs: 5000,
    });
    topicBytes = manifest.totals.bytes;
  } else {
    payloadBytes = Number.NaN;
  }
  const topic = `${prefix}gps_pings`;

  // --- the phases ---
  const work = await mkdtemp(join(tmpdir(), 'rxlake-bench-machine-'));
  const runId = Date.now().toString(36);
  const phases = (round: number): PhaseSpec[] => {
    const tag = `${runId}-${round}`;
    const list: PhaseSpec[] = [];
    const kcatPhase = (id: string): PhaseSpec => ({
      id,
      label: 'kcat -C -e (librdkafka, read only)',
      kind: 'kcat',
      cmd: [kcat, '-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q'],
      discardStdout: true,
    });
    list.push(kcatPhase('kcat'));
    list.push({
      id: 'kcat-group',
      label: 'kcat -G (librdkafka, consumer group)',
      kind: 'kcat',
      cmd: [kcat, '-b', brokers, '-G', `bench-machine-kcat-${tag}`, '-X', 'auto.offset.reset=earliest', '-e', '-q', topic],
      discardStdout: true,
    });
    // Every phase reads through a group of its own: a group that another phase committed to
    // the end would have nothing left to read.
    for (const rt of nodes) {
      const nodeTag = rt.version;
      for (const client of clients) {
        const extra: string[] = [];
        let skip: string | undefined;
        if (client.startsWith('confluent')) {
          const dir = confluentDirs.get(rt.abi);
          if (dir) extra.push('--confluent-dir', dir);
          else skip = confluentNotes.get(rt.abi) ?? 'not built';
        }
        if (client === 'platformatic' && !atLeast(rt.version, 22, 22) && platformatic1) extra.push('--platformatic-dir', platformatic1);
        const spec: PhaseSpec = {
          id: `raw-${client}-${nodeTag}`,
          label: `raw consume: ${client} (Node ${nodeTag})`,
          kind: 'raw',
          cmd: nodeCommand(rt, [], join(root, 'bench', 'clients', 'consume.ts'), ['--client', client, '--topic', topic, '--expected', String(records), '--group', `bench-machine-${client}-${tag}-${rt.abi}`, ...extra]),
          check: (stdout) => {
            const r = lastJson<RawConsume>(stdout);
            return Promise.resolve({ records: r.records, note: r.version, extra: { ...r } });
          },
        };
        if (skip !== undefined) spec.cmd = ['sh', '-c', `echo ${JSON.stringify(skip)} >&2; exit 3`];
        list.push(spec);
      }
      if (opts.wire) {
        for (const mode of ['views', 'objects'] as const) {
          list.push({
            id: `wire-${mode}-${nodeTag}`,
            label: `wire reader, ${mode} (Node ${nodeTag})`,
            kind: 'raw',
            cmd: nodeCommand(rt, [], join(root, 'bench', 'clients', 'wire.ts'), ['--topic', topic, '--mode', mode, '--expected', String(records)]),
            check: (stdout) => {
              const r = lastJson<RawConsume>(stdout);
              return Promise.resolve({ records: r.records, note: r.version, extra: { ...r } });
            },
          });
        }
      }
    }
    for (const [rt, client] of opts['no-bronze'] ? [] : nodes.flatMap((n) => bronzeClients.map((c) => [n, c] as const))) {
      const base = join(work, `bronze-${rt.abi}-${client}-${round}`);
      list.push({
        id: `bronze-${client}-${rt.version}`,
        label: `rxlake bronze, ${client} (Node ${rt.version})`,
        kind: 'bronze',
        cmd: nodeCommand(rt, ['--max-semi-space-size=8'], join(root, 'src', 'pipelines', 'bronze.ts'), ['--until-caught-up']),
        env: {
          BRONZE_TOPICS: 'gps_pings',
          KAFKA_TOPIC_PREFIX: prefix,
          KAFKA_CONSUMER_GROUP: `bench-machine-bronze-${client}-${tag}-${rt.abi}`,
          KAFKA_CLIENT: client,
          DELTA_BASE_PATH: base,
          HTTP_PORT: '0',
          PROGRESS_INTERVAL_SECONDS: '0',
        },
        check: async () => {
          const t = deltaTable(join(base, 'bronze_gps_pings'));
          await rm(base, { recursive: true, force: true });
          return { ...t, note: 'JSON + schema validation, exactly-once' };
        },
      });
    }
    if (python && venvPy) {
      const table = join(work, `py-${round}`, 'bronze_gps_pings');
      list.push({
        id: 'python',
        label: 'Python bronze (confluent-kafka + delta-rs)',
        kind: 'python',
        cmd: [venvPy, join(root, 'bench', 'python', 'bronze_baseline.py'), '--topic', topic, '--group', `bench-machine-py-${tag}`, '--table', table, '--bounded'],
        check: async () => {
          const t = deltaTable(table);
          await rm(join(work, `py-${round}`), { recursive: true, force: true });
          return { ...t, note: 'JSON check only, at-least-once' };
        },
      });
    }
    if (opts.spark && sparkPy) {
      const dir = join(work, `spark-${round}`);
      list.push({
        id: 'spark',
        label: 'Spark Structured Streaming (PySpark, Delta)',
        kind: 'spark',
        cmd: [sparkPy, join(root, 'bench', 'spark', 'bronze_spark.py'), '--topic', topic, '--table', join(dir, 'bronze_gps_pings'), '--checkpoint', join(dir, 'checkpoint'), '--ivy', join(root, '.stack', 'spark-ivy')],
        check: async (stdout) => {
          const s = lastJson<{ startup_s: number; seconds: number }>(stdout);
          const t = deltaTable(join(dir, 'bronze_gps_pings'));
          await rm(dir, { recursive: true, force: true });
          return { ...t, note: `no validation; session start-up ${s.startup_s} s, query ${s.seconds} s`, extra: s };
        },
      });
    }
    list.push({ ...kcatPhase('kcat-end'), label: 'kcat -C -e again (end of the round)' });
    return list;
  };

  const all: PhaseResult[][] = [];
  const limit = Math.max(180, records / 5_000);
  for (let round = 1; round <= rounds; round++) {
    const list = phases(round);
    const results: PhaseResult[] = [];
    for (const [i, spec] of list.entries()) {
      const of = rounds > 1 ? ` (round ${round}/${rounds})` : '';
      log(`[${i + 1}/${list.length}]${of} ${spec.label}…`);
      const r = await runPhase(spec, work, spec.kind === 'spark' ? limit * 3 : limit);
      results.push(r);
      if (r.error) log(`    failed: ${r.error}`);
      else log(`    ${r.wall_s.toFixed(2)} s, ${Math.round(records / r.wall_s).toLocaleString('en-US')} rec/s, CPU ${r.cpu_s.toFixed(2)} s, peak RSS ${Math.round(r.peak_rss_mb)} MB${r.files === undefined ? '' : `, ${r.files} files`}`);
    }
    all.push(results);
  }
  await rm(work, { recursive: true, force: true });

  // --- the table: medians over the rounds ---
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
  };
  const first = all[0] ?? [];
  const rows = first.map((r, i) => {
    const runs = all.map((rs) => rs[i]).filter((x): x is PhaseResult => x !== undefined && !x.error);
    let note = r.note;
    const raw = runs.map((x) => x.extra as RawConsume | undefined).filter((x): x is RawConsume => x?.firstRecordSeconds !== undefined);
    if (raw.length > 0) {
      // The client's own view: from its first record to its last, and how long the first took.
      const reading = median(raw.map((x) => x.records / (x.seconds - x.firstRecordSeconds)));
      const main = raw.every((x) => x.mainCpuSeconds !== undefined) ? median(raw.map((x) => ((x.mainCpuSeconds ?? 0) * 1e6) / x.records)) : undefined;
      note =
        `${note ?? ''}; first to last record ${Math.round(reading).toLocaleString('en-US')} rec/s; first record after ${median(raw.map((x) => x.firstRecordSeconds)).toFixed(2)} s` +
        (main === undefined ? '' : `; main thread ${main.toFixed(2)} CPU-s per 1M`);
    }
    return {
      id: r.id,
      label: r.label,
      kind: r.kind,
      ok: runs.length > 0,
      error: runs.length === 0 ? r.error : undefined,
      wall: median(runs.map((x) => x.wall_s)),
      cpu: median(runs.map((x) => x.cpu_s)),
      rss: median(runs.map((x) => x.peak_rss_mb)),
      files: r.files,
      note,
      runs: runs.length,
    };
  });
  const floors = rows.filter((r) => (r.id === 'kcat' || r.id === 'kcat-end') && r.ok);
  const kcatRate = floors.length ? floors.reduce((a, r) => a + records / r.wall, 0) / floors.length : Number.NaN;
  const kcatCpu = floors.length ? floors.reduce((a, r) => a + r.cpu, 0) / floors.length : Number.NaN;
  const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—');
  const mb = topicBytes === undefined ? '' : `, ${fmt(topicBytes / 2 ** 20, 0)} MB of payload`;
  const lines: string[] = [];
  lines.push('');
  lines.push(`${fmt(records)} gps_pings (~${Number.isNaN(payloadBytes) ? '?' : payloadBytes} B${mb}), topic ${topic}, local disk; each system in its own process, from start to exit; ${rounds > 1 ? `medians of ${rounds} rounds` : 'one round'}`);
  lines.push('');
  lines.push('| system | records/s | CPU-s per 1M | peak RSS | files | rate ÷ kcat | CPU ÷ kcat | wall s | notes |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    if (!r.ok) {
      lines.push(`| ${r.label} | — | — | — | — | — | — | — | ${(r.error ?? '').replace(/\|/g, '/')} |`);
      continue;
    }
    const rate = records / r.wall;
    lines.push(
      `| ${r.label} | ${fmt(rate)} | ${fmt((r.cpu * 1e6) / records, 2)} | ${fmt(r.rss)} MB | ${r.files ?? ''} | ${fmt(rate / kcatRate, 2)} | ${fmt(r.cpu / kcatCpu, 1)} | ${fmt(r.wall, 2)} | ${(r.note ?? '').replace(/\|/g, '/')} |`,
    );
  }
  lines.push('');
  lines.push(`ratios to the mean of the two kcat -C -e runs (${fmt(kcatRate)} records/s, ${fmt((kcatCpu * 1e6) / records, 2)} CPU-s per 1M)`);
  lines.push(`date: ${startedAt.toISOString()} (to ${new Date().toISOString()})`);
  lines.push(`node: ${nodes.map((rt) => `${rt.version} (${rt.path}${rt.native ? '' : ', through tsx'})`).join('; ')}`);
  lines.push(`kcat: ${kcatVersion ? `${kcatVersion[1]} (librdkafka ${kcatVersion[2]})` : '?'}`);
  lines.push(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at end`);
  process.stdout.write(`${lines.join('\n')}\n`);

  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `machine-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ startedAt, records, payloadBytes, topic, topicBytes, nodes, kcatRate, kcatCpu, rows, rounds: all }, null, 1)}\n`);
  log(`figures: ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
