/**
 * ros2-upload-agent as a library: the receiving server, the upload engine, the shared
 * configuration schema, protocol types and errors.
 */
export * from './common/errors/upload-error.js';
export * from './common/protocol/index.js';
export * from './common/config/index.js';
export { engineOptionSpecs, engineOptions } from './agent/engine/engine-options.js';
export type * from './agent/engine/upload-events.js';
export type * from './agent/app/agent-controller.js';
export { createUploadServer, serverOptions, serverOptionSpecs, LocalDiskStorage, isLoopback } from './server/index.js';
export type { UploadServer, UploadServerOptions, ServerConfig, UploadStorage } from './server/index.js';
export { NetworkManager } from './agent/engine/network-manager.js';
export type { NetworkManagerOptions, AddUploadOptions, CancelOptions } from './agent/engine/network-manager.js';
export type { EngineConfig } from './agent/engine/engine-options.js';
