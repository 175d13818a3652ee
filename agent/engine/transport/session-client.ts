import {
  headers as protocolHeaders,
  routes,
  type ChunkResponse,
  type CompletedFile,
  type CompleteResponse,
  type CreateSessionRequest,
  type CreateSessionResponse,
  type HealthResponse,
  type OpenSession,
  type PutFileResponse,
  type SessionStatusResponse,
} from '../../../common/protocol/native-protocol.js';
import { formatChunkChecksum } from '../../../common/protocol/chunk-checksum.js';
import { UploadError } from '../../../common/errors/upload-error.js';
import { checkAnswer } from './answer-check.js';
import { errorDetails } from './http-errors.js';
import type { TokenBucket } from '../throttle/token-bucket.js';
import type { AttemptLimits, HttpResponse, HttpTransport } from './http-transport.js';
import { throttledBody } from './throttled-body.js';
import type { FinishedFile, UploadTransport } from './upload-transport.js';

/** One chunk ready to go: its wire bytes, their encoding and the CRC of the decoded bytes. */
export interface OutgoingChunk {
  index: number;
  body: Buffer;
  encoding: 'gzip' | 'identity';
  crc32: number;
  /**
   * The SHA-256 of the file through this chunk, when known: a server that receives the chunk next
   * in order checks it against this (its hash of the file is computed anyway) instead of
   * computing the CRC-32.
   */
  prefixSha256?: string | undefined;
}

/** A whole small file ready to go (PUT /v1/files/<path>). */
export interface OutgoingFile {
  path: string;
  /** The file's size (the decoded bytes). */
  size: number;
  /** The wire bytes (gzip-encoded or not). */
  body: Buffer;
  encoding: 'gzip' | 'identity';
  /** SHA-256 of the file (the decoded bytes). */
  sha256: string;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
}

/** The answer to a whole-file PUT: 201 stored now, 200 already stored (nothing changed). */
export interface PutFileResult {
  status: number;
  file: PutFileResponse;
}

/**
 * The longest `x-upload-metadata` header sent (base64url). Node servers refuse request headers
 * over 16 KiB in total; larger metadata goes in a session's JSON body instead.
 */
export const MAX_METADATA_HEADER = 8 * 1024;

/**
 * The native protocol's calls (docs/http-api.md), one attempt each; retrying is the caller's
 * job (retry/). Answers are checked for the fields the engine relies on, and every answer that
 * names a stored file (or the file of a session) must name the one asked for (answer-check.ts).
 */
export class SessionClient implements UploadTransport {
  readonly api = 'native';
  readonly needsMd5 = false;
  readonly transferEncoding = true;
  readonly #http: HttpTransport;
  #wholeFiles = true;

  constructor(http: HttpTransport) {
    this.#http = http;
  }

  /** False once this server showed it has no PUT /v1/files route (an older server): sessions only. */
  get wholeFiles(): boolean {
    return this.#wholeFiles;
  }

  /** Remembers that this server has no whole-file route. */
  noWholeFiles(): void {
    this.#wholeFiles = false;
  }

  get serverHref(): string {
    return this.#http.base.href;
  }

  /** Create-or-resume: the server finds an open session by uploader, path, size and fingerprint (no id needed). */
  async create(request: CreateSessionRequest, limits: AttemptLimits, what: string): Promise<CreateSessionResponse> {
    const { body } = await this.#http.json<CreateSessionResponse>('POST', routes.sessions, request, limits, what);
    const answer = checkSessionAnswer(body, what);
    checkAnswer(what, { path: request.path, size: request.size, sha256: request.sha256 }, answer);
    return answer;
  }

  async status(id: string, limits: AttemptLimits, what: string): Promise<SessionStatusResponse> {
    const { body } = await this.#http.json<SessionStatusResponse>('GET', routes.session(id), undefined, limits, what);
    if (!body || typeof body !== 'object' || typeof (body as { state?: unknown }).state !== 'string')
      throw protocolError(what, body);
    if (body.state !== 'complete' && !Array.isArray(body.received)) throw protocolError(what, body);
    return body;
  }

