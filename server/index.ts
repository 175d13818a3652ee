/** The receiving server as a library. */
export { createUploadServer, isLoopback, type UploadServer, type UploadServerOptions } from './upload-server.js';
export {
  createUploadHandler,
  type MountOptions,
  type RequestListener,
  type UploadHandler,
  type UploadHandlerOptions,
} from './upload-handler.js';
export { serverOptions, serverOptionSpecs, type ServerConfig } from './config/server-options.js';
export type {
  ChunkStoredEvent,
  FileCompletedEvent,
  SessionCancelledEvent,
  SessionCreatedEvent,
  SessionEventBase,
  SessionExpiredEvent,
  SessionFailedEvent,
  UploadEventMap,
  UploadEventName,
  UploadEvents,
} from './events/upload-events.js';
export type { PartPlace, SpoolRef, StoredFile, StoredFileInfo, UploadStorage } from './storage/upload-storage.js';
export { LocalDiskStorage } from './storage/local-disk-storage.js';
export type { CreateOrResumeOutcome, SessionStore } from './sessions/session-store.js';
export type {
  ChunkRecord,
  CompletionResult,
  FileRecord,
  SessionApi,
  SessionRecord,
  SessionState,
} from './sessions/session-record.js';
export { httpStatusOf } from './http/error-status.js';
