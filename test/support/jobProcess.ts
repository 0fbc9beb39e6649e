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
}

const running = new Set<ChildProcess>();

/** Kills every job this process started that is still running (call from `afterAll`). */
export function killJobs(): void {
  for (const c of running) c.kill('SIGKILL');
}

/** Starts `src/pipelines/<job>.ts` with `args`; `env` goes over the stack's endpoints (`stack.jobEnv`). */
export function startJobProcess(job: string, args: readonly string[], env: Record<string, string>): JobProcess {
  const node = stack.nodeCurrent ?? join(stack.root, 'node_modules', '.bin', 'tsx');
  const child = spawn(node, [join(stack.root, 'src', 'pipelines', `${job}.ts`), ...args], {
    cwd: stack.root,
    env: { ...process.env, ...stack.jobEnv, HTTP_PORT: '0', PROGRESS_INTERVAL_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
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
  return { child, output: () => out, exit, printed };
}
