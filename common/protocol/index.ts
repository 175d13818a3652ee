export * from './native-protocol.js';
export * from './chunk-checksum.js';
export * from './fingerprint.js';
export * from './relative-path.js';