  /** PUT one chunk, streamed through the shared throttle. */
  async putChunk(
    id: string,
    chunk: OutgoingChunk,
    bucket: TokenBucket,
    limits: AttemptLimits,
    onBytes: (bytes: number) => void,
    what: string,
    /** Called once the whole body left (its buffer may then be reused; see throttledBody). */
    onSent?: () => void,
  ): Promise<ChunkResponse> {
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(chunk.body.length),
      'x-chunk-checksum': formatChunkChecksum(chunk.crc32),
    };
    if (chunk.encoding === 'gzip') headers['content-encoding'] = 'gzip';
    if (chunk.prefixSha256 !== undefined) headers[protocolHeaders.chunkPrefixSha256] = chunk.prefixSha256;
    const { body } = await this.#http.request<ChunkResponse>(
      'PUT',
      routes.chunk(id, chunk.index),
      headers,
      (watchdog, signal) => throttledBody(chunk.body, bucket, watchdog, signal, onBytes, onSent),
      limits,
      what,
    );
    if (!body || typeof body !== 'object' || body.index !== chunk.index) throw protocolError(what, body);
    return body;
  }

  /**
   * A whole small file in one request, streamed through the shared throttle. The server
   * verifies the body against `sha256` before anything becomes visible; its 422 (the body was
   * damaged on the way) is reported as CHUNK_CHECKSUM_MISMATCH, which is retried like a damaged
   * chunk: here the whole file is the one chunk.
   */
  async putFile(
    file: OutgoingFile,
    bucket: TokenBucket,
    limits: AttemptLimits,
    onBytes: (bytes: number) => void,
    what: string,
  ): Promise<PutFileResult> {
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(file.body.length),
      [protocolHeaders.contentSha256]: file.sha256,
    };
    if (file.encoding === 'gzip') headers['content-encoding'] = 'gzip';
    const metadata = metadataHeader(file.metadata);
    if (metadata !== undefined) headers[protocolHeaders.uploadMetadata] = metadata;
    if (file.replace) headers[protocolHeaders.uploadReplace] = 'true';
    let answer: HttpResponse<PutFileResponse>;
    try {
      answer = await this.#http.request<PutFileResponse>(
        'PUT',
        routes.file(file.path),
        headers,
        (watchdog, signal) => throttledBody(file.body, bucket, watchdog, signal, onBytes),
        limits,
        what,
      );
    } catch (error) {
      const details = errorDetails(error);
      if (error instanceof UploadError && details.status === 422 && error.code === 'FILE_CHECKSUM_MISMATCH') {
        throw new UploadError(
          'CHUNK_CHECKSUM_MISMATCH',
          `${what}: the server found a different SHA-256 in the body (damaged on the way); sending it again`,
          { cause: error, details: { ...details } },
        );
      }
      throw error;
    }
    const body = answer.body;
    if (!body || body.state !== 'complete' || typeof body.sha256 !== 'string' || typeof body.size !== 'number')
      throw protocolError(what, body);
    checkAnswer(what, { path: file.path, size: file.size, sha256: file.sha256 }, body);
    return { status: answer.status, file: body };
  }

  /** Completes a session for `file` (its path, size and SHA-256, which the answer must name). */
  async complete(id: string, file: FinishedFile, limits: AttemptLimits, what: string): Promise<CompleteResponse> {
    const { body } = await this.#http.json<CompleteResponse>(
      'POST',
      routes.complete(id),
      { sha256: file.sha256 },
      limits,
      what,
    );
    if (!body || body.state !== 'complete' || typeof body.sha256 !== 'string') throw protocolError(what, body);
    checkAnswer(what, { path: file.path, size: file.size, sha256: file.sha256 }, body);
    return body;
  }

  async cancel(id: string, limits: AttemptLimits, what: string): Promise<void> {
    await this.#http.json<unknown>('DELETE', routes.session(id), undefined, limits, what);
  }

  async health(limits: AttemptLimits): Promise<HealthResponse> {
    const { body } = await this.#http.json<HealthResponse>(
      'GET',
      routes.health,
      undefined,
      limits,
      `health check of ${this.serverHref}`,
    );
    return body;
  }
}

/** The metadata as the whole-file header carries it; undefined when there is none. */
export function metadataHeader(metadata: Record<string, unknown> | undefined): string | undefined {
  return metadata === undefined ? undefined : Buffer.from(JSON.stringify(metadata)).toString('base64url');
}

function checkSessionAnswer(body: CreateSessionResponse | undefined, what: string): CreateSessionResponse {
  if (!body || typeof body !== 'object') throw protocolError(what, body);
  if (body.state === 'complete') {
    if (typeof body.sha256 !== 'string' || typeof body.size !== 'number') throw protocolError(what, body);
    return body satisfies CompletedFile;
  }
  if (body.state !== 'open') throw protocolError(what, body);
  const open: OpenSession = body;
  if (
    typeof open.id !== 'string' ||
    !Number.isInteger(open.chunkSize) ||
    open.chunkSize <= 0 ||
    !Number.isInteger(open.chunkCount) ||
    !Array.isArray(open.received)
  ) {
    throw protocolError(what, body);
  }
  return open;
}

/** An answer the agent cannot use (missing or ill-typed fields): PROTOCOL, with the start of the answer. */
export function protocolError(what: string, body: unknown): UploadError {
  const text = JSON.stringify(body) ?? String(body);
  return new UploadError('PROTOCOL', `${what}: unexpected answer from the server: ${text.slice(0, 200)}`);
}
