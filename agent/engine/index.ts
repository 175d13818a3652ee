/**
 * `ros2-upload-agent/engine`: the upload engine alone, for a program that decides itself what to
 * upload (no watcher, no ROS). Everything here is also what the package root exports of the
 * engine, plus its option specs and the priority bounds.
 *
 * - `NetworkManager`: queue files, stream them in verified chunks, resume after any crash;
 *   `onIdle()` / `whenSettled(ids)` say when it is done.
 * - `engineOptions` / `engineOptionSpecs`: its settings, defined once (flags, environment
 *   variables `UPLOAD_AGENT_*`, config keys), e.g. `engineOptions.fromEnv(process.env)`.
 * - `MIN_PRIORITY`, `MAX_PRIORITY`, `DEFAULT_PRIORITY`: 1 goes first, 10 last, 5 by default.
 * - Types: its options, `addUploads()` results, events and the snapshot of an upload.
 */
export { NetworkManager, type CancelOptions, type NetworkManagerOptions } from './network-manager.js';
export type { AddUploadOptions, AddUploadResult } from './upload-request.js';
export { engineOptionSpecs, engineOptions, type EngineConfig } from './engine-options.js';
export { DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY } from './queue/upload-queue.js';
export type {
  CompletedEvent,
  FailedEvent,
  NetworkManagerEvents,
  ProgressEvent,
  RetryingEvent,
  UploadSnapshot,
  UploadState,
} from './upload-events.js';
