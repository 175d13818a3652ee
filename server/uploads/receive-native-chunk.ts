import type { IncomingMessage } from 'node:http';
import { UploadError } from '../../common/errors/upload-error.js';
import { formatChunkChecksum, parseChunkChecksum } from '../../common/protocol/chunk-checksum.js';
import { headers, type ChunkResponse } from '../../common/protocol/native-protocol.js';
import { rawBodyEncoding } from '../http/raw-body-headers.js';
import { drainBody, requestBody } from '../http/request-body.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import { kickHashPump } from '../integrity/hash-pump.js';
import type { HashFork } from '../integrity/prefix-hash.js';
import { logUploadProgress } from '../logging/upload-log.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { isMissingBlob } from '../storage/upload-storage.js';
import { dropSessionWithLostData } from './session-data-lost.js';
import { DATA_BLOB, type UploadContext } from './upload-context.js';

/**
 * PUT /v1/sessions/:id/chunks/:index: the chunk is streamed into the session's data blob at its
 * offset through a ChunkVerifier (length, CRC-32, and the prefix hash's fork when the chunk is
 * the next one in order). It is acknowledged (recorded in the store) only once its CRC matched;
 * a chunk that fails is not recorded, whatever reached the disk is overwritten by the re-send.
 */
export async function receiveNativeChunk(context: UploadContext, runtime: SessionRuntime, index: number, req: IncomingMessage): Promise<ChunkResponse> {
  const { record } = runtime;
  if (index >= record.chunkCount) {
    throw new UploadError('CHUNK_INDEX_OUT_OF_RANGE', `chunk index ${index} is out of range: the session has chunks 0 to ${record.chunkCount - 1}`);
  }
  const encoding = rawBodyEncoding(req, 'a chunk');
  const checksumHeader = req.headers[headers.chunkChecksum];
  const expectedCrc = parseChunkChecksum(typeof checksumHeader === 'string' ? checksumHeader : undefined);
  if (expectedCrc === undefined) {
    throw new UploadError('INVALID_FIELD', `the ${headers.chunkChecksum} header must be "crc32:" and 8 hex digits, not ${JSON.stringify(checksumHeader ?? '(missing)')}`);
  }
  const offset = index * record.chunkSize!;
  const expectedLength = Math.min(record.size, offset + record.chunkSize!) - offset;
  const declared = req.headers['content-length'];
  if (encoding === 'identity' && declared !== undefined && Number(declared) !== expectedLength) {
    throw new UploadError('CHUNK_SIZE_MISMATCH', `chunk ${index} must be ${expectedLength} bytes, but Content-Length is ${declared}`);
  }

  if (record.state === 'complete' || runtime.chunks.has(index)) return duplicate(runtime, index, req);
  if (record.state === 'completing') throw new UploadError('SESSION_BUSY', `The session for ${record.path} is being completed`);

  // A newer request for the same chunk wins: the older one is usually a client's abandoned attempt.
  const previous = runtime.inFlight.get(index);
  if (previous) {
    previous.abort(new UploadError('CHUNK_CONFLICT', `chunk ${index} was sent again while this request was still receiving it`));
    await previous.done.catch(() => undefined);
    if (runtime.ended) throw sessionGone(runtime);
    if (runtime.chunks.has(index)) return duplicate(runtime, index, req);
  }

  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  runtime.inFlight.set(index, { abort: (reason) => req.destroy(reason), done });
  const body = requestBody(req, encoding);
  try {
    const fork: HashFork | undefined = runtime.hash.chunks === index ? runtime.hash.fork() : undefined;
    const verifier = new ChunkVerifier(expectedLength, fork?.hashes);
    try {
      await context.storage.writeAt(record.id, DATA_BLOB, offset, verifier.through(body.source), { existing: true });
    } catch (error) {
      if (!isMissingBlob(error) || runtime.ended) throw error;
      runtime.inFlight.delete(index); // this request answers 404 itself; cancelling must not abort it
      throw await dropSessionWithLostData(context, runtime);
    }
    if (runtime.ended) throw sessionGone(runtime);
    if (verifier.length !== expectedLength) {
      throw new UploadError('CHUNK_SIZE_MISMATCH', `chunk ${index} must be ${expectedLength} bytes, but its body had ${verifier.length}`);
    }
    if (verifier.crc !== expectedCrc) {
      throw new UploadError(
        'CHUNK_CHECKSUM_MISMATCH',
        `chunk ${index} failed its checksum (received ${formatChunkChecksum(verifier.crc)}, expected ${formatChunkChecksum(expectedCrc)}); it was not stored, send it again`,
      );
    }
    const now = Date.now();
    const chunk = { index, size: expectedLength, crc: expectedCrc, offset: null };
    record.expiresAt = now + context.config.sessionExpiry * 1000;
    context.store.ackChunk(record.id, chunk, now, record.expiresAt);
    runtime.chunks.set(index, chunk);
    if (fork) runtime.hash.adopt(fork, expectedLength);
    void kickHashPump(context, runtime);
    logUploadProgress(context.log, runtime);
    return { index, receivedCount: runtime.chunks.size, chunkCount: record.chunkCount, duplicate: false };
  } catch (error) {
    body.discardRest();
    throw error;
  } finally {
    if (runtime.inFlight.get(index)?.done === done) runtime.inFlight.delete(index);
    finish();
  }
}

async function duplicate(runtime: SessionRuntime, index: number, req: IncomingMessage): Promise<ChunkResponse> {
  await drainBody(req);
  return { index, receivedCount: runtime.record.state === 'complete' ? runtime.record.chunkCount : runtime.chunks.size, chunkCount: runtime.record.chunkCount, duplicate: true };
}

function sessionGone(runtime: SessionRuntime): UploadError {
  return new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled or expired`);
}
