import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import zlib from 'node:zlib';
import type { Logger } from 'pino';
import { present } from '../../common/errors/present.js';
import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import {
  MAX_WHOLE_FILE_SIZE,
  type CompletedFile,
  type CreateSessionRequest,
  type CreateSessionResponse,
  type OpenSession,
} from '../../common/protocol/native-protocol.js';
import { TransferCompression, type EncodedChunk } from './compression/transfer-compression.js';
import type { EngineConfig } from './engine-options.js';
import { RunningHash, type FileDigests } from './hashing/running-hash.js';
import type { Journal } from './journal/journal.js';
import { SendWindow } from './pipeline/send-window.js';
import type { Slot, UploadQueue } from './queue/upload-queue.js';
import { classifyFailure, describeFailure, isNetworkDown, wholeFileFallback } from './retry/classify-failure.js';
import { retryRequest, sleep, type RetryInfo } from './retry/retry-request.js';
import { ChunkBuffers } from './source/chunk-buffers.js';
import { hashRange, readRange, sameVersion, sha256OfFile, SourceFile, type FileVersion } from './source/local-file.js';
import type { TokenBucket } from './throttle/token-bucket.js';
import { errorDetails } from './transport/http-errors.js';
import type { AttemptLimits } from './transport/http-transport.js';
import { MAX_METADATA_HEADER, metadataHeader, type PutFileResult } from './transport/session-client.js';
import type { UploadTransport } from './transport/upload-transport.js';
import type { UploadRecord } from './upload-record.js';

/** Restarts in a row (file changed, session lost) before the upload fails. */
const MAX_RESTARTS = 10;
/** Rounds of re-sending chunks that completion reported missing or damaged. */
const MAX_REPAIR_ROUNDS = 3;
/**
 * The largest file sent whole in one request (PUT /v1/files/<path>, also bounded by the chunk
 * size and the protocol's MAX_WHOLE_FILE_SIZE) when the journal does not know its SHA-256. One
 * request instead of three (create, chunk, complete) is what makes small files fast. The price:
 * the agent cannot ask first whether the server already holds the file, so after the journal
 * was lost a file the server holds is sent again (the server discards the body and answers
 * "already stored"). Up to 1 MiB that costs about what the two saved round trips cost on a slow
 * uplink; a larger file goes through create-or-resume, which answers "complete" without a body
 * (dedup). A file the journal knows (re-queued unchanged) always goes that way too.
 */
const WHOLE_FILE_LIMIT = 1024 * 1024;

/** The largest file sent whole with chunks of `chunkSize` (such files may share an upload slot). */
export function wholeFileLimit(chunkSize: number): number {
  return Math.min(WHOLE_FILE_LIMIT, MAX_WHOLE_FILE_SIZE, chunkSize);
}
/**
 * Pieces in which a read-ahead chunk is hashed and CRC'd, yielding to the event loop in between
 * (the chunk on the wire keeps streaming).
 */
const DIGEST_PIECE = 1024 * 1024;

/** A chunk read, CRC'd, hashed and encoded, ready to go; its bytes may be dropped while the upload waits. */
class PreparedChunk {
  constructor(
    readonly index: number,
    readonly start: number,
    readonly length: number,
    /** CRC-32 of the bytes: sent with the chunk, and checked when they are read again. */
    readonly crc32: number,
    /** The running digests through this chunk (adopted once the server acknowledged it); none for a repair. */
    readonly fork: FileDigests | undefined,
    /** The SHA-256 of the file through this chunk (from `fork`): sent with the first attempt. */
    readonly prefixSha256: string | undefined,
    /** A view of one of the upload's chunk buffers. */
    public raw: Buffer | undefined,
    public encoded: EncodedChunk | undefined,
  ) {}

  /** Forgets the bytes (the buffers are dropped with them). */
  drop(): void {
    this.raw = undefined;
    this.encoded = undefined;
  }

  /** Gives the buffer back for the next chunk (the server acknowledged this one). */
  release(buffers: ChunkBuffers): void {
    if (this.raw) buffers.give(this.raw);
    this.drop();
  }
}

/** Where one session upload's chunks come from, and the chunks it holds. */
interface ChunkSource {
  readonly handle: FileHandle;
  readonly buffers: ChunkBuffers;
  readonly compression: TransferCompression;
  /** The chunk being sent (or repaired). */
  current: PreparedChunk | undefined;
  /** The next chunk, being read ahead. */
  ahead: Promise<PreparedChunk> | undefined;
}

