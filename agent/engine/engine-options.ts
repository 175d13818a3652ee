import { defineOptions, option, type ConfigOf } from '../../common/config/index.js';
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../../common/protocol/native-protocol.js';

/**
 * The upload engine's settings, defined once. They mirror the legacy dashboard's NetworkManager
 * knobs in camelCase (durations in seconds, as that client's are). The CLI flags, environment variables
 * (`UPLOAD_AGENT_*`) and ROS parameters (snake_case) are derived from these specs.
 */
export const engineOptionSpecs = {
  serverUrl: option.string({
    doc:
      'Base URL of the receiving server, e.g. https://uploads.example.com:8080 (a trailing /upload, ' +
      'as in the legacy dashboard client, is accepted); unset: http://127.0.0.1:8080',
    format: 'url',
    // `--server` is the short flag; `uploadUrl` is the Python NetworkManager's upload_url; a
    // config file's `server:` key reads like the section of the server's settings, so it warns.
    aliases: [{ flag: 'server' }, { key: 'uploadUrl' }, { key: 'server', deprecated: true }],
  }),
  token: option.string({
    doc:
      'Bearer token that identifies this robot to the server; prefer tokenFile or the environment ' +
      '(a --token flag is visible to local users in /proc)',
    secret: true,
  }),
  tokenFile: option.string({
    doc:
      'File holding the bearer token (its first line); refused when group or others can access it ' +
      '(chmod 600), as ssh does',
    format: 'path',
  }),
  uploadTimeout: option.duration({
    doc: 'Longest time one chunk request may take (time spent waiting for the bandwidth limit does not count)',
    default: 300,
    min: 0.01,
  }),
  initTimeout: option.duration({
    doc: 'Timeout for connecting, creating and completing an upload',
    default: 10,
    min: 0.01,
  }),
  stalledTimeout: option.duration({
    doc: 'Abort and retry a request that moved no bytes for this long',
    default: 60,
    min: 0.01,
  }),
  maxRetries: option.integer({
    doc: 'Retries of one chunk before the file goes back to the queue (or fails, on a permanent error)',
    default: 5,
    min: 0,
    max: 100,
  }),
  retryDelay: option.duration({
    doc: 'First retry delay; it doubles with each retry (with jitter) up to retryMaxDelay',
    default: 1,
    min: 0.001,
    max: 3600,
  }),
  retryMaxDelay: option.duration({
    doc:
      'Longest retry delay; also how long a file that ran out of retries waits in ' +
      'the queue, and the longest interval of the reachability probe while offline',
    default: 60,
    min: 0.001,
    max: 86400,
  }),
  maxConcurrentUploads: option.integer({
    doc: 'Files uploaded at the same time (small files share a slot: see smallFilesPerSlot)',
    default: 2,
    min: 1,
    max: 64,
  }),
  smallFilesPerSlot: option.integer({
    doc:
      'Small files (up to 1 MiB, each sent whole in one request) that share one upload slot, ' +
      'next in queue order, together at most one chunk; 1: one file per slot',
    default: 8,
    min: 1,
    max: 64,
  }),
  maxChunksInFlight: option.integer({
    doc:
      "Most chunk requests of one file awaiting the server's answer at once; the engine adapts below " +
      'this to the measured round trip, so long links stay full (1: each chunk waits for the one before)',
    default: 16,
    min: 1,
    max: 64,
  }),
  bandwidthLimit: option.size({
    doc: 'Upload rate limit in bytes/s shared by all uploads; 0 means unlimited',
    default: 0,
    min: 0,
  }),
  chunkSize: option.size({
    doc: 'Chunk size (the server may impose its own on a resumed session)',
    default: DEFAULT_CHUNK_SIZE,
    min: MIN_CHUNK_SIZE,
    max: MAX_CHUNK_SIZE,
  }),
  stateDir: option.string({
    doc: 'Directory of the persistent journal (SQLite)',
    format: 'path',
    default: '~/.local/state/ros2-upload-agent',
  }),
  transferCompression: option.boolean({
    doc: 'gzip chunks on the wire when that pays (never for .zst/.gz/... or incompressible data)',
    default: false,
  }),
  caFile: option.string({ doc: 'PEM file of a CA to trust for https (self-signed servers)', format: 'path' }),
  clientCert: option.string({ doc: 'PEM client certificate for mutual TLS', format: 'path' }),
  clientKey: option.string({ doc: 'PEM private key of the client certificate', format: 'path', secret: true }),
  stopTimeout: option.duration({
    doc: 'How long stop() lets in-flight chunks finish before aborting them',
    default: 5,
    min: 0,
  }),
};

export const engineOptions = defineOptions(engineOptionSpecs, { envPrefix: 'UPLOAD_AGENT_' });

/** The engine's validated settings. */
export type EngineConfig = ConfigOf<typeof engineOptionSpecs>;
