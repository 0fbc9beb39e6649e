/**
 * One writer process of the concurrency test (spawned with tsx): opens (or races to create)
 * the table, then appends `commits` batches: its own partition's rows plus a partition every
 * writer writes identically (only one copy may land). Prints a JSON summary on stdout.
 *
 * Usage: tsx deltaWriterChild.ts URI WRITER_INDEX COMMITS START_AT_EPOCH_MS
 */
import { DeltaTable } from '../../src/sinks/delta/table.ts';
import { storageFromUri } from '../../src/sinks/delta/storage.ts';
import { stack } from '../support/stack.ts';
import type { BronzeRow } from './deltaFixtures.ts';
import { bronzeRows, bronzeSpec, OWN_ROWS, SHARED_PARTITION, SHARED_ROWS } from './deltaFixtures.ts';

async function main(): Promise<void> {
  const [uri, idx, commits, startAt] = process.argv.slice(2);
  if (!uri || idx === undefined || commits === undefined) throw new Error('usage: URI WRITER_INDEX COMMITS');
  const writer = Number(idx);
  const storage = storageFromUri(uri, {
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
  });
  // Start together (process start-up times differ), so creation and commits really race.
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt ?? 0) - Date.now())));
  const table = await DeltaTable.openOrCreate(storage, bronzeSpec('bronze_concurrent'), { maxCommitAttempts: 1000 });
  const dedupe = { appId: (r: BronzeRow) => `conc-${r.partition}`, offset: (r: BronzeRow) => r.offset };
  const versions: Array<number | null> = [];
  let skipped = 0;
  let lostRaces = 0;
  for (let i = 0; i < Number(commits); i++) {
    const rows = [
      ...bronzeRows({ count: OWN_ROWS, partition: writer, firstOffset: BigInt(i * OWN_ROWS) }),
      ...bronzeRows({ count: SHARED_ROWS, partition: SHARED_PARTITION, firstOffset: BigInt(i * SHARED_ROWS) }),
    ];
    const r = await table.append(rows, { dedupe });
    await new Promise((res) => setTimeout(res, Math.random() * 20)); // like batches arriving
    versions.push(r.version);
    skipped += r.skipped;
    lostRaces += Math.max(0, r.attempts - 1);
  }
  process.stdout.write(`${JSON.stringify({ writer, versions, skipped, lostRaces })}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
