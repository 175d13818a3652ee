import { randomUUID } from 'node:crypto';
import { UploadError } from '../../common/errors/upload-error.js';
import { formatChunkChecksum } from '../../common/protocol/chunk-checksum.js';
import type { ChunkResponse } from '../../common/protocol/native-protocol.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import type { HashFork } from '../integrity/prefix-hash.js';
import { chunkSpool, stagedChunksReadable } from '../runtime/chunk-spool.js';
import { kickHashPump } from '../runtime/hash-pump.js';
import type { InFlightChunk, SessionRuntime, VerifiedChunk } from '../runtime/session-runtime.js';
import { nativeChunkSize } from '../sessions/session-record.js';
import { isDiskFull } from '../storage/disk-full.js';
import { isMissingStaging } from '../storage/upload-storage.js';
import { emitChunkStored } from './chunk-stored.js';
import { dropSessionWithLostData } from './session-data-lost.js';
import type { UploadBody } from './upload-body.js';
import type { UploadContext } from './upload-context.js';
import { logUploadProgress } from './upload-log.js';

/** How long a chunk waits for the one before it to receive more bytes (see whileProgressing). */
const PATIENCE_MS = 100;

/** Where chunk `index` of a native session goes: its offset and the length it must have. */
export interface NativeChunkSlot {
  index: number;
  offset: number;
  length: number;
}

/** The slot of chunk `index`; CHUNK_INDEX_OUT_OF_RANGE when the session has no such chunk. */
export function nativeChunkSlot(runtime: SessionRuntime, index: number): NativeChunkSlot {
  const { record } = runtime;
  if (index >= record.chunkCount) {
    throw new UploadError(
      'CHUNK_INDEX_OUT_OF_RANGE',
      `chunk index ${index} is out of range: the session has chunks 0 to ${record.chunkCount - 1}`,
    );
  }
  const chunkSize = nativeChunkSize(record);
  const offset = index * chunkSize;
  return { index, offset, length: Math.min(record.size, offset + chunkSize) - offset };
}

/** PUT /v1/sessions/:id/chunks/:index, its headers checked against the slot. */
export interface NativeChunkInput {
  slot: NativeChunkSlot;
  /** The CRC-32 the client computed over the chunk's decoded bytes. */
  crc: number;
  /** The SHA-256 of the file through this chunk, as the client computed it (optional). */
  prefixSha256?: string | undefined;
  body: UploadBody;
}

/**
 * Receives a chunk: its body is streamed into the session's staging upload at its offset
 * through a ChunkVerifier (length, CRC-32, and the prefix hash's fork when the chunk is the next
 * one in order). It is acknowledged (recorded in the store) only once it verified; a chunk that
 * fails is not recorded, and whatever was written is overwritten by the re-send. A chunk next in
 * order that carries the client's prefix SHA-256 is verified against the fork's SHA-256 (which is
 * computed anyway, and is the stronger check) instead of its CRC-32; any other chunk by its CRC.
 */
export function receiveNativeChunk(
  context: UploadContext,
  runtime: SessionRuntime,
  input: NativeChunkInput,
): Promise<ChunkResponse> {
  return receive(context, runtime, input, undefined);
}

/** The chunk before this one, verified and still being acknowledged: this one is hashed from its fork. */
interface AfterVerified {
  before: InFlightChunk;
  verified: VerifiedChunk;
}

