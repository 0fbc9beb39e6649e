/**
 * The stack's schema registry (`bash scripts/stack.sh up registry`: Apicurio Registry with its
 * Confluent-compatible API): `schemaRegistryUrl()` starts it through the stack script (once per
 * test process; a second `up` is instant) and gives the API's URL, which follows
 * `REGISTRY_PORT` as the script does (or `RXLAKE_REGISTRY_URL` for a registry elsewhere).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stack } from './stack.ts';

const run = promisify(execFile);
let started: Promise<string> | undefined;

/** The Confluent-compatible API of the stack's registry, started if it is not running. */
export function schemaRegistryUrl(): Promise<string> {
  started ??= start();
  return started;
}

async function start(): Promise<string> {
  const explicit = process.env.RXLAKE_REGISTRY_URL;
  if (explicit !== undefined && explicit !== '') return explicit;
  try {
    await run('bash', [join(stack.root, 'scripts', 'stack.sh'), 'up', 'registry'], { cwd: stack.root, env: process.env, maxBuffer: 1 << 24 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`bash scripts/stack.sh up registry failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  const port = (process.env.REGISTRY_PORT ?? '').trim() || '9098';
  return `http://127.0.0.1:${port}/apis/ccompat/v7`;
}
