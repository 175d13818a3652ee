import type {
  ChunkResponse,
  CompletedFile,
  CreateSessionRequest,
  CreateSessionResponse,
  SessionStatusResponse,
} from '../../../common/protocol/native-protocol.js';
import type { TokenBucket } from '../throttle/token-bucket.js';
import type { AskedFile } from './answer-check.js';
import type { AttemptLimits } from './http-transport.js';
import type { OutgoingChunk, OutgoingFile, PutFileResult } from './session-client.js';

/** Which of a server's APIs a transport speaks. */
export type ServerApi = 'native' | 'legacy';

/** What completing a session must name: path, size and SHA-256, and the MD5 where the API checks one. */
export interface FinishedFile extends Required<AskedFile> {
  md5?: string | undefined;
}

/**
 * The calls one file's upload makes, in the native protocol's terms (docs/http-api.md), one
 * attempt each: SessionClient speaks the native protocol, LegacyClient maps them onto the legacy
 * dashboard API. Retrying, hashing, throttling and the watchdogs stay with the caller, so both
 * get the same machinery.
 */
export interface UploadTransport {
  readonly api: ServerApi;
  readonly serverHref: string;
  /** Whether a small file may go whole in one request (PUT /v1/files). */
  readonly wholeFiles: boolean;
  /** Whether completing needs the file's MD5 (the legacy API checks one, and no SHA-256). */
  readonly needsMd5: boolean;
  /** Whether chunks may go gzip-encoded on the wire. */
  readonly transferEncoding: boolean;
  /** Remembers that this server has no whole-file route. */
  noWholeFiles(): void;
  /**
   * Creates a session for the file, or resumes one: the native API finds it by path, size and
   * fingerprint; the legacy API only by the id it gave (`resumeId`, from the journal).
   */
  create(
    request: CreateSessionRequest,
    limits: AttemptLimits,
    what: string,
    resumeId?: string,
  ): Promise<CreateSessionResponse>;
  status(id: string, limits: AttemptLimits, what: string): Promise<SessionStatusResponse>;
  putChunk(
    id: string,
    chunk: OutgoingChunk,
    bucket: TokenBucket,
    limits: AttemptLimits,
    onBytes: (bytes: number) => void,
    what: string,
    onSent?: () => void,
  ): Promise<ChunkResponse>;
  putFile(
    file: OutgoingFile,
    bucket: TokenBucket,
    limits: AttemptLimits,
    onBytes: (bytes: number) => void,
    what: string,
  ): Promise<PutFileResult>;
  /** Completes a session; the answer must name `file` (else ANSWER_MISMATCH). */
  complete(id: string, file: FinishedFile, limits: AttemptLimits, what: string): Promise<CompletedFile>;
  cancel(id: string, limits: AttemptLimits, what: string): Promise<void>;
}
