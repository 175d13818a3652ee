import { present } from '../../common/errors/present.js';
import { Crc32 } from '../../common/protocol/chunk-checksum.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import { nativeChunkSize } from '../sessions/session-record.js';
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
  const chunkSize = nativeChunkSize(runtime.record);
  for (const index of runtime.receivedIndexes()) {
    const chunk = present(runtime.chunks.get(index), `the record of received chunk ${index}`);
    const crc = new Crc32();
    try {
      for await (const piece of context.storage.readStaged(id, index * chunkSize, chunk.size)) crc.update(piece);
      if (crc.value >>> 0 !== chunk.crc) failed.push(index);
    } catch {
      failed.push(index);
    }
  }
  return failed;
}
