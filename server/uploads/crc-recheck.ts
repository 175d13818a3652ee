import { present } from '../../common/errors/present.js';
import { Crc32 } from '../../common/protocol/chunk-checksum.js';
import { chunkSpool, stagedChunksReadable } from '../runtime/chunk-spool.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { UploadContext } from './upload-context.js';

/**
 * Re-reads every held native chunk from the staged file and checks it against the CRC it was
 * acknowledged with; returns the indexes that fail (or cannot be read). Used when the whole
 * file's SHA-256 did not match: it finds chunks lost or damaged after they were acknowledged
 * (for example writes lost in a power failure, since chunks are not fsynced one by one).
 */
export async function recheckChunks(context: UploadContext, runtime: SessionRuntime): Promise<number[]> {
  const failed: number[] = [];
  const { id } = runtime.record;
  const readable = stagedChunksReadable(context.storage, runtime.record);
  for (const index of runtime.receivedIndexes()) {
    const chunk = present(runtime.chunks.get(index), `the record of received chunk ${index}`);
    // S3's parts cannot be read back: those were verified (CRC) before they were stored.
    if (chunk.offset !== null && !readable) continue;
    const crc = new Crc32();
    try {
      const bytes =
        chunk.offset === null
          ? context.storage.readSpool(chunkSpool(id, index), chunk.size)
          : context.storage.readStaged(id, chunk.offset, chunk.size);
      for await (const piece of bytes) crc.update(piece);
      if (crc.value >>> 0 !== chunk.crc) failed.push(index);
    } catch {
      failed.push(index);
    }
  }
  return failed;
}
