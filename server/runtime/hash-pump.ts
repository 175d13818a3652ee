import { UploadError } from '../../common/errors/upload-error.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import type { HashFork } from '../integrity/prefix-hash.js';
import type { Logger } from '../logging/logger.js';
import { nativeChunkSize } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import { chunkSpool, stagedChunksReadable } from './chunk-spool.js';
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
 * background. Native chunks are normally already in the staged file at their offsets and are
 * read back (from the page cache, normally) only when they arrived ahead of the prefix, or after
 * a restart. Chunks waiting in spools (the legacy API's, whose offset is known only once the
 * prefix reaches them; native ones that arrived early on S3) are written into the staged file
 * and hashed in the same pass. Returns the running pump (one per session runtime).
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

/**
 * Hashes the next chunk: one already in the staged file is read back; one waiting in its spool
 * is placed (written to the staged file and hashed in the same pass). False when there is
 * nothing to do.
 */
async function step(deps: HashPumpDeps, runtime: SessionRuntime): Promise<boolean> {
  const index = runtime.hash.chunks;
  const chunk = runtime.chunks.get(index);
  if (index >= runtime.record.chunkCount || !chunk) return false;
  const { record } = runtime;
  if (chunk.offset === null) {
    await runtime.lock.run(() => placeSpooledChunk(deps, runtime, index));
    return true;
  }
  if (!stagedChunksReadable(deps.storage, record)) {
    // Written in place before the chunks ahead of it were hashed (the prefix was reset by a
    // failed completion meanwhile): it cannot be read back, so completion will start it over.
    throw new UploadError('INTERNAL', `chunk ${index} of ${record.path} cannot be read back to be hashed`);
  }
  const hash = runtime.hash;
  const fork = await hash.fork();
  for await (const piece of deps.storage.readStaged(record.id, chunk.offset, chunk.size)) {
    for (const running of fork.hashes) running.update(piece);
  }
  await savePrefix(deps, runtime, fork, chunk.size);
  hash.adopt(fork, chunk.size);
  return true;
}

/**
 * Writes chunk `index` from its spool to its place in the staged file (for the legacy API, the
 * end of the prefix), hashing it on the way. A spool that no longer has the chunk's bytes (a
 * lost write) is dropped, so the client is told to send the chunk again. Runs under the
 * session's lock.
 */
async function placeSpooledChunk(deps: HashPumpDeps, runtime: SessionRuntime, index: number): Promise<void> {
  const chunk = runtime.chunks.get(index);
  if (runtime.ended || !chunk || chunk.offset !== null || runtime.hash.chunks !== index) return;
  const { id } = runtime.record;
  const hash = runtime.hash;
  const fork = await hash.fork();
  const offset = runtime.record.api === 'native' ? index * nativeChunkSize(runtime.record) : hash.bytes;
  const damaged = new Error('damaged spool');
  const verifier = new ChunkVerifier(chunk.size, fork.hashes, (checked) => {
    if (checked.length !== chunk.size || checked.crc !== chunk.crc) throw damaged;
  });
  const spool = chunkSpool(id, index);
  try {
    await deps.storage.writePart(
      id,
      { index, offset, length: chunk.size },
      verifier.through(deps.storage.readSpool(spool, chunk.size)),
    );
  } catch (error) {
    if (error !== damaged) throw error;
    deps.log.warn(
      { event: 'spooled_chunk_damaged', sessionId: id, index },
      `Chunk ${index} of ${runtime.record.path} was damaged while it waited on the server; it must be sent again`,
    );
    runtime.chunks.delete(index);
    await deps.store.deleteChunks(id, [index]);
    await deps.storage.removeSpool(spool);
    return;
  }
  // The prefix is saved before the offset: a crash between the two leaves a hashed chunk still
  // marked as spooled (its spool is still there), never a placed chunk the prefix lacks.
  await savePrefix(deps, runtime, fork, chunk.size);
  chunk.offset = offset;
  await deps.store.setChunkOffsets(id, [{ index, offset }]);
  hash.adopt(fork, chunk.size);
  await deps.storage.removeSpool(spool);
}

/** Server replicas: the prefix hash after `fork` goes to the shared store (compare-and-set), for the next process. */
async function savePrefix(deps: HashPumpDeps, runtime: SessionRuntime, fork: HashFork, length: number): Promise<void> {
  const next = runtime.hash.savedAfter(fork, length);
  if (next) await deps.store.savePrefix?.(runtime.id, fork.chunkIndex, next);
}

/** Replicas: a prefix hash reset here (a failed completion, a replaced legacy chunk) is reset in the store too. */
export async function saveResetPrefix(deps: Pick<HashPumpDeps, 'store'>, runtime: SessionRuntime): Promise<void> {
  const initial = runtime.hash.saved();
  if (initial) await deps.store.savePrefix?.(runtime.id, null, initial);
}
