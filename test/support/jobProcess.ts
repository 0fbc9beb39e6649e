/**
 * A job's command line as users run it (`node src/pipelines/<job>.ts` on a Node that strips
 * types, tsx on Node 20), with the stack's endpoints and the test's variables: everything it
 * prints is kept, `printed()` waits for a line, `exit` resolves with the code and the output.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { stack } from './stack.ts';

export interface JobProcess {
  readonly child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code and everything the job printed. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
  /** Resolves once the output matches `pattern`, with the match; rejects if the job exits first. */
  printed(pattern: RegExp): Promise<RegExpExecArray>;
  /** SIGKILL: the whole process group when started with `group` (tsx's child too on Node 20). */
  kill(): void;
}

export interface JobProcessOptions {
  /** Its own process group, so that `kill()` takes every process of the job at once. */
  readonly group?: boolean;
}

const running = new Set<ChildProcess>();

/** Kills every job this process started that is still running (call from `afterAll`). */
export function killJobs(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** Starts `src/pipelines/<job>.ts` with `args`; `env` goes over the stack's endpoints (`stack.jobEnv`). */
export function startJobProcess(job: string, args: readonly string[], env: Record<string, string | undefined>, options: JobProcessOptions = {}): JobProcess {
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  const child = spawn(node, [join(stack.root, 'src', 'pipelines', `${job}.ts`), ...args], {
    cwd: stack.root,
    env: { ...process.env, ...stack.jobEnv, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group === true,
  });
  running.add(child);
  let out = '';
  let closed = false;
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.once('close', (code, signal) => {
      running.delete(child);
      closed = true;
      for (const w of [...waiters]) w();
      resolve({ code, signal, out });
    }),
  );
  const printed = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(out);
        if (m !== null) {
          waiters.delete(check);
          resolve(m);
        } else if (closed) {
          waiters.delete(check);
          reject(new Error(`${job} exited before printing ${String(pattern)}:\n${out}`));
        }
      };
      waiters.add(check);
      check();
    });
  const kill = (): void => {
    try {
      if (options.group === true) process.kill(-(child.pid as number), 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  return { child, output: () => out, exit, printed, kill };
}

export interface KillMidStreamOptions {
  /** Produces one round of records while the job runs. */
  readonly feed: () => Promise<void>;
  /** True once the job has written enough that a kill leaves work to redo. */
  readonly ready: () => Promise<boolean>;
  /** Rounds fed before `ready` is asked (so records are in flight at the kill). */
  readonly minRounds: number;
  readonly maxRounds: number;
  /** Pause between rounds, pacing the producer. */
  readonly pauseMs: number;
  /** What `ready` waits for, for the error when it never comes. */
  readonly what: string;
}

/**
 * Feeds the running job round by round and SIGKILLs it once `ready()` holds; resolves when it is
 * gone (killed, not exited by itself). Rejects, with the job's output, if it never gets ready or
 * exits before the kill.
 */
export async function killMidStream(job: JobProcess, o: KillMidStreamOptions): Promise<void> {
  try {
    let ready = false;
    for (let round = 0; round < o.maxRounds && !ready; round++) {
      await o.feed();
      await new Promise((r) => setTimeout(r, o.pauseMs));
      ready = round + 1 >= o.minRounds && (await o.ready());
    }
    if (!ready) throw new Error(`the job did not get to ${o.what} before the kill (${o.maxRounds} rounds):\n${job.output()}`);
    job.kill();
    const { code, signal } = await job.exit;
    if (signal !== 'SIGKILL') throw new Error(`the job ended by itself (code ${String(code)}, signal ${String(signal)}) instead of the kill:\n${job.output()}`);
  } finally {
    job.kill();
  }
}
