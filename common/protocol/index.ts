/**
 * `ros2-upload-agent/protocol`: the native protocol's wire contract (written down in the HTTP API
 * documentation), for a client or a server of one's own. Both sides of this package use exactly
 * these names.
 *
 * - Constants: `PROTOCOL_VERSION`, `API_PREFIX`, the default server address, chunk size bounds,
 *   the whole-file, metadata and path limits; `routes` (paths) and `headers` (names).
 * - Request and answer types of every route, and `ErrorResponse`.
 * - Error codes a server sends: `wireErrorCodes` (with their meaning), `wireErrorStatus` (the
 *   HTTP status of each), `isWireErrorCode`, `WireErrorDetails`.
 * - Helpers both sides must compute alike: the chunk checksum (`Crc32`, `formatChunkChecksum`,
 *   `parseChunkChecksum`), the request checksum (`requestChecksum`, `checkRequestChecksum`,
 *   `canonicalRequestText`), the file fingerprint (`fingerprintFile`, `isFingerprint`), and the
 *   relative path rules (`normaliseRelativePath`, which throws an UploadError INVALID_PATH).
 */
export {
  API_PREFIX,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_SERVER_HOST,
  DEFAULT_SERVER_PORT,
  MAX_CHUNK_COUNT,
  MAX_CHUNK_SIZE,
  MAX_METADATA_BYTES,
  MAX_PATH_BYTES,
  MAX_SEGMENT_BYTES,
  MAX_WHOLE_FILE_SIZE,
  MIN_CHUNK_SIZE,
  PROTOCOL_VERSION,
  headers,
  routes,
  type ChunkResponse,
  type CompleteRequest,
  type CompleteResponse,
  type CompletedFile,
  type CreateSessionRequest,
  type CreateSessionResponse,
  type ErrorResponse,
  type HealthResponse,
  type OpenSession,
  type PutFileResponse,
  type SessionStatusResponse,
} from './native-protocol.js';
export {
  isWireErrorCode,
  wireErrorCodes,
  wireErrorStatus,
  type WireErrorCode,
  type WireErrorDetails,
} from './errors/wire-errors.js';
export { Crc32, formatChunkChecksum, parseChunkChecksum } from './chunk-checksum.js';
export { fingerprintFile, isFingerprint } from './fingerprint.js';
export {
  canonicalRequestText,
  checkRequestChecksum,
  requestChecksum,
  type RequestToCheck,
} from './request-checksum.js';
export { normaliseRelativePath } from './relative-path.js';
