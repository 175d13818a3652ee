import { UploadError } from '../../common/errors/upload-error.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import type { Logger } from '../logging/logger.js';
import { nativeChunkSize } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import { legacyChunkSpool } from './legacy-chunk-spool.js';
import type { SessionRuntime } from './session-runtime.js';

/** What the pump works with. */
export interface HashPumpDeps {
  readonly storage: UploadStorage;
  readonly store: SessionStore;
  readonly log: Logger;
}

const pumpAgain = new WeakSet<SessionRuntime>();

/**
 * Advances a session's prefix hash over every chunk that is held and contiguous with it, in the
 * background. Native chunks are already in the staged file at their offsets and are read back
 * (from the page cache, normally) only when they arrived ahead of the prefix, or after a
 * restart. The legacy API's chunks wait in spools until the prefix reaches them (their offset
 * is known only then); the pump then writes each into the staged file and hashes it in the same
 * pass. Returns the running pump (one per session).
 */
export function kickHashPump(deps: HashPumpDeps, runtime: SessionRuntime): Promise<void> {
  pumpAgain.add(runtime);
  runtime.pump ??= (async () => {
    try {
      while (pumpAgain.has(runtime)) {
        pumpAgain.delete(runtime);
        while (!runtime.ended && (await step(deps, runtime)));
      }
      runtime.pumpError = undefined;
    } catch (error) {
      runtime.pumpError = error as Error;
      if (!runtime.ended)
        deps.log.warn(
          { event: 'hash_pump_failed', sessionId: runtime.id, err: error },
          'Hashing the received chunks failed; completion will re-verify them',
        );
    } finally {
      runtime.pump = undefined;
    }
  })();
  return runtime.pump;
}

/**
 * Runs the pump until the prefix covers every chunk, for completion. Throws the pump's error
 * (ENOSPC while the legacy API's chunks are placed, staged data cut short...) when it cannot.
 */
export async function finishHashPump(deps: HashPumpDeps, runtime: SessionRuntime): Promise<void> {
  for (;;) {
    if (runtime.hash.chunks >= runtime.record.chunkCount) return;
    const before = runtime.hash.chunks;
    runtime.pumpError = undefined;
    await kickHashPump(deps, runtime);
    if (runtime.pumpError) throw runtime.pumpError;
    if (runtime.hash.chunks === before && !runtime.chunks.has(before)) {
      throw new UploadError('CHUNKS_MISSING', `chunk ${before} is missing`, { details: { missing: [before] } });
    }
  }
}

/** Hashes (and for the legacy API, places) the next chunk; false when there is nothing to do. */
async function step(deps: HashPumpDeps, runtime: SessionRuntime): Promise<boolean> {
  const index = runtime.hash.chunks;
  const chunk = runtime.chunks.get(index);
  if (index >= runtime.record.chunkCount || !chunk) return false;
  const { record } = runtime;
  const offset = record.api === 'native' ? index * nativeChunkSize(record) : chunk.offset;
  if (offset !== null) {
    const fork = runtime.hash.fork();
    for await (const piece of deps.storage.readStaged(record.id, offset, chunk.size)) {
      for (const hash of fork.hashes) hash.update(piece);
    }
    runtime.hash.adopt(fork, chunk.size);
    return true;
  }
  await runtime.lock.run(() => placeLegacyChunk(deps, runtime, index));
  return true;
}

/** Writes legacy chunk `index` from its spool to the end of the prefix in the staged file, hashing it on the way. */
async function placeLegacyChunk(deps: HashPumpDeps, runtime: SessionRuntime, index: number): Promise<void> {
  const chunk = runtime.chunks.get(index);
  if (runtime.ended || !chunk || chunk.offset !== null || runtime.hash.chunks !== index) return;
  const { id } = runtime.record;
  const fork = runtime.hash.fork();
  const offset = runtime.hash.bytes;
  const verifier = new ChunkVerifier(chunk.size, fork.hashes);
  const spool = legacyChunkSpool(id, index);
  const written = await deps.storage.writePart(
    id,
    { index, offset },
    verifier.through(deps.storage.readSpool(spool, chunk.size)),
  );
  if (written !== chunk.size || verifier.crc !== chunk.crc) {
    // The chunk's spool changed since it was received (a lost write): forget it, so the client
    // is told to send it again.
    deps.log.warn(
      { event: 'legacy_chunk_damaged', sessionId: id, index },
      `Legacy chunk ${index} of ${runtime.record.path} was damaged on disk; it must be sent again`,
    );
    runtime.chunks.delete(index);
    await deps.store.deleteChunks(id, [index]);
    await deps.storage.removeSpool(spool);
    return;
  }
  chunk.offset = offset;
  await deps.store.setChunkOffsets(id, [{ index, offset }]);
  runtime.hash.adopt(fork, chunk.size);
  await deps.storage.removeSpool(spool);
}
