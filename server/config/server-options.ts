import { defineOptions, option, type ConfigOf } from '../../common/config/index.js';
import { DEFAULT_SERVER_HOST, DEFAULT_SERVER_PORT } from '../../common/protocol/native-protocol.js';

/**
 * Every setting of the receiving server, defined once. The CLI flags, the `UPLOAD_SERVER_*`
 * environment variables, the config file keys and docs/configuration.md all derive from these
 * specs by one rule. Older variable names stay accepted as aliases: SSL_CERT and SSL_KEY (the
 * legacy dashboard's deployment guide uses them) silently; HOST, PORT, UPLOAD_DIR, MAX_FILE_SIZE,
 * COMPRESSION_THRESHOLD and COMPRESSION_LEVEL (this server's first names) with a warning. Sizes
 * are bytes, durations seconds.
 */
export const serverOptionSpecs = {
  host: option.string({
    doc: 'Address to listen on; a non-loopback address requires tokens or --allow-anonymous',
    default: DEFAULT_SERVER_HOST,
    aliases: [{ env: 'HOST', deprecated: true }],
    ros: false,
  }),
  port: option.integer({
    doc: 'TCP port to listen on (0 picks a free one)',
    default: DEFAULT_SERVER_PORT,
    min: 0,
    max: 65535,
    aliases: [{ env: 'PORT', deprecated: true }],
    ros: false,
  }),
  uploadDir: option.string({
    doc: 'Storage root: holds temp/, completed/, compressed/ and state/ (the session database)',
    format: 'path',
    default: '~/ros2_uploads',
    aliases: [{ env: 'UPLOAD_DIR', deprecated: true }],
    ros: false,
  }),
  storageBackend: option.enum({
    doc:
      'Where files are stored: local (uploadDir on this machine) or s3 (an S3-compatible bucket, ' +
      'shared by server replicas; see docs/scaling-out.md)',
    values: ['local', 's3'],
    default: 'local',
    // `storage` is the library's option for a storage object (createUploadServer({ storage })), so
    // the setting is storageBackend; `--storage` is the short form the docs use.
    aliases: [{ flag: 'storage', env: 'UPLOAD_SERVER_STORAGE' }],
    ros: false,
  }),
  s3Bucket: option.string({ doc: 'With storage s3: the bucket (it must exist)', ros: false }),
  s3Endpoint: option.string({
    doc: "With storage s3: the S3 API's URL (Ceph's gateway, MinIO...); unset: AWS's endpoint for s3Region",
    format: 'url',
    ros: false,
  }),
  s3Region: option.string({ doc: 'With storage s3: the region', default: 'us-east-1', ros: false }),
  s3ForcePathStyle: option.boolean({
    doc: 'With storage s3: address the bucket as ENDPOINT/BUCKET/KEY (Ceph, MinIO) instead of BUCKET.ENDPOINT/KEY',
    default: false,
    ros: false,
  }),
  s3AccessKeyId: option.string({
    doc:
      'With storage s3: the access key id (environment or config file only); unset: s3CredentialsFile, ' +
      "or the AWS SDK's own chain (AWS_ACCESS_KEY_ID, ~/.aws, instance roles)",
    secret: true,
    cli: false,
    ros: false,
  }),
  s3SecretAccessKey: option.string({
    doc: 'With storage s3: the secret access key of s3AccessKeyId (environment or config file only)',
    secret: true,
    cli: false,
    ros: false,
  }),
  s3CredentialsFile: option.string({
    doc: 'With storage s3: a YAML/JSON file with accessKeyId and secretAccessKey',
    format: 'path',
    ros: false,
  }),
  databaseUrl: option.string({
    doc:
      'postgres://... : keep sessions, the file index, locks and rate-limit counters in PostgreSQL, ' +
      'shared by server replicas (needs --storage s3); unset: SQLite under uploadDir/state',
    secret: true,
    ros: false,
  }),
  databasePoolSize: option.integer({
    doc: 'With databaseUrl: connections to PostgreSQL per server process (plus one for locks)',
    default: 10,
    min: 1,
    max: 1000,
    ros: false,
  }),
  sslCert: option.string({
    doc: 'PEM certificate (chain) file; with sslKey the server speaks HTTPS only',
    format: 'path',
    aliases: [{ env: 'SSL_CERT' }],
    ros: false,
  }),
  sslKey: option.string({
    doc: 'PEM private key file of sslCert',
    format: 'path',
    aliases: [{ env: 'SSL_KEY' }],
    ros: false,
  }),
  clientCa: option.string({
    doc:
      'PEM file of the CA(s) that sign client certificates (mutual TLS; needs sslCert): clients are asked for a ' +
      'certificate, and a verified one identifies its uploader (clientCertMap or clientCertCommonName)',
    format: 'path',
    ros: false,
  }),
  clientCertMap: option.string({
    doc:
      'YAML/JSON file mapping uploaders to client certificate identities (CN=..., DNS:..., URI:...); ' +
      'a verified certificate that matches none is refused',
    format: 'path',
    ros: false,
  }),
  clientCertCommonName: option.boolean({
    doc:
      "Accept any certificate clientCa verifies and take the uploader name from its subject's CN " +
      '(certificates listed in clientCertMap still map as listed)',
    default: false,
    ros: false,
  }),
  maxFileSize: option.size({
    doc: 'Largest file accepted (413 above it)',
    default: 5 * 1024 ** 3,
    min: 0,
    aliases: [{ env: 'MAX_FILE_SIZE', deprecated: true }],
    ros: false,
  }),
  diskReserve: option.size({
    doc:
      'Free disk space kept in reserve: a new upload is refused ' +
      'with 507 when free space is below its size plus this',
    default: 1024 ** 3,
    min: 0,
    ros: false,
  }),
  compressionThreshold: option.size({
    doc: 'Uploads that ask for compression get a gzip copy at rest when at least this large',
    default: 10 * 1024 ** 2,
    min: 0,
    aliases: [{ env: 'COMPRESSION_THRESHOLD', deprecated: true }],
    ros: false,
  }),
  compressionLevel: option.integer({
    doc: 'gzip level of the copy at rest (1 fastest, 9 smallest)',
    default: 6,
    min: 1,
    max: 9,
    aliases: [{ env: 'COMPRESSION_LEVEL', deprecated: true }],
    ros: false,
  }),
  compressionWait: option.duration({
    doc: 'How long a legacy API finalize waits for its gzip copy before answering (it then finishes in the background)',
    default: 5,
    min: 0,
    ros: false,
  }),
  maxBytesInFlight: option.size({
    doc:
      'Most bytes of upload bodies one uploader may be sending at once (chunks, whole files, ' +
      'legacy chunk forms); beyond it a request gets 429 with Retry-After. A transfer alone is ' +
      'always admitted; 0 = no limit',
    default: 8 * 1024 ** 3,
    min: 0,
    ros: false,
  }),
  maxOpenSessions: option.integer({
    doc:
      'Most unfinished upload sessions one uploader may have (native and legacy together); a ' +
      'new one beyond it gets 429 TOO_MANY_SESSIONS with Retry-After until some complete, are ' +
      'cancelled or expire. 0 = no limit',
    default: 1000,
    min: 0,
    ros: false,
  }),
  sessionExpiry: option.duration({
    doc:
      'An upload with no activity for this long is deleted with ' +
      'its data; a completed session is remembered this long',
    default: 7 * 86400,
    min: 1,
    ros: false,
  }),
  cleanupInterval: option.duration({
    doc: 'How often expired sessions are looked for',
    default: 600,
    min: 0.1,
    ros: false,
  }),
  tokensFile: option.string({
    doc:
      'YAML/JSON file of bearer tokens: a mapping uploader -> ' +
      'token (or list of tokens), or a list of {uploader, token}',
    format: 'path',
    ros: false,
  }),
  tokens: option.list({
    doc: 'Bearer tokens as uploader=token pairs, comma-separated (environment or config file only)',
    default: [],
    secret: true,
    cli: false,
    ros: false,
  }),
  allowAnonymous: option.boolean({
    doc: 'Accept requests without a token (as uploader "anonymous") on a non-loopback address',
    default: false,
    ros: false,
  }),
  viewerTokensFile: option.string({
    doc:
      'YAML/JSON file of viewer tokens (the dashboard, /v1/events, /v1/bags, /metrics), in the format of ' +
      'tokensFile: a mapping viewer -> token; viewers see every uploader, uploaders only their own bags',
    format: 'path',
    ros: false,
  }),
  viewerTokens: option.list({
    doc: 'Viewer tokens as viewer=token pairs, comma-separated (environment or config file only)',
    default: [],
    secret: true,
    cli: false,
    ros: false,
  }),
  viewerLoginDuration: option.duration({
    doc: "How long a viewer's dashboard login (its cookie) lasts",
    default: 86400,
    min: 60,
    ros: false,
  }),
  onFileComplete: option.string({
    doc: 'Webhook URL: each newly stored file is POSTed there as JSON (file.completed), at least once',
    format: 'url',
    secret: true,
    ros: false,
  }),
  onBagComplete: option.string({
    doc:
      'Webhook URL: each bag whose metadata.yaml and listed files are all verified is POSTed there as ' +
      'JSON (bag.completed), at least once',
    format: 'url',
    secret: true,
    ros: false,
  }),
  webhookSecret: option.string({
    doc: 'Signs webhook bodies: X-Webhook-Signature: sha256=<HMAC-SHA256 of the body with this secret>',
    secret: true,
    ros: false,
  }),
  webhookTimeout: option.duration({
    doc: 'Longest time one webhook POST may take before it counts as failed (and is retried)',
    default: 10,
    min: 0.1,
    ros: false,
  }),
  webhookRetention: option.duration({
    doc: 'How long an undelivered webhook event is retried (backoff up to 5 min) before it is given up',
    default: 7 * 86400,
    min: 1,
    ros: false,
  }),
  metricsListen: option.string({
    doc:
      'Also serve GET /metrics (Prometheus) without a token on this HOST:PORT, e.g. 127.0.0.1:9464 ' +
      '(on the main port it needs a viewer token)',
    ros: false,
  }),
  strictPermissions: option.boolean({
    doc:
      'Refuse to start when the tokens file or s3CredentialsFile can be read or written, or clientCertMap ' +
      'written, by its group or others (otherwise a warning)',
    default: false,
    ros: false,
  }),
  trustProxy: option.string({
    doc: 'Express "trust proxy" setting behind a reverse proxy (e.g. loopback, or 1 for one hop); unset trusts none',
    ros: false,
  }),
  nativeApi: option.boolean({
    doc:
      'Serve the native resumable API (/v1, see docs/http-api.md); --no-native-api leaves only the legacy API, ' +
      'answering /health like the legacy server (no "protocol"), e.g. to try agents against a legacy-only server',
    default: true,
    ros: false,
  }),
  rateLimit: option.boolean({
    doc: 'Apply the rate limits below; --no-rate-limit turns every limit off',
    default: true,
    ros: false,
  }),
  rateLimitAuthFailures: option.integer({
    doc:
      'Failed authentications (a wrong, malformed or missing token, a refused client certificate) per minute per ' +
      'client address; beyond it the address gets 429 without its credentials being checked until the minute ends ' +
      '(0 = no limit)',
    default: 30,
    min: 0,
    ros: false,
  }),
  rateLimitInit: option.integer({
    doc: 'Legacy API POST /upload/init requests per hour per client (0 = no limit)',
    default: 20,
    min: 0,
    ros: false,
  }),
  rateLimitChunk: option.integer({
    doc: 'Legacy API POST /upload/chunk requests per minute per client (0 = no limit)',
    default: 100,
    min: 0,
    ros: false,
  }),
  rateLimitFinalize: option.integer({
    doc: 'Legacy API POST /upload/finalize requests per hour per client (0 = no limit)',
    default: 10,
    min: 0,
    ros: false,
  }),
  rateLimitList: option.integer({
    doc: 'GET /uploads requests per minute per client (0 = no limit)',
    default: 30,
    min: 0,
    ros: false,
  }),
  rateLimitHourly: option.integer({
    doc: 'Other legacy API requests (status) per hour per client (0 = no limit)',
    default: 50,
    min: 0,
    ros: false,
  }),
  rateLimitDaily: option.integer({
    doc: 'Other legacy API requests (status) per day per client (0 = no limit)',
    default: 200,
    min: 0,
    ros: false,
  }),
  rateLimitUploadRate: option.integer({
    doc:
      'Bytes an uploader may send through the native API, in MiB per second averaged over a minute (chunk and ' +
      'whole-file PUTs, each counted as at least 64 KiB); beyond it 429 until the minute ends (0 = no limit). ' +
      'The default is about twice what a 1 Gbit/s link carries',
    default: 256,
    min: 0,
    ros: false,
  }),
  rateLimitSessions: option.integer({
    doc:
      'Native POST /v1/sessions (create or resume) and whole-file PUT /v1/files per hour per client address, ' +
      'for requests without credentials (0 = no limit); an authenticated uploader is limited by ' +
      'rateLimitUploadRate and maxOpenSessions instead',
    default: 1000,
    min: 0,
    ros: false,
  }),
  rateLimitChunks: option.integer({
    doc:
      'Native chunk PUTs per minute per client address, for requests without credentials (0 = no limit); ' +
      'with 8 MiB chunks 100/min caps such a client at about 13 MiB/s',
    default: 100,
    min: 0,
    ros: false,
  }),
  rateLimitComplete: option.integer({
    doc: 'Native completes per hour per client address, for requests without credentials (0 = no limit)',
    default: 1000,
    min: 0,
    ros: false,
  }),
  rateLimitNative: option.integer({
    doc:
      'Other native requests (status, cancel, file lookup) per hour per client address, for requests without ' +
      'credentials (0 = no limit)',
    default: 3000,
    min: 0,
    ros: false,
  }),
  headersTimeout: option.duration({
    doc: 'A client must send its request headers within this time (slowloris guard)',
    default: 30,
    min: 0.1,
    ros: false,
  }),
  requestTimeout: option.duration({
    doc: 'Longest time one request may take, body included (fits a 64 MiB chunk at about 20 KiB/s); 0 = none',
    default: 3600,
    min: 0,
    ros: false,
  }),
  idleTimeout: option.duration({
    doc: "A connection that moves no bytes for this long is closed (longer than the agent's 60 s stall timeout)",
    default: 120,
    min: 0.1,
    ros: false,
  }),
  keepAliveTimeout: option.duration({
    doc: "How long an idle keep-alive connection stays open (above nginx's 60 s upstream keepalive)",
    default: 65,
    min: 0.1,
    ros: false,
  }),
  maxConnections: option.integer({
    doc:
      'Most client connections open at once; beyond it new connections are closed at ' +
      'once (bounds file descriptors and memory under a connection flood); 0 = no limit',
    default: 1000,
    min: 0,
    ros: false,
  }),
  shutdownTimeout: option.duration({
    doc: 'On SIGINT/SIGTERM, how long requests in flight may finish before connections are closed',
    default: 10,
    min: 0,
    ros: false,
  }),
  logLevel: option.enum({
    doc: 'pino log level',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    ros: false,
  }),
};

export const serverOptions = defineOptions(serverOptionSpecs, { envPrefix: 'UPLOAD_SERVER_' });

export type ServerConfig = ConfigOf<typeof serverOptionSpecs>;

/**
 * How a refusal names the server setting that raises a limit: a robot's operator reading the
 * agent's log can pass it on to whoever runs the server.
 */
export function raiseHint(key: keyof ServerConfig & keyof typeof serverOptionSpecs): string {
  const names = serverOptions.names(key);
  return `the server's ${names.flag} (${names.env}) raises it, 0 or --no-rate-limit turns it off`;
}