async function receive(
  context: UploadContext,
  runtime: SessionRuntime,
  input: NativeChunkInput,
  after: AfterVerified | undefined,
): Promise<ChunkResponse> {
  const { record } = runtime;
  const { slot, body } = input;
  const { index } = slot;
  if (record.state === 'complete' || runtime.chunks.has(index)) return duplicate(runtime, index, body);
  if (record.state === 'completing')
    throw new UploadError('SESSION_BUSY', `The session for ${record.path} is being completed`);

  // A newer request for the same chunk wins: the older one is usually a client's abandoned attempt.
  const previous = runtime.inFlight.get(index);
  if (previous) {
    previous.abort(
      new UploadError('CHUNK_CONFLICT', `chunk ${index} was sent again while this request was still receiving it`),
    );
    await previous.done.catch(() => undefined);
    if (runtime.ended) throw sessionGone(runtime);
    if (runtime.chunks.has(index)) return duplicate(runtime, index, body);
  }

  // A pipelining client sends chunk n + 1 as soon as chunk n's body left, so n + 1's request
  // often begins while n (and n - 1...) are still arriving. When every chunk from the end of the
  // hashed prefix up to n is in flight, n + 1 waits for n (its bytes wait in the socket): the
  // chunks then land one after the other, each hashed as it is written, instead of being written
  // ahead of the prefix and read back from the staged file by the hash pump later (a second pass
  // over the bytes: measured on a 256 MiB upload on loopback, about 40 % of the server's SHA-256
  // work went through that read-back before the waiting chunks were visible to later ones).
  // It waits only until n's body was written and checked, not for n's acknowledgement (a
  // database commit and, for SQLite, an fsync of its log): n + 1 streams in meanwhile, hashed
  // from n's fork, and is acknowledged after n (measured on loopback, waiting for the
  // acknowledgement too left the server idle for about a fifth of a 1 GiB upload).
  const before = after ? undefined : runtime.inFlight.get(index - 1);
  if (before && landsInOrder(runtime, index)) {
    const usable = (chunk: VerifiedChunk): boolean => continuesFrom(runtime, chunk);
    const verified = await waitForTurn(runtime, index, before, body, usable);
    // Everything checked again, as things stand now (a fork no longer usable: n is waited for again).
    return receive(context, runtime, input, verified && usable(verified) ? { before, verified } : undefined);
  }

  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let passed!: (chunk: VerifiedChunk) => void;
  const verified = new Promise<VerifiedChunk>((resolve) => (passed = resolve));
  let verifier: ChunkVerifier | undefined;
  runtime.inFlight.set(index, {
    abort: (reason) => body.abort(reason),
    done,
    received: () => verifier?.length ?? 0,
    verified,
  });
  try {
    const inOrder = after !== undefined || runtime.hash.chunks === index;
    const fork: HashFork | undefined = after
      ? await runtime.hash.forkAfter(after.verified.fork, after.verified.length)
      : inOrder
        ? await runtime.hash.fork()
        : undefined;
    // Written in place, unless it arrived before the chunks ahead of it were hashed on a backend
    // that cannot read it back: then it waits in a spool until the hash pump reaches it.
    const inPlace = inOrder || stagedChunksReadable(context.storage, record);
    const byPrefix = fork && input.prefixSha256 !== undefined ? { fork, sha256: input.prefixSha256 } : undefined;
    const check = (checked: ChunkVerifier): void => checkChunk(slot, input.crc, checked, byPrefix);
    verifier = new ChunkVerifier(slot.length, fork?.hashes, check, { crc: !byPrefix });
    const release = context.inFlight.reserve(record.uploader, slot.length);
    try {
      if (inPlace) {
        await context.storage.writePart(
          record.id,
          { index, offset: slot.offset, length: slot.length },
          verifier.through(body.bytes()),
        );
      } else {
        await spoolEarlyChunk(context, runtime, index, slot.length, verifier.through(body.bytes()));
      }
    } catch (error) {
      if (isDiskFull(error)) {
        context.freeSpace.sawFullDisk();
        throw new UploadError(
          'INSUFFICIENT_STORAGE',
          `The server ran out of disk space while writing chunk ${index} of ${record.path}; ` +
            'the session and its other chunks are kept, retry later',
          { cause: error },
        );
      }
      if (!isMissingStaging(error) || runtime.ended) throw error;
      runtime.inFlight.delete(index); // this request answers 404 itself; dropping the session must not abort it
      throw await dropSessionWithLostData(context, runtime);
    } finally {
      release();
    }
    if (runtime.ended) throw sessionGone(runtime);
    check(verifier);
    if (fork) passed({ fork, length: slot.length, into: runtime.hash });
    if (after) await acknowledgedBefore(runtime, index, after.before);
    const now = Date.now();
    const chunk = { index, size: slot.length, crc: input.crc, offset: inPlace ? slot.offset : null };
    record.expiresAt = now + context.config.sessionExpiry * 1000;
    // Server replicas: the prefix hash this chunk advances is saved with its acknowledgement.
    const next = fork ? runtime.hash.savedAfter(fork, slot.length) : undefined;
    await context.store.ackChunk(
      record.id,
      chunk,
      now,
      record.expiresAt,
      fork && next ? { from: fork.chunkIndex, next } : undefined,
    );
    runtime.chunks.set(index, chunk);
    if (fork) runtime.hash.adopt(fork, slot.length);
    void kickHashPump(context, runtime);
    logUploadProgress(context.log, runtime);
    emitChunkStored(context, runtime, index, slot.length);
    return { index, receivedCount: runtime.chunks.size, chunkCount: record.chunkCount, duplicate: false };
  } catch (error) {
    body.discardRest();
    throw error;
  } finally {
    if (runtime.inFlight.get(index)?.done === done) runtime.inFlight.delete(index);
    finish();
  }
}

