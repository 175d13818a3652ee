import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../common/errors/upload-error.js';
import { makeDirectory } from '../common/fs/make-directory.js';
import { readS3Credentials } from './config/s3-credentials.js';
import type { ServerConfig } from './config/server-options.js';
import { checkFileMode } from './http/file-mode.js';
import { type RateLimitStores, sharedRateLimitStores } from './http/shared-rate-limit-store.js';
import type { Logger } from './logging/logger.js';
import { KeyedMutex, type KeyedLock } from './runtime/mutex.js';
import { RuntimeRegistry, type SessionRuntimes } from './runtime/runtime-registry.js';
import { type FleetBus, LoneFleetBus } from './sessions/fleet-bus.js';
import type { SessionStore } from './sessions/session-store.js';
import { SqliteSessionStore } from './sessions/sqlite-session-store.js';
import { FOLDER_MODE } from './storage/folder-handle.js';
import { checkStorageFile, checkStorageFolders } from './storage/folder-permissions.js';
import { LocalDiskStorage } from './storage/local-disk-storage.js';
import type { UploadStorage } from './storage/upload-storage.js';

/** Where a server keeps files and state, and how its parts coordinate: one process, or replicas. */
export interface Backends {
  storage: UploadStorage;
  store: SessionStore;
  runtimes: SessionRuntimes;
  pathLocks: KeyedLock;
  rateLimitStores: RateLimitStores;
  /** Replicas: runs a periodic job (expiry) in one replica at a time; skips it while another runs it. */
  runAlone: <T>(name: string, task: () => Promise<T>) => Promise<T | undefined>;
  /** Replicas: the shared store's housekeeping besides expiry (rate-limit counters whose window ended). */
  housekeeping: (() => Promise<void>) | undefined;
  /** True for replicas sharing a database: a sweep must leave staged data other replicas may have just started. */
  shared: boolean;
  /** How the live view reaches the other replicas (none alone; LISTEN/NOTIFY on PostgreSQL). */
  fleetBus: FleetBus;
}

/**
 * Opens the storage and the session store the configuration names: the embedded default (the
 * local disk under uploadDir and SQLite under uploadDir/state, one process), or the shape for
 * replicas (an S3 bucket and PostgreSQL, with the state and locks they share). `storage` is a
 * library caller's own storage object, which replaces the configured one; `decorateStore` wraps
 * the embedded SQLite store.
 */
export async function openBackends(
  config: ServerConfig,
  given: UploadStorage | undefined,
  log: Logger,
  decorateStore: (store: SessionStore) => SessionStore = (store) => store,
): Promise<Backends> {
  if (config.databaseUrl && config.storageBackend !== 's3' && !given)
    throw new UploadError(
      'CONFIG_INVALID',
      'databaseUrl (PostgreSQL) is for server replicas, which must share their storage: ' +
        'use it with --storage s3 (the local disk keeps its sessions in SQLite)',
    );
  const storage = given ?? (await openStorage(config, log));
  try {
    if (!config.databaseUrl) {
      const store = decorateStore(await openSqlite(config.uploadDir));
      return {
        storage,
        store,
        runtimes: new RuntimeRegistry(store),
        pathLocks: new KeyedMutex(),
        rateLimitStores: () => undefined,
        runAlone: (_name, task) => task(),
        housekeeping: undefined,
        shared: false,
        fleetBus: new LoneFleetBus(),
      };
    }
    // Loaded only for replicas: pg, hash-wasm and the shared runtimes cost start-up time and heap
    // (every full GC walks it) that a single server on its local disk never uses.
    const [{ PostgresSessionStore }, { SharedRuntimes }, { PostgresFleetBus }] = await Promise.all([
      import('./sessions/postgres-session-store.js'),
      import('./runtime/shared-runtimes.js'),
      import('./sessions/postgres-fleet-bus.js'),
    ]);
    const store = await PostgresSessionStore.open(config.databaseUrl, {
      poolSize: config.databasePoolSize,
      where: describeDatabase(config.databaseUrl),
    });
    let fleetBus: FleetBus;
    try {
      fleetBus = await PostgresFleetBus.open(
        { connectionString: config.databaseUrl, application_name: 'ros2-upload-server fleet' },
        (error) =>
          log.warn(
            { event: 'fleet_bus_lost', err: error },
            'Lost the live-view connection to the database; reconnecting',
          ),
      );
    } catch (error) {
      await store.close();
      throw new UploadError(
        'STATE_DIR',
        `Cannot use the database ${describeDatabase(config.databaseUrl)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return {
      storage,
      store,
      runtimes: new SharedRuntimes(store, store.locks),
      pathLocks: store.locks,
      rateLimitStores: sharedRateLimitStores(store),
      runAlone: (name, task) => store.locks.runIfFree(`job:${name}`, task),
      housekeeping: async () => {
        await store.pruneCounters(Date.now());
      },
      shared: true,
      fleetBus,
    };
  } catch (error) {
    if (!given) await storage.close?.();
    throw error;
  }
}

async function openStorage(config: ServerConfig, log: Logger): Promise<UploadStorage> {
  if (config.storageBackend === 's3') {
    if (!config.s3Bucket) throw new UploadError('CONFIG_INVALID', '--storage s3 needs --s3-bucket');
    const file = config.s3CredentialsFile;
    if (file) {
      // Whoever reads the key file can read and overwrite every recording: the tokens file's rule.
      checkFileMode(file, 'S3 credentials file', 0o066, {
        strictPermissions: config.strictPermissions,
        warn: (message, fields) => log.warn(fields, message),
      });
    }
    const fromFile = file ? readS3Credentials(file) : undefined;
    if (Boolean(config.s3AccessKeyId) !== Boolean(config.s3SecretAccessKey))
      throw new UploadError('CONFIG_INVALID', 's3AccessKeyId and s3SecretAccessKey must be given together');
    const credentials =
      config.s3AccessKeyId && config.s3SecretAccessKey
        ? { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey }
        : fromFile;
    // The AWS SDK is loaded only for S3 (about a third of the server's start-up otherwise).
    const { S3Storage } = await import('./storage/s3-storage.js');
    return S3Storage.open(
      {
        bucket: config.s3Bucket,
        region: config.s3Region,
        endpoint: config.s3Endpoint,
        forcePathStyle: config.s3ForcePathStyle,
        credentials,
      },
      (message) => log.debug({ event: 's3_client' }, message),
    );
  }
  try {
    return await LocalDiskStorage.open(config.uploadDir);
  } catch (error) {
    throw new UploadError(
      'STATE_DIR',
      `Cannot use the upload folder ${config.uploadDir}: ${(error as Error).message} ` +
        '(choose a writable folder with --upload-dir)',
      { cause: error },
    );
  }
}

async function openSqlite(uploadDir: string): Promise<SessionStore> {
  let file = path.join(uploadDir, 'state', 'uploads.db');
  try {
    // The database lives in the storage: its folder and file follow the storage's rules (no
    // symlink below the root, nobody else may write them).
    await makeDirectory(path.dirname(file), FOLDER_MODE);
    const root = await realpath(uploadDir);
    file = path.join(root, 'state', 'uploads.db');
    await checkStorageFolders(root, [path.dirname(file)]);
    await checkStorageFile(file);
    return new SqliteSessionStore(file);
  } catch (error) {
    if (error instanceof UploadError) throw error;
    throw new UploadError('STATE_DIR', `Cannot open the session database ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The database URL without its password, for messages. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(an unparsable database URL)';
  }
}
