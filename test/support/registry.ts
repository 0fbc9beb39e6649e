/**
 * The stack's schema registry (`bash scripts/stack.sh up registry`: Apicurio Registry with its
 * Confluent-compatible API): `schemaRegistryUrl()` starts it through the stack script (once per
 * test process; a second `up` is instant) and gives the API's URL, which follows
 * `REGISTRY_PORT` as the script does (or `RXLAKE_REGISTRY_URL` for a registry elsewhere); on
 * free ports when something the script cannot use holds those.
 */
import { stackUp } from './secureKafka.ts';
let started: Promise<string> | undefined;

/** The Confluent-compatible API of the stack's registry, started if it is not running. */
export function schemaRegistryUrl(): Promise<string> {
  started ??= start();
  return started;
}

async function start(): Promise<string> {
  const explicit = process.env.RXLAKE_REGISTRY_URL;
  if (explicit !== undefined && explicit !== '') return explicit;
  const env = await stackUp('registry', ['REGISTRY_PORT', 'REGISTRY_MANAGEMENT_PORT']);
  const port = (env.REGISTRY_PORT ?? '').trim() || '9098';
  return `http://127.0.0.1:${port}/apis/ccompat/v7`;
}