/** What a runner needs from its manager. */
export interface RunnerContext {
  readonly logger: Logger;
  readonly bucket: TokenBucket;
  readonly slots: UploadQueue<UploadRecord>;
  config(): EngineConfig;
  /** The transport for the server's API as last found (native until a probe says otherwise). */
  client(): UploadTransport;
  /** The transport for the server's API, asking its /health first when a native call showed no native API. */
  resolveClient(limits: AttemptLimits): Promise<UploadTransport>;
  /** A native call through `seen` was answered as by a server without the native API: find the API again. */
  noNativeApi(seen: UploadTransport): void;
  journal(): Journal;
  /** True while no new chunk may start (paused by the user). */
  isPaused(): boolean;
  /** The record changed (phase, slot, error): report state changes. */
  changed(record: UploadRecord): void;
  started(record: UploadRecord): void;
  progress(record: UploadRecord, force: boolean): void;
  retrying(record: UploadRecord, info: RetryInfo): void;
  stalled(record: UploadRecord): void;
  completed(record: UploadRecord, deduplicated: boolean): void;
  failed(record: UploadRecord, error: UploadError): void;
  /** A request failed for good because the network is down: go offline. */
  networkDown(reason: string): void;
  /** A request succeeded: the server is reachable. */
  reachable(): void;
  /** Waits `ms`, or less if the engine comes back online meanwhile. */
  requeueDelay(ms: number, signal: AbortSignal): Promise<void>;
  /** Nothing can go on (state disk full, certificate refused): the engine stops granting slots and says so. */
  blocked(error: UploadError): void;
  /** Resolves once the engine is no longer blocked (at once when it is not). */
  whenUnblocked(signal: AbortSignal): Promise<void>;
}

type LimitsFor = (kind: 'chunk' | 'init') => AttemptLimits;

/**
 * Uploads one file, start to verified finish: create-or-resume (the server's answer is the
 * truth), dedup, chunks in order (each read once, CRC'd and hashed into a fork of the running
 * SHA-256, throttled, retried), a stat before every chunk and before completing (a changed
 * file restarts cleanly), then complete. It holds a concurrency slot only while it works and
 * gives it back before every wait.
 */
export class UploadRunner {
  readonly record: UploadRecord;
  readonly #ctx: RunnerContext;
  /** Aborts waiting (backoff, slot, requeue): stop and cancel. */
  readonly #soft = new AbortController();
  /** Aborts requests in flight: stop after its deadline, cancel. */
  readonly #hard = new AbortController();
  #slot: Slot | undefined;
  #settled: Promise<void> | undefined;
  /** Lets go of the chunk buffers the upload holds (set while a session upload runs). */
  #shed: (() => Promise<void>) | undefined;
  /** The file as this attempt opened it: every read and check goes through it (see SourceFile). */
  #source: SourceFile | undefined;
  /** The transport this attempt at the file uses (one API for the whole attempt). */
  #transport: UploadTransport | undefined;
  /** The server's verified answer that the journal could not record yet (its disk was full). */
  #verified: { answer: CompletedFile; version: FileVersion; deduplicated: boolean } | undefined;

  /** `slot`: the concurrency slot the manager acquired for it, if any. */
  constructor(record: UploadRecord, context: RunnerContext, slot?: Slot) {
    this.record = record;
    this.#ctx = context;
    if (slot) {
      this.#slot = slot;
      record.holdsSlot = true;
    }
  }

  start(): Promise<void> {
    this.#settled ??= this.#run();
    return this.#settled;
  }

  get settled(): Promise<void> {
    return this.#settled ?? Promise.resolve();
  }

  /** No new chunk; the one in flight may finish. */
  requestStop(reason: UploadError): void {
    if (!this.#soft.signal.aborted) this.#soft.abort(reason);
  }

  /** Abort now, in-flight requests included. */
  abort(reason: UploadError): void {
    this.requestStop(reason);
    if (!this.#hard.signal.aborted) this.#hard.abort(reason);
  }

  async #run(): Promise<void> {
    const record = this.record;
    // Started when its first slot is granted (in queue order: priority, then FIFO), before any
    // I/O, so uploads are reported started in the order they were queued.
    if (!record.startedAt) {
      record.startedAt = new Date().toISOString();
      record.phase = 'uploading';
      this.#ctx.started(record);
    }
    let restarts = 0;
    try {
      for (;;) {
        try {
          await this.#uploadOnce();
          return;
        } catch (error) {
          if (classifyFailure(error) === 'stop') return;
          this.#releaseSlot();
          record.bytesInFlight = 0;
          try {
            if (await this.#afterFailure(error, () => (restarts += 1))) continue;
          } catch (during) {
            // Dropping a session or noting a retry may meet the same blocked state disk.
            if (classifyFailure(during) !== 'blocked') throw during;
            await this.#waitUnblocked(during);
            continue;
          }
          throw error;
        }
      }
    } catch (error) {
      if (classifyFailure(error) === 'stop') return;
      this.#fail(error);
    } finally {
      this.#releaseSlot();
      record.bytesInFlight = 0;
    }
  }

  /**
   * After a failed attempt at the whole file: waits as its kind asks and returns true to go
   * again (from what the server holds), or false when the failure is the file's end.
   */
  async #afterFailure(error: unknown, countRestart: () => number): Promise<boolean> {
    const record = this.record;
    const kind = classifyFailure(error);
    if (kind === 'blocked') {
      await this.#waitUnblocked(error);
      return true;
    }
    if (kind === 'restart') {
      const restarts = countRestart();
      await this.#dropSession();
      if (restarts > MAX_RESTARTS) return false;
      const delay = this.#config().retryDelay;
      this.#noteRetry({ attempt: 1, delay, reason: describeFailure(error), error, consumesAttempt: false });
      await sleep(delay * 1000, this.#soft.signal);
      return true;
    }
    if (kind === 'retry' || kind === 'wait') {
      // Out of retries. The file is not failed: it waits in the queue, longer.
      if (isNetworkDown(error)) this.#ctx.networkDown(describeFailure(error));
      const delay = this.#config().retryMaxDelay;
      this.#noteRetry({ attempt: 1, delay, reason: describeFailure(error), error, consumesAttempt: false });
      this.#ctx.logger.warn(
        { upload: record.localPath, reason: describeFailure(error), delay },
        'retries used up; the file waits in the queue',
      );
      await this.#ctx.requeueDelay(delay * 1000, this.#soft.signal);
      return true;
    }
    return false;
  }

  /** The engine is blocked (state disk full, certificate refused): report it, hold nothing, wait until it is not. */
  async #waitUnblocked(error: unknown): Promise<void> {
    const record = this.record;
    this.#ctx.blocked(error as UploadError);
    record.lastError = describeFailure(error);
    record.errorCode = error instanceof UploadError ? error.code : undefined;
    record.phase = 'queued';
    this.#ctx.changed(record);
    await this.#shed?.();
    await this.#ctx.whenUnblocked(this.#soft.signal);
  }

