/**
 * ros2-upload-agent as a library: the upload engine, the receiving server, and the one error
 * class both use. This is the whole root API; each part has more in its own entry point:
 * `ros2-upload-agent/engine`, `ros2-upload-agent/server`, `ros2-upload-agent/protocol`.
 *
 * The upload engine (agent/engine/):
 * - `NetworkManager`: queues files and gets them to a server, complete and verified, over bad
 *   links and across crashes; `onIdle()` and `whenSettled(ids)` say when it is done.
 * - `engineOptions`: its settings, defined once; `engineOptions.fromEnv(process.env)` reads the
 *   same `UPLOAD_AGENT_*` variables as the agent program.
 * - Types: `NetworkManagerOptions`, `AddUploadOptions`, `AddUploadResult`, `CancelOptions`,
 *   `EngineConfig`, the events (`NetworkManagerEvents`, `ProgressEvent`, `RetryingEvent`,
 *   `CompletedEvent`, `FailedEvent`) and an upload's state (`UploadSnapshot`, `UploadState`).
 *
 * The receiving server (server/):
 * - `createUploadServer(options)`: listens and serves the native and the legacy dashboard API.
 * - `createUploadHandler(options)`: the same as a request handler, to mount in an existing
 *   Express or node:http server (`handler.handle(req, res, next)`).
 * - Both expose `events` (typed: `UploadEvents`, e.g. `file-completed` with a `FileCompletedEvent`),
 *   for hooks that start indexing or conversion when a file is stored.
 * - `serverOptions`: its settings, defined once (`serverOptions.fromEnv(process.env)` reads the
 *   server program's variables).
 * - Types: `UploadServer`, `UploadServerOptions`, `UploadHandler`, `UploadHandlerOptions`,
 *   `ServerConfig`, `UploadEvents`, `UploadEventName`, `FileCompletedEvent`.
 *
 * Errors (common/errors/, common/protocol/errors/):
 * - `UploadError`: every failure, with a stable `code`, `details` typed by code and `kind`:
 *   `'wire'` for a code a server sends (`wireErrorCodes`), `'local'` for one a program raises for
 *   itself (`localErrorCodes`); `errorCodes` is both, with what each means.
 * - `isUploadError(value, code?)` narrows to an UploadError (of that code).
 * - Types: `UploadErrorCode`, `WireErrorCode`, `LocalErrorCode`, `ErrorDetails`.
 *
 * Not exported: the option framework's helpers (units, parsing), storage and HTTP internals, the
 * watcher, the agent program and the ROS node; they are the programs' own and may change.
 */
export {
  NetworkManager,
  engineOptions,
  type AddUploadOptions,
  type AddUploadResult,
  type CancelOptions,
  type CompletedEvent,
  type EngineConfig,
  type FailedEvent,
  type NetworkManagerEvents,
  type NetworkManagerOptions,
  type ProgressEvent,
  type RetryingEvent,
  type UploadSnapshot,
  type UploadState,
} from './agent/engine/index.js';
export {
  createUploadHandler,
  createUploadServer,
  serverOptions,
  type FileCompletedEvent,
  type ServerConfig,
  type UploadEventName,
  type UploadEvents,
  type UploadHandler,
  type UploadHandlerOptions,
  type UploadServer,
  type UploadServerOptions,
} from './server/index.js';
export {
  UploadError,
  errorCodes,
  isUploadError,
  type ErrorDetails,
  type UploadErrorCode,
} from './common/errors/upload-error.js';
export { localErrorCodes, type LocalErrorCode } from './common/errors/local-errors.js';
export { wireErrorCodes, type WireErrorCode } from './common/protocol/errors/wire-errors.js';