/**
 * Whether a chunk can be hashed from `verified`'s fork: that fork is this runtime's hash's (with
 * replicas, each request has a hash of its own: never), of its current generation, and not yet
 * adopted (the chunk it hashed may itself wait for the one before it).
 */
function continuesFrom(runtime: SessionRuntime, verified: VerifiedChunk): boolean {
  const { hash } = runtime;
  return (
    verified.into === hash && verified.fork.generation === hash.generation && hash.chunks <= verified.fork.chunkIndex
  );
}

/** True when every chunk from the end of the hashed prefix up to `index - 1` is in flight (or waiting its turn). */
function landsInOrder(runtime: SessionRuntime, index: number): boolean {
  const from = runtime.hash.chunks;
  if (index <= from || index - from > runtime.inFlight.size) return false;
  for (let i = from; i < index; i += 1) {
    const request = runtime.inFlight.get(i);
    if (!request || request.stalled) return false;
  }
  return true;
}

/**
 * Waits until the request for the chunk before `index` ended, listed in the session's requests
 * in flight meanwhile, so that the chunks after it queue behind it and a newer request for the
 * same chunk takes over as it would from one that is receiving (this one then fails with the
 * reason it was given). Throws when the session ended meanwhile.
 */
async function waitForTurn(
  runtime: SessionRuntime,
  index: number,
  before: InFlightChunk,
  body: UploadBody,
  usable: (chunk: VerifiedChunk) => boolean,
): Promise<VerifiedChunk | undefined> {
  let cancelled: Error | undefined;
  let finish!: () => void;
  const waiting: InFlightChunk = {
    abort: (reason) => {
      cancelled = reason;
      body.abort(reason);
    },
    done: new Promise<void>((resolve) => (finish = resolve)),
  };
  runtime.inFlight.set(index, waiting);
  let verified: VerifiedChunk | undefined;
  try {
    verified = await whileProgressing(before, usable);
  } finally {
    if (runtime.inFlight.get(index) === waiting) runtime.inFlight.delete(index);
    finish();
  }
  if (cancelled) throw cancelled;
  if (runtime.ended) throw sessionGone(runtime);
  return verified;
}

/**
 * A chunk received from the fork of the one before it is acknowledged after that one: it waits
 * for it, then is recorded only if that one was adopted into the prefix hash (when its
 * acknowledgement failed, this chunk's check stands on bytes the server does not hold as
 * received, and it is sent again).
 */
async function acknowledgedBefore(runtime: SessionRuntime, index: number, before: InFlightChunk): Promise<void> {
  await before.done;
  if (runtime.ended) throw sessionGone(runtime);
  if (runtime.hash.chunks === index) return;
  throw new UploadError(
    'SERVER_UNAVAILABLE',
    `chunk ${index} arrived while chunk ${index - 1} was being recorded, which failed; ` +
      'it was not stored, send it again',
  );
}

