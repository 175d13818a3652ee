/** The receiving server as a library. */
export { createUploadServer, isLoopback, type UploadServer, type UploadServerOptions } from './upload-server.js';
export { serverOptions, serverOptionSpecs, type ServerConfig } from './server-options.js';
export type { UploadStorage } from './storage/upload-storage.js';
export { LocalDiskStorage } from './storage/local-disk-storage.js';
export { httpStatusOf } from './http/error-status.js';
