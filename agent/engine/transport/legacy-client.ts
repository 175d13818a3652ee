import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { UploadError } from '../../../common/errors/upload-error.js';
import type {
  ChunkResponse,
  CompletedFile,
  CreateSessionRequest,
  OpenSession,
  SessionStatusResponse,
} from '../../../common/protocol/native-protocol.js';
import type { TokenBucket } from '../throttle/token-bucket.js';
import { errorDetails } from './http-errors.js';
import type { AttemptLimits, HttpTransport } from './http-transport.js';
import { protocolError, type OutgoingChunk, type OutgoingFile, type PutFileResult } from './session-client.js';
import { throttledBody } from './throttled-body.js';
import type { FinishedFile, UploadTransport } from './upload-transport.js';

/** The legacy API's chunk size: the Python dashboard's uploader sent 5 MiB chunks. */
export const LEGACY_CHUNK_SIZE = 5 * 1024 * 1024;

/** The legacy dashboard API's routes (docs/http-api.md, "The legacy dashboard API (v0)"). */
const legacyRoutes = {
  init: '/upload/init',
  chunk: '/upload/chunk',
  finalize: '/upload/finalize',
  status: (id: string) => `/upload/status/${encodeURIComponent(id)}`,
};

/** What this client knows of a session it created or resumed (the legacy answers do not repeat it). */
interface KnownSession {
  path: string;
  size: number;
  chunkCount: number;
}

/**
 * The upload calls mapped onto the legacy dashboard API, for a server that offers nothing else:
 * init (JSON), chunks as multipart forms (`upload_id`, `chunk_index`, `chunk_total`, file part
 * `chunk`) of LEGACY_CHUNK_SIZE bytes, finalize (JSON, with the file's MD5). The same bearer
 * token, throttle and watchdogs as the native client (one HttpTransport). What the legacy API
 * lacks, and what stands in for it:
 * - no per-chunk checksum: a chunk damaged on the way is only found by the MD5 at finalize,
 *   which cannot say which chunk; the answer is mapped to CHUNKS_MISSING listing every chunk,
 *   so the runner re-sends them all (re-sending replaces a chunk) and finalizes again;
 * - no request checksum, no SHA-256 (unless the server adds one to its answer, as ours does);
 * - no lookup by file: a session is resumed only by the upload_id the journal kept
 *   (GET /upload/status/<id> lists the chunks held); without it the file starts over;
 * - no cancel: an abandoned session expires on the server;
 * - an unknown upload_id is 400 on chunk and finalize: the status route tells it apart from a
 *   damaged request, and it becomes SESSION_NOT_FOUND (the file starts over).
 */
export class LegacyClient implements UploadTransport {
  readonly api = 'legacy';
  readonly wholeFiles = false;
  readonly needsMd5 = true;
  readonly transferEncoding = false;
  readonly #http: HttpTransport;
  readonly #sessions = new Map<string, KnownSession>();

  constructor(http: HttpTransport) {
    this.#http = http;
  }

  get serverHref(): string {
    return this.#http.base.href;
  }

  noWholeFiles(): void {
    // The legacy API has no whole-file route: never used.
  }