/**
 * Resolves when `before` was verified with a fork this chunk can continue from (with it: this
 * chunk may stream in while that one is acknowledged), when it ended, or when it received
 * nothing for PATIENCE_MS (a stalled or very slow connection): the chunks behind it are then
 * written ahead of the prefix (and hashed later by the hash pump) rather than kept waiting
 * without an answer until their clients give up on them as stalled too and send them all again.
 */
async function whileProgressing(
  before: InFlightChunk,
  usable: (chunk: VerifiedChunk) => boolean,
): Promise<VerifiedChunk | undefined> {
  const ended = before.done.then(
    () => undefined,
    () => undefined,
  );
  // A fork this chunk cannot continue from ends nothing: the wait goes on until `before` ends.
  const settled: Promise<VerifiedChunk | undefined> = before.verified
    ? Promise.race([ended, before.verified.then((chunk) => (usable(chunk) ? chunk : ended))])
    : ended;
  let outcome: { verified: VerifiedChunk | undefined } | undefined;
  void settled.then((verified) => (outcome = { verified }));
  let seen = before.received?.();
  while (!outcome) {
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<void>((resolve) => (timer = setTimeout(resolve, PATIENCE_MS)));
    await Promise.race([settled, patience]);
    clearTimeout(timer);
    if (outcome || !before.received) continue; // settled, or it waits for its own turn (not stalled)
    const now = before.received();
    if (now === seen) {
      before.stalled = true; // no chunk waits for it again
      return undefined;
    }
    seen = now;
  }
  return outcome.verified;
}

/**
 * The chunk's length, then its CRC or (`byPrefix`) the SHA-256 of the file through it, checked once
 * its body ended (before its last bytes are written).
 */
function checkChunk(
  slot: NativeChunkSlot,
  crc: number,
  verifier: ChunkVerifier,
  byPrefix: { fork: HashFork; sha256: string } | undefined,
): void {
  if (verifier.length !== slot.length) {
    throw new UploadError(
      'CHUNK_SIZE_MISMATCH',
      `chunk ${slot.index} must be ${slot.length} bytes, but its body had ${verifier.length}`,
    );
  }
  if (byPrefix) {
    const received = byPrefix.fork.sha256Hex();
    if (received === byPrefix.sha256) return;
    throw new UploadError(
      'CHUNK_CHECKSUM_MISMATCH',
      `chunk ${slot.index} failed its check: the file's SHA-256 through it is ${received} here, ` +
        `${byPrefix.sha256} as sent; it was not stored, send it again`,
    );
  }
  if (verifier.crc !== crc) {
    throw new UploadError(
      'CHUNK_CHECKSUM_MISMATCH',
      `chunk ${slot.index} failed its checksum (received ${formatChunkChecksum(verifier.crc)}, ` +
        `expected ${formatChunkChecksum(crc)}); it was not stored, send it again`,
    );
  }
}

/**
 * Keeps an early chunk in its spool: written under a name of its own first, then moved to
 * `chunk-<index>` once verified, so that a failed or concurrent attempt never replaces a
 * verified one.
 */
async function spoolEarlyChunk(
  context: UploadContext,
  runtime: SessionRuntime,
  index: number,
  length: number,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  const incoming = { staging: runtime.id, name: `part-${randomUUID()}` };
  try {
    await context.storage.writeSpool(incoming, body, length);
    await context.storage.moveSpool(incoming, chunkSpool(runtime.id, index));
  } catch (error) {
    await context.storage.removeSpool(incoming).catch(() => undefined);
    throw error;
  }
}

async function duplicate(runtime: SessionRuntime, index: number, body: UploadBody): Promise<ChunkResponse> {
  await body.skip();
  return {
    index,
    receivedCount: runtime.record.state === 'complete' ? runtime.record.chunkCount : runtime.chunks.size,
    chunkCount: runtime.record.chunkCount,
    duplicate: true,
  };
}

function sessionGone(runtime: SessionRuntime): UploadError {
  return new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled or expired`);
}