  async #uploadOnce(): Promise<void> {
    await this.#ensureSlot();
    const source = await SourceFile.open(this.record.localPath);
    this.#source = source;
    try {
      // Which API the server speaks: native unless a native call showed otherwise (then one /health).
      this.#transport = await this.#retrying((limits) => this.#ctx.resolveClient(limits('init')));
      await this.#uploadFrom(source);
    } finally {
      this.#source = undefined;
      this.#transport = undefined;
      await source.close();
    }
  }

  /** The transport of this attempt (or, outside one, the engine's current one). */
  #client(): UploadTransport {
    return this.#transport ?? this.#ctx.client();
  }

  async #uploadFrom(source: SourceFile): Promise<void> {
    const record = this.record;
    const config = this.#config();
    const version = source.version;
    record.closedAt = new Date(version.mtimeMs).toISOString();
    const verified = this.#verified;
    if (verified) {
      // Verified by the server, but the journal could not record it (state disk full): record it now.
      this.#verified = undefined;
      if (sameVersion(verified.version, version)) {
        this.#completed(verified.answer, version, verified.deduplicated);
        return;
      }
    }
    record.bytesTotal = version.size;
    record.phase = 'uploading';
    this.#ctx.changed(record);

    // A session made for another server address is only forgotten here, never cancelled: the
    // address may be new while the server is the same (the bundled server gets a new port at
    // every start), and create-or-resume below finds the session by uploader, path, size and
    // fingerprint. Sending its id to another server would be meaningless at best. A session made
    // for another version of the file is dropped on the server: the file restarts cleanly.
    if (record.session && record.session.server !== this.#client().serverHref) {
      this.#forgetSession();
    } else if (record.session && !sameVersion(record.session.version, version)) {
      await this.#dropSession();
    }

    const known = this.#ctx.journal().completedFile(record.localPath);
    const knownSha =
      known && known.size === version.size && known.mtimeMs === version.mtimeMs ? known.sha256 : undefined;
    if (!knownSha && !record.session && this.#fitsWhole(version.size)) {
      if (await this.#uploadWhole(source)) return;
    }
    const fingerprint = await source.fingerprint();
    const what = `${record.localPath} → ${record.remotePath}`;
    const request = {
      path: record.remotePath,
      size: version.size,
      fingerprint,
      chunkSize: config.chunkSize,
      ...(knownSha ? { sha256: knownSha } : {}),
      ...(record.metadata ? { metadata: record.metadata } : {}),
      ...(record.replace ? { replace: true } : {}),
    };
    let answer = await this.#createOrResume(request, what);

    if (answer.state === 'complete') {
      // Dedup: confirm the server's SHA-256 against the local file's (known, or hashed locally: no network).
      const local = knownSha ?? (await this.#hashLocally(source));
      if (answer.sha256 === local && answer.size === version.size) {
        await source.assertUnchanged();
        this.#completed(answer, version, true);
        return;
      }
      this.#ctx.logger.info(
        { upload: record.localPath },
        'the server holds a different file with the same fingerprint; replacing it',
      );
      const replaceRequest = { ...request, sha256: local, replace: true };
      answer = await this.#retrying((limits) =>
        this.#client().create(replaceRequest, limits('init'), `${what}: create (replace)`),
      );
      if (answer.state === 'complete') {
        throw new UploadError(
          'PROTOCOL',
          `${what}: the server reports the file complete with ` +
            `SHA-256 ${answer.sha256}, but the local file's is ${local}`,
        );
      }
    }
    await this.#sendSession(answer, source);
  }

  /**
   * Create-or-resume. A native create answered 404 as by a server without the native API (no
   * route, not our JSON) sends the engine to find the server's API again; when it now finds the
   * legacy API, this file goes that way at once.
   */
  async #createOrResume(request: CreateSessionRequest, what: string): Promise<CreateSessionResponse> {
    const create = (): Promise<CreateSessionResponse> =>
      this.#retrying(
        (limits) =>
          this.#client().create(request, limits('init'), `${what}: create-or-resume`, this.record.session?.id),
        (error) => this.#client().api === 'native' && noNativeApi(error),
      );
    try {
      return await create();
    } catch (error) {
      if (this.#client().api !== 'native' || !noNativeApi(error)) throw error;
      this.#ctx.noNativeApi(this.#client());
      this.#transport = await this.#retrying((limits) => this.#ctx.resolveClient(limits('init')));
      if (this.#client().api === 'native') throw error;
      return create();
    }
  }

  /** Whether a file of `size` bytes goes in one whole-file request (when the journal does not know it). */
  #fitsWhole(size: number): boolean {
    const record = this.record;
    if (!this.#client().wholeFiles) return false;
    if (size > wholeFileLimit(this.#config().chunkSize)) return false;
    // Large metadata goes in a session's JSON body (a header that large would be refused).
    return (metadataHeader(record.metadata)?.length ?? 0) <= MAX_METADATA_HEADER;
  }

  /**
   * A small file in one request (PUT /v1/files/<path>). Each attempt, holding the slot, reads the
   * file whole into memory (at most WHOLE_FILE_LIMIT bytes), hashes it, checks it is unchanged
   * (stat before and after the read), and sends it through the shared throttle; nothing is kept
   * while waiting between attempts. 201 (stored) and 200 (already stored, also the answer to a
   * retry after a lost answer) are the server's verified completion. Returns false when the file
   * must go as a session instead: the server has no such route (404/405; remembered for this
   * server), or refused it in a way a session handles (see wholeFileFallback).
   */
  async #uploadWhole(source: SourceFile): Promise<boolean> {
    const record = this.record;
    const version = source.version;
    const what = `${record.localPath} → ${record.remotePath}`;
    record.bytesAcked = 0;
    record.bytesInFlight = 0;
    // An attempt that sent its whole body and lost the answer may have stored the file: a 200
    // after it is ours, not a duplicate.
    let bodyDelivered = false;
    let result: { answer: PutFileResult; sha256: string };
    try {
      result = await this.#retrying(
        async (limits) => {
          const raw = await source.readWhole();
          const sha256 = createHash('sha256').update(raw).digest('hex');
          await source.assertUnchanged();
          const encoded = await new TransferCompression(this.#config().transferCompression, record.localPath).encode(
            raw,
          );
          const file = {
            path: record.remotePath,
            size: raw.length,
            body: encoded.body,
            encoding: encoded.encoding,
            sha256,
            metadata: record.metadata,
            replace: record.replace,
          };
          const scale = encoded.body.length > 0 ? raw.length / encoded.body.length : 1;
          let sent = 0;
          record.bytesInFlight = 0;
          try {
            const answer = await this.#client().putFile(
              file,
              this.#ctx.bucket,
              limits('chunk'),
              (bytes) => {
                sent += bytes;
                record.bytesInFlight = Math.min(raw.length, Math.round(sent * scale));
                record.meter.add(Math.round(bytes * scale));
                this.#ctx.progress(record, false);
              },
              `${what}: whole file`,
            );
            return { answer, sha256 };
          } catch (error) {
            if (file.body.length > 0 && sent >= file.body.length) bodyDelivered = true;
            record.bytesInFlight = 0;
            throw error;
          }
          // A refusal that a session handles (no such route, too large, a look-alike stored) goes as a session at once.
        },
        (error) => wholeFileFallback(error) !== undefined,
      );
    } catch (error) {
      const fallback = wholeFileFallback(error);
      if (fallback === undefined) throw error;
      if (fallback === 'route-missing') {
        this.#client().noWholeFiles();
        this.#ctx.logger.info(
          { server: this.#client().serverHref, reason: describeFailure(error) },
          'the server has no whole-file route (an older server); using sessions',
        );
      }
      record.bytesInFlight = 0;
      return false;
    }
    // The answer names this path, size and SHA-256 (checked by the client).
    const { answer } = result;
    this.#completed(answer.file, version, answer.status === 200 && !bodyDelivered);
    return true;
  }

  async #sendSession(session: OpenSession, source: SourceFile): Promise<void> {
    const record = this.record;
    const version = source.version;
    const expectedCount = Math.max(1, Math.ceil(version.size / session.chunkSize));
    if (session.chunkCount !== expectedCount || session.size !== version.size) {
      throw new UploadError(
        'PROTOCOL',
        `${record.localPath}: the server's session has ${session.chunkCount} chunks of ` +
          `${session.chunkSize} bytes for ${session.size} bytes; expected ${expectedCount} for ${version.size}`,
      );
    }
    const server = this.#client().serverHref;
    record.session = { id: session.id, server, chunkSize: session.chunkSize, version };
    this.#ctx.journal().setSession(record.id, record.startedAt, {
      sessionId: session.id,
      sessionServer: server,
      chunkSize: session.chunkSize,
      size: version.size,
      mtimeMs: version.mtimeMs,
    });
    const held = new Set(session.received);
    const lengthOf = (index: number): number =>
      Math.max(0, Math.min(session.chunkSize, version.size - index * session.chunkSize));
    record.bytesAcked = [...held].reduce((sum, index) => sum + (index < session.chunkCount ? lengthOf(index) : 0), 0);
    record.bytesInFlight = 0;
    if (record.bytesAcked > 0) {
      this.#ctx.logger.info(
        { upload: record.localPath, remotePath: record.remotePath, offset: record.bytesAcked, size: version.size },
        `resuming ${record.remotePath} at ${formatSize(record.bytesAcked)} of ${formatSize(version.size)}`,
      );
    }
    this.#ctx.progress(record, true);

    const handle = source.handle;
    // The pipeline (docs/agent.md, "Keeping the link full"): chunk bodies go out back to back.
    // While chunk n is on the wire, chunk n + 1 is read, CRC'd and hashed (in file order, into
    // the running SHA-256) in the other of two reused buffers; a buffer is reused as soon as its
    // body left, and the answers are awaited in a window sized to the measured round trip
    // (SendWindow). A chunk whose request fails is sent again once the window drained, one at a
    // time with retries (its bytes read again and checked against the first read's CRC). A crash
    // re-sends at most the chunks in flight.
    const chunks: ChunkSource = {
      handle,
      buffers: new ChunkBuffers(Math.min(session.chunkSize, version.size)),
      compression: new TransferCompression(
        this.#config().transferCompression && this.#client().transferEncoding,
        record.localPath,
      ),
      current: undefined,
      ahead: undefined,
    };
    /** Chunks to send one at a time with retries: their pipelined attempt failed. */
    const oneByOne: { chunk: PreparedChunk; earlier?: { error: unknown; bodyLeft: boolean } }[] = [];
    // While the upload waits without its slot (backoff, Retry-After, pause), it holds no chunk
    // buffer: the chunks' bytes are dropped and read again (and checked against their CRC) when
    // it is their turn again. Memory is bounded by the uploads holding slots, not by the queue.
    this.#shed = async () => {
      const next = await chunks.ahead?.catch(() => undefined);
      for (const chunk of [chunks.current, next, ...oneByOne.map((entry) => entry.chunk)]) chunk?.drop();
      chunks.buffers.clear();
    };
    const prepare = (index: number, base: FileDigests): Promise<PreparedChunk> => {
      const pending = this.#prepareChunk(chunks, index, index * session.chunkSize, lengthOf(index), base);
      pending.catch(() => undefined); // awaited below; a failure is thrown there
      return pending;
    };
    const window = new SendWindow(this.#config().maxChunksInFlight);
    /** A failure that ends this attempt at the file (the journal could not record an acknowledgement). */
    let fatal: { error: unknown } | undefined;
    const acknowledged = (chunk: PreparedChunk): void => {
      this.#ctx.journal().ackChunk(record.id, chunk.index);
      record.bytesAcked += chunk.length;
      this.#ctx.progress(record, true);
    };
    try {
      const hash = new RunningHash(this.#client().needsMd5);
      let index = 0;
      for (;;) {
        for (; index < session.chunkCount && oneByOne.length === 0 && !fatal; index += 1) {
          if (held.has(index)) {
            // Resume: the server holds it; rebuild the running hash from the local file (no network).
            await hashRange(
              handle,
              record.localPath,
              index * session.chunkSize,
              lengthOf(index),
              hash,
              this.#soft.signal,
            );
            continue;
          }
          const chunk = await (chunks.ahead ?? prepare(index, hash.fork()));
          chunks.ahead = undefined;
          hash.adopt(chunk.fork!, chunk.length);
          // Paused: the chunks in flight finish (answered) before the slot is given back.
          if (this.#ctx.isPaused()) await window.drain();
          await this.#checkpoint();
          await window.room();
          if (this.#ctx.isPaused()) {
            // Paused while waiting for room: no new chunk starts until resumed.
            await window.drain();
            await this.#checkpoint();
          }
          if (oneByOne.length > 0 || fatal) {
            // A request failed meanwhile: this chunk waits for the one-at-a-time round.
            oneByOne.push({ chunk });
            continue;
          }
          // Its bytes were dropped while the upload waited (a shed during the one-at-a-time round).
          if (!chunk.encoded) await this.#reloadChunk(chunk, chunks);
          const left = this.#sendPipelined(session, chunk, chunks, window, {
            acknowledged: () => {
              try {
                acknowledged(chunk);
              } catch (error) {
                fatal ??= { error };
              }
            },
            failed: (error, bodyLeft) => oneByOne.push({ chunk, earlier: { error, bodyLeft } }),
          });
          if (index + 1 < session.chunkCount && !held.has(index + 1)) chunks.ahead = prepare(index + 1, chunk.fork!);
          await left;
        }
        await window.drain();
        if (fatal) throw fatal.error;
        if (oneByOne.length === 0) break;
        // Each stays listed until it is acknowledged, so a wait in between sheds its bytes too.
        oneByOne.sort((a, b) => a.chunk.index - b.chunk.index);
        while (oneByOne.length > 0) {
          const { chunk, earlier } = oneByOne[0]!;
          await this.#checkpoint();
          chunks.current = chunk;
          await this.#sendChunk(session, chunk, chunks, earlier);
          chunks.current = undefined;
          oneByOne.shift();
          chunk.release(chunks.buffers);
          acknowledged(chunk);
        }
      }
      await this.#complete(session, hash.digests(), version, chunks);
    } finally {
      // Requests still in flight (a stop lets them finish) end before the upload does.
      await window.drain();
      this.#shed = undefined;
      // A read still running must end before the attempt closes its file.
      await chunks.ahead?.catch(() => undefined);
    }
  }

  /**
   * Starts one attempt at a chunk in the pipeline, counted in `window`; resolves once its body
   * left (or the attempt failed before), so the caller can start the next. The chunk's buffer
   * goes back to the pool as soon as the body left. The answer arrives later: `acknowledged` on
   * success, `failed` otherwise (the chunk is then sent again one at a time, with retries, this
   * failure counting as its first attempt; `bodyLeft` says whether the server may hold it already).
   */
  #sendPipelined(
    session: OpenSession,
    prepared: PreparedChunk,
    chunks: ChunkSource,
    window: SendWindow,
    outcome: { acknowledged: () => void; failed: (error: unknown, bodyLeft: boolean) => void },
  ): Promise<void> {
    const record = this.record;
    const { index, length } = prepared;
    const encoded = prepared.encoded!;
    // The first attempt only: a chunk sent again (after any failure, a failed prefix check
    // included) is checked by its CRC-32, so a prefix this agent got wrong costs one attempt.
    const { crc32, prefixSha256 } = prepared;
    const chunk = { index, body: encoded.body, encoding: encoded.encoding, crc32, prefixSha256 };
    const scale = encoded.body.length > 0 ? length / encoded.body.length : 1;
    const what = `${record.localPath}: chunk ${index + 1} of ${session.chunkCount}`;
    const started = performance.now();
    let sentAt: number | undefined;
    let counted = 0;
    let left!: () => void;
    const bodyLeft = new Promise<void>((resolve) => (left = resolve));
    const request = this.#ctx
      .client()
      .putChunk(
        session.id,
        chunk,
        this.#ctx.bucket,
        this.#attemptLimits('chunk'),
        (bytes) => {
          const add = Math.min(length - counted, Math.round(bytes * scale));
          counted += add;
          record.bytesInFlight += add;
          record.meter.add(add);
          this.#ctx.progress(record, false);
        },
        what,
        () => {
          sentAt = performance.now();
          prepared.release(chunks.buffers);
          left();
        },
      )
      .then(
        () => {
          if (sentAt !== undefined) window.sample(sentAt - started, performance.now() - sentAt);
          this.#ctx.reachable();
          // Its bytes move from in flight to acknowledged at once, so bytesSent never counts them twice.
          record.bytesInFlight = Math.max(0, record.bytesInFlight - counted);
          counted = 0;
          outcome.acknowledged();
        },
        (error: unknown) => {
          this.#ctx.logger.debug(
            { upload: record.localPath, chunk: index, error: describeFailure(error) },
            'a pipelined chunk request failed; it is sent again once the requests in flight are answered',
          );
          // A body that did not leave whole may still be referenced by the connection: its
          // buffer is not reused (the bytes are read again for the next attempt).
          if (prepared.raw) chunks.buffers.retire(prepared.raw);
          prepared.drop();
          outcome.failed(error, sentAt !== undefined);
        },
      )
      .finally(() => {
        record.bytesInFlight = Math.max(0, record.bytesInFlight - counted);
        left();
      });
    window.track(request);
    return bodyLeft;
  }

  /**
   * Reads chunk `index` into a chunk buffer, then CRCs it and hashes it into a copy of `base`
   * (the running hash through the chunk before it; none for a repair), in pieces that let the
   * event loop keep the chunk on the wire streaming, and encodes it for the wire.
   */
  async #prepareChunk(
    chunks: ChunkSource,
    index: number,
    start: number,
    length: number,
    base: FileDigests | undefined,
  ): Promise<PreparedChunk> {
    const fork = base?.copy(); // now, before any await: `base` is adopted (and may move on) later
    const raw = await readRange(chunks.handle, this.record.localPath, start, length, chunks.buffers.take(length));
    let crc32 = 0;
    for (let offset = 0; offset < raw.length; offset += DIGEST_PIECE) {
      if (offset > 0) await nextTurn();
      const piece = raw.subarray(offset, offset + DIGEST_PIECE);
      fork?.update(piece);
      crc32 = zlib.crc32(piece, crc32);
    }
    const encoded = await chunks.compression.encode(raw);
    return new PreparedChunk(index, start, length, crc32, fork, fork?.sha256Hex(), raw, encoded);
  }

  /** Reads a chunk's bytes again after they were dropped; a CRC other than the first read's means the file changed. */
  async #reloadChunk(chunk: PreparedChunk, chunks: ChunkSource): Promise<void> {
    const again = await this.#prepareChunk(chunks, chunk.index, chunk.start, chunk.length, undefined);
    if (again.crc32 !== chunk.crc32) {
      again.release(chunks.buffers);
      throw new UploadError(
        'FILE_CHANGED',
        `${this.record.localPath} changed during its upload (chunk ` +
          `${chunk.index + 1} reads differently now); restarting it`,
      );
    }
    chunk.raw = again.raw;
    chunk.encoded = again.encoded;
  }

  /**
   * Sends one chunk with retries. After a failure that came after the whole body went out, asks
   * whether the server has it before re-sending.
   */
  async #sendChunk(
    session: OpenSession,
    prepared: PreparedChunk,
    chunks: ChunkSource,
    earlier?: { error: unknown; bodyLeft: boolean },
  ): Promise<void> {
    const record = this.record;
    const { index, length } = prepared;
    const what = `${record.localPath}: chunk ${index + 1} of ${session.chunkCount}`;
    let wholeBodySent = earlier?.bodyLeft ?? false;
    // The pipelined attempt that failed counts as the first: its failure is reported, waited
    // for (Retry-After, backoff) and classified as any attempt's.
    let firstFailure = earlier ? { error: earlier.error } : undefined;
    await this.#retrying(async (limits) => {
      if (firstFailure) {
        const { error } = firstFailure;
        firstFailure = undefined;
        throw error;
      }
      if (wholeBodySent) {
        wholeBodySent = false;
        const status = await this.#client().status(session.id, limits('init'), `${what}: status`);
        if (status.state !== 'complete' && status.received.includes(index)) return;
      }
      if (!prepared.encoded) await this.#reloadChunk(prepared, chunks);
      const encoded = present(prepared.encoded, "a chunk's encoded bytes after reading them again");
      const chunk = { index, body: encoded.body, encoding: encoded.encoding, crc32: prepared.crc32 };
      const scale = encoded.body.length > 0 ? length / encoded.body.length : 1;
      let sent = 0;
      record.bytesInFlight = 0;
      try {
        await this.#client().putChunk(
          session.id,
          chunk,
          this.#ctx.bucket,
          limits('chunk'),
          (bytes) => {
            sent += bytes;
            record.bytesInFlight = Math.min(length, Math.round(sent * scale));
            record.meter.add(Math.round(bytes * scale));
            this.#ctx.progress(record, false);
          },
          what,
        );
      } catch (error) {
        wholeBodySent = sent >= chunk.body.length && chunk.body.length > 0;
        record.bytesInFlight = 0;
        throw error;
      }
    });
  }

  async #complete(
    session: OpenSession,
    digests: { sha256: string; md5: string | undefined },
    version: FileVersion,
    chunks: ChunkSource,
  ): Promise<void> {
    const record = this.record;
    const what = `${record.localPath} → ${record.remotePath}: complete`;
    for (let round = 0; ; round += 1) {
      await this.#checkpoint();
      try {
        const asked = { path: record.remotePath, size: version.size, ...digests };
        const done = await this.#retrying((limits) => this.#client().complete(session.id, asked, limits('init'), what));
        this.#completed(done, version, false);
        return;
      } catch (error) {
        if (classifyFailure(error) !== 'repair' || round >= MAX_REPAIR_ROUNDS) throw error;
        const missing = (errorDetails(error).missing ?? []).filter(
          (index) => Number.isInteger(index) && index >= 0 && index < session.chunkCount,
        );
        if (
          missing.length === 0 ||
          (error instanceof UploadError &&
            error.code === 'FILE_CHECKSUM_MISMATCH' &&
            missing.length >= session.chunkCount)
        ) {
          // Every stored chunk passed its CRC, so the local file is not what was sent: start over.
          throw new UploadError(
            'FILE_CHANGED',
            `${record.localPath}: the server's copy failed the whole-file SHA-256 although ` +
              `every chunk passed its checksum (the file changed in place?); sending it again`,
            { cause: error },
          );
        }
        this.#ctx.logger.warn(
          { upload: record.localPath, missing },
          're-sending chunks the server reported missing or damaged',
        );
        for (const index of missing) {
          await this.#checkpoint();
          const start = index * session.chunkSize;
          const length = Math.max(0, Math.min(session.chunkSize, version.size - start));
          const chunk = await this.#prepareChunk(chunks, index, start, length, undefined);
          chunks.current = chunk;
          await this.#sendChunk(session, chunk, chunks);
          chunks.current = undefined;
          chunk.release(chunks.buffers);
        }
      }
    }
  }

  /** Between chunks: stop if asked, give the slot back while paused, and make sure the file did not change. */
  async #checkpoint(): Promise<void> {
    this.#soft.signal.throwIfAborted();
    if (this.#ctx.isPaused() && this.#slot) {
      this.#releaseSlot();
      this.record.phase = 'queued';
      this.#ctx.changed(this.record);
    }
    await this.#ensureSlot();
    await this.#source?.assertUnchanged();
  }

  /**
   * One request with retries; the slot is (re)acquired for each attempt and given back before
   * each wait. `handledByCaller`: failures the caller acts on at once instead of retrying.
   */
  async #retrying<T>(
    operation: (limits: LimitsFor) => Promise<T>,
    handledByCaller?: (error: unknown) => boolean,
  ): Promise<T> {
    const config = this.#config();
    const record = this.record;
    return retryRequest(
      async (attempt) => {
        await this.#ensureSlot();
        this.#soft.signal.throwIfAborted();
        record.attempt = attempt;
        if (record.phase !== 'uploading') {
          record.phase = 'uploading';
          this.#ctx.changed(record);
        }
        const value = await operation((kind) => this.#attemptLimits(kind));
        this.#ctx.reachable();
        return value;
      },
      {
        maxRetries: config.maxRetries,
        minDelayMs: config.retryDelay * 1000,
        maxDelayMs: config.retryMaxDelay * 1000,
        signal: this.#soft.signal,
        beforeWait: async () => {
          this.#releaseSlot();
          await this.#shed?.();
        },
        onRetry: (info) => this.#noteRetry(info),
        ...(handledByCaller ? { handledByCaller } : {}),
      },
    );
  }

  /** The limits of one request attempt, from the settings in force now. */
  #attemptLimits(kind: 'chunk' | 'init'): AttemptLimits {
    const now = this.#config();
    return {
      timeoutMs: (kind === 'chunk' ? now.uploadTimeout : now.initTimeout) * 1000,
      stalledMs: now.stalledTimeout * 1000,
      signal: this.#hard.signal,
      onStall: () => this.#ctx.stalled(this.record),
    };
  }

  #noteRetry(info: RetryInfo): void {
    const record = this.record;
    record.phase = 'retrying';
    record.lastError = info.reason;
    record.errorCode = info.error instanceof UploadError ? info.error.code : undefined;
    this.#ctx.journal().setError(record.id, record.errorCode, record.lastError);
    this.#ctx.retrying(record, info);
  }

  async #ensureSlot(): Promise<void> {
    if (this.#slot) return;
    // No chunk buffers held while waiting for a slot. (No await when there is nothing to shed: a
    // queued upload must ask for its slot at once, in queue order.)
    if (this.#shed) await this.#shed();
    this.#ctx.changed(this.record);
    this.#slot = await this.#ctx.slots.acquire(this.record.priority, this.record.seq, this.#soft.signal);
    this.record.holdsSlot = true;
    this.#ctx.changed(this.record);
  }

  #releaseSlot(): void {
    if (!this.#slot) return;
    this.#slot.release();
    this.#slot = undefined;
    this.record.holdsSlot = false;
  }

  async #hashLocally(source: SourceFile): Promise<string> {
    const sha = await sha256OfFile(source.handle, source.path, source.version.size, this.#soft.signal);
    await source.assertUnchanged();
    return sha;
  }

  /** Forgets the session locally (the journal's hint and the bytes counted as acknowledged). */
  #forgetSession(): void {
    this.record.session = undefined;
    this.record.bytesAcked = 0;
    this.#ctx.journal().clearSession(this.record.id);
  }

  /** Best effort: delete the server session (so a restart begins from nothing) and forget it. */
  async #dropSession(): Promise<void> {
    const record = this.record;
    const session = record.session;
    this.#forgetSession();
    if (!session) return;
    const config = this.#config();
    try {
      await this.#ctx
        .client()
        .cancel(
          session.id,
          { timeoutMs: config.initTimeout * 1000, stalledMs: config.stalledTimeout * 1000, signal: this.#hard.signal },
          `${record.localPath}: drop session`,
        );
    } catch (error) {
      this.#ctx.logger.debug(
        { upload: record.localPath, error: describeFailure(error) },
        'could not delete the old server session (it expires on its own)',
      );
    }
  }

  #completed(answer: CompletedFile, version: FileVersion, deduplicated: boolean): void {
    const record = this.record;
    const finishedAt = new Date().toISOString();
    // Recorded before anything changes or anyone is told (after-upload actions act on it). When
    // the journal cannot be written (state disk full), the upload keeps this answer and waits
    // (blocked); it records it once the journal can be written again.
    this.#verified = { answer, version, deduplicated };
    this.#ctx.journal().markCompleted(
      { id: record.id, sha256: answer.sha256, finishedAt, startedAt: record.startedAt },
      {
        localPath: record.localPath,
        remotePath: record.remotePath,
        server: this.#client().serverHref,
        size: version.size,
        mtimeMs: version.mtimeMs,
        sha256: answer.sha256,
        completedAt: finishedAt,
      },
    );
    this.#verified = undefined;
    record.phase = 'completed';
    record.sha256 = answer.sha256;
    record.finishedAt = finishedAt;
    record.bytesTotal = version.size;
    record.bytesAcked = version.size;
    record.bytesInFlight = 0;
    record.lastError = undefined;
    record.errorCode = undefined;
    record.deduplicated = deduplicated;
    record.session = undefined;
    this.#releaseSlot();
    this.#ctx.completed(record, deduplicated);
  }

  #fail(error: unknown): void {
    const record = this.record;
    const failure =
      error instanceof UploadError
        ? error
        : new UploadError('INTERNAL', `${record.localPath}: ${describeFailure(error)}`, { cause: error });
    record.phase = 'failed';
    record.lastError = failure.message;
    record.errorCode = failure.code;
    record.finishedAt = new Date().toISOString();
    record.bytesInFlight = 0;
    this.#releaseSlot();
    try {
      this.#ctx.journal().markFailed(record.id, failure.code, failure.message, record.finishedAt);
    } catch (error) {
      // The failure stays in memory; after a restart the file is simply tried again.
      this.#ctx.logger.error(
        { upload: record.localPath, error: describeFailure(error) },
        'could not record the failure in the journal',
      );
    }
    this.#ctx.failed(record, failure);
  }

  #config(): EngineConfig {
    return this.#ctx.config();
  }
}

/**
 * A native call answered as a server without the native API answers it: 404 for no such route
 * (ROUTE_NOT_FOUND) or not our JSON at all, or 405 (a route that takes no POST). A 404 naming a
 * session or a file means what it says.
 */
function noNativeApi(error: unknown): boolean {
  const { status, serverCode } = errorDetails(error);
  if (status === 405) return true;
  return status === 404 && (serverCode === undefined || serverCode === 'ROUTE_NOT_FOUND');
}