  async create(
    request: CreateSessionRequest,
    limits: AttemptLimits,
    what: string,
    resumeId?: string,
  ): Promise<OpenSession> {
    const chunkCount = Math.max(1, Math.ceil(request.size / LEGACY_CHUNK_SIZE));
    const known = { path: request.path, size: request.size, chunkCount };
    if (resumeId !== undefined) {
      const resumed = await this.#resume(resumeId, known, limits, what);
      if (resumed) return resumed;
    }
    const { body } = await this.#http.json<Record<string, unknown>>(
      'POST',
      legacyRoutes.init,
      {
        filename: request.path,
        filesize: request.size,
        chunks: chunkCount,
        ...(request.metadata ? { metadata: request.metadata } : {}),
        compression: request.compress === true,
      },
      limits,
      `${what}: init (legacy API)`,
    );
    if (body?.success !== true || typeof body.upload_id !== 'string' || body.upload_id === '')
      throw protocolError(`${what}: init (legacy API)`, body);
    this.#sessions.set(body.upload_id, known);
    return openSession(body.upload_id, known, [], false);
  }

  async status(id: string, limits: AttemptLimits, what: string): Promise<SessionStatusResponse> {
    const known = this.#sessions.get(id);
    if (!known) throw new UploadError('SESSION_NOT_FOUND', `${what}: upload ${id} is not one of this agent's`);
    const held = await this.#held(id, known, limits, `${what} (legacy API)`);
    if (!held) throw new UploadError('SESSION_NOT_FOUND', `${what}: the server no longer knows upload ${id}`);
    return openSession(id, known, held, true);
  }

  async putChunk(
    id: string,
    chunk: OutgoingChunk,
    bucket: TokenBucket,
    limits: AttemptLimits,
    onBytes: (bytes: number) => void,
    what: string,
    onSent?: () => void,
  ): Promise<ChunkResponse> {
    const known = this.#sessions.get(id);
    if (!known) throw new UploadError('SESSION_NOT_FOUND', `${what}: upload ${id} is not one of this agent's`);
    if (chunk.encoding !== 'identity')
      throw new UploadError('INTERNAL', `${what}: the legacy API takes no encoded chunks`);
    const boundary = `----ros2-upload-agent-${randomBytes(12).toString('hex')}`;
    const field = (name: string, value: string): string =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const head = Buffer.from(
      field('upload_id', id) +
        field('chunk_index', String(chunk.index)) +
        field('chunk_total', String(known.chunkCount)) +
        `--${boundary}\r\nContent-Disposition: form-data; name="chunk"; filename="chunk_${chunk.index}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const headers = {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + chunk.body.length + tail.length),
    };
    const step = `${what} (legacy API)`;
    let body: Record<string, unknown> | undefined;
    try {
      ({ body } = await this.#http.request<Record<string, unknown>>(
        'POST',
        legacyRoutes.chunk,
        headers,
        (watchdog, signal) => framed(head, throttledBody(chunk.body, bucket, watchdog, signal, onBytes, onSent), tail),
        limits,
        step,
      ));
    } catch (error) {
      throw await this.#sessionGone(error, id, known, limits, step);
    }
    if (
      body?.success !== true ||
      (body.chunk_index !== undefined && Number(body.chunk_index) !== chunk.index) ||
      (body.total_chunks !== undefined && Number(body.total_chunks) !== known.chunkCount)
    )
      throw protocolError(step, body);
    return {
      index: chunk.index,
      receivedCount: Number(body.received_chunks ?? 0),
      chunkCount: known.chunkCount,
      duplicate: body.duplicate === true,
    };
  }

  putFile(_file: OutgoingFile, _b: TokenBucket, _l: AttemptLimits, _o: (n: number) => void, what: string) {
    return Promise.reject<PutFileResult>(
      new UploadError('INTERNAL', `${what}: the legacy API has no whole-file route (wholeFiles is false)`),
    );
  }

  /**
   * POST /upload/finalize with the MD5. Counted as uploaded only when the answer says success and
   * names the same MD5, and the same size, SHA-256 and path wherever it gives them (a path may
   * carry the legacy API's ".<n>" before the extension: it never overwrites a different file).
   */
  async complete(id: string, file: FinishedFile, limits: AttemptLimits, what: string): Promise<CompletedFile> {
    const known = this.#sessions.get(id);
    if (!known) throw new UploadError('SESSION_NOT_FOUND', `${what}: upload ${id} is not one of this agent's`);
    if (file.md5 === undefined) throw new UploadError('INTERNAL', `${what}: the legacy API's finalize needs an MD5`);
    const step = `${what} (legacy API finalize)`;
    let body: Record<string, unknown> | undefined;
    try {
      ({ body } = await this.#http.json<Record<string, unknown>>(
        'POST',
        legacyRoutes.finalize,
        { upload_id: id, checksum: file.md5 },
        limits,
        step,
      ));
    } catch (error) {
      if (error instanceof UploadError && error.code === 'FILE_CHECKSUM_MISMATCH') {
        // Every chunk arrived but the file's MD5 differs: a chunk was damaged on the way, and
        // the legacy API has no per-chunk checksum to say which. Re-send them all (the session
        // stays open on the server; a re-sent chunk replaces the old one).
        throw new UploadError(
          'CHUNKS_MISSING',
          `${step}: the server's copy fails the MD5 (a chunk was damaged on the way; the legacy API cannot ` +
            `say which): re-sending all ${known.chunkCount} chunks`,
          { cause: error, details: { ...errorDetails(error), missing: allIndexes(known.chunkCount) } },
        );
      }
      throw await this.#sessionGone(error, id, known, limits, step);
    }
    if (body?.success !== true) throw protocolError(step, body);
    const differences: string[] = [];
    if (body.checksum !== file.md5) differences.push(`MD5 ${JSON.stringify(body.checksum)} (sent: ${file.md5})`);
    if (body.size !== undefined && body.size !== file.size)
      differences.push(`size ${String(body.size)} (sent: ${file.size})`);
    if (body.sha256 !== undefined && body.sha256 !== file.sha256)
      differences.push(`SHA-256 ${String(body.sha256)} (sent: ${file.sha256})`);
    if (body.file_path !== undefined && !namesPath(body.file_path, file.path))
      differences.push(`file_path ${JSON.stringify(body.file_path)} (sent: ${JSON.stringify(file.path)})`);
    if (differences.length > 0) {
      throw new UploadError(
        'ANSWER_MISMATCH',
        `${step}: the server answered for another file: ${differences.join(', ')}; ` +
          'not counted as uploaded (damaged on the way?), sending it again',
      );
    }
    this.#sessions.delete(id);
    return {
      state: 'complete',
      path: file.path,
      size: file.size,
      sha256: file.sha256,
      completedAt: new Date().toISOString(),
    };
  }

  async cancel(id: string): Promise<void> {
    // The legacy API cannot cancel: the server expires an abandoned session on its own.
    this.#sessions.delete(id);
  }

  /** A journaled upload_id the server still holds for this file: its chunks; else undefined (start over). */
  async #resume(
    id: string,
    known: KnownSession,
    limits: AttemptLimits,
    what: string,
  ): Promise<OpenSession | undefined> {
    const held = await this.#held(id, known, limits, `${what}: resume (legacy API)`);
    if (!held) return undefined;
    this.#sessions.set(id, known);
    return openSession(id, known, held, true);
  }

  /**
   * GET /upload/status/<id>: the indexes held, or undefined when the server does not know the
   * upload (404) or it is for another file (name or chunk count).
   */
  async #held(id: string, known: KnownSession, limits: AttemptLimits, what: string): Promise<number[] | undefined> {
    let body: Record<string, unknown> | undefined;
    try {
      ({ body } = await this.#http.json<Record<string, unknown>>(
        'GET',
        legacyRoutes.status(id),
        undefined,
        limits,
        what,
      ));
    } catch (error) {
      if (errorDetails(error).status === 404) return undefined;
      throw error;
    }
    if (body?.success !== true) throw protocolError(what, body);
    if (body.filename !== known.path || Number(body.total_chunks) !== known.chunkCount) return undefined;
    if (body.state === 'complete') return allIndexes(known.chunkCount);
    const indexes = body.received_indexes;
    // A server without the list (the Python dashboard's status has only a count): nothing is known held.
    if (!Array.isArray(indexes)) return [];
    return indexes.filter(
      (index): index is number => Number.isInteger(index) && index >= 0 && index < known.chunkCount,
    );
  }

  /**
   * A 400 or 404 on chunk or finalize may mean the server forgot the upload (expired, or its
   * answer to an unknown upload_id): the status route tells, and then it is SESSION_NOT_FOUND
   * (start the file over). Otherwise the error as it was.
   */
  async #sessionGone(
    error: unknown,
    id: string,
    known: KnownSession,
    limits: AttemptLimits,
    what: string,
  ): Promise<unknown> {
    const { status } = errorDetails(error);
    if (status !== 400 && status !== 404) return error;
    try {
      if (await this.#held(id, known, limits, `${what}: status`)) return error;
    } catch {
      return error;
    }
    this.#sessions.delete(id);
    return new UploadError('SESSION_NOT_FOUND', `${what}: the server no longer knows upload ${id}; starting over`, {
      cause: error,
      details: { ...errorDetails(error) },
    });
  }
}

function openSession(id: string, known: KnownSession, received: number[], resumed: boolean): OpenSession {
  return {
    state: 'open',
    id,
    path: known.path,
    size: known.size,
    chunkSize: LEGACY_CHUNK_SIZE,
    chunkCount: known.chunkCount,
    received,
    resumed,
    expiresAt: '',
  };
}

/** Whether a legacy `file_path` (`completed/<uploader>/<path>`) names `wanted`, or its `.<n>` unique variant. */
function namesPath(filePath: unknown, wanted: string): boolean {
  if (typeof filePath !== 'string') return false;
  if (filePath === wanted || filePath.endsWith(`/${wanted}`)) return true;
  const ext = path.posix.extname(wanted);
  const stem = wanted.slice(0, wanted.length - ext.length);
  const unique = new RegExp(`(^|/)${escapeRegExp(stem)}\\.\\d+${escapeRegExp(ext)}$`);
  return unique.test(filePath);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function allIndexes(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

async function* framed(head: Buffer, body: AsyncIterable<Uint8Array>, tail: Buffer): AsyncGenerator<Uint8Array> {
  yield head;
  yield* body;
  yield tail;
}
