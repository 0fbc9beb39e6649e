/**
 * Worker-thread side of `ParquetWorkerPool`: receives packed column payloads, encodes one
 * Parquet file per message (values, SNAPPY, statistics) and sends back its bytes (transferred)
 * and Delta stats. Started by the pool, never imported by the library itself.
 */
import { parentPort } from 'node:worker_threads';
import type { SchemaElement } from 'hyparquet';
import type { PackedFile } from './columnar.ts';
import { encodePacked, transferList } from './columnar.ts';

/** Pool → worker. */
export interface EncodeRequest {
  readonly id: number;
  readonly file: PackedFile;
  readonly schema: SchemaElement[];
  readonly rowGroupSize?: number;
  readonly statsStringLength?: number;
}

/**
 * Worker → pool. `spare`: the request's payload buffers, handed back (transferred) for reuse,
 * so their memory does not wait for this thread's garbage collector.
 */
export type EncodeReply =
  | { readonly kind: 'ready' }
  | { readonly kind: 'done'; readonly id: number; readonly bytes: Uint8Array; readonly stats: string; readonly numRecords: number; readonly spare: ArrayBuffer[] }
  | {
      readonly kind: 'failed';
      readonly id: number;
      readonly spare: ArrayBuffer[];
      readonly error: { name: string; message: string; code: string | undefined; retriable: boolean; stack: string | undefined };
    };

const port = parentPort;
if (port) {
  port.on('message', (req: EncodeRequest) => {
    let reply: EncodeReply;
    const spare = transferList(req.file);
    const transfer: ArrayBuffer[] = [...spare];
    try {
      const opts = {
        ...(req.rowGroupSize === undefined ? {} : { rowGroupSize: req.rowGroupSize }),
        ...(req.statsStringLength === undefined ? {} : { statsStringLength: req.statsStringLength }),
      };
      const file = encodePacked(req.file, req.schema, opts);
      // The writer's buffer grows by doubling: hand back exactly the file, not its spare room.
      let bytes = file.bytes;
      if (bytes.buffer.byteLength > bytes.byteLength * 1.25 || !(bytes.buffer instanceof ArrayBuffer)) bytes = bytes.slice();
      transfer.push(bytes.buffer as ArrayBuffer);
      reply = { kind: 'done', id: req.id, bytes, stats: file.stats, numRecords: file.numRecords, spare };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const { code, retriable } = e as { code?: unknown; retriable?: unknown };
      reply = {
        kind: 'failed',
        id: req.id,
        spare,
        error: {
          name: e.name,
          message: e.message,
          code: typeof code === 'string' ? code : undefined,
          retriable: retriable === true,
          stack: e.stack,
        },
      };
    }
    port.postMessage(reply, transfer);
  });
  port.postMessage({ kind: 'ready' } satisfies EncodeReply);
}
