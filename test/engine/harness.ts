import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { NetworkManager, type NetworkManagerOptions } from '../../agent/engine/network-manager.js';
import type { CompletedEvent, FailedEvent, NetworkManagerEvents } from '../../agent/engine/upload-events.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import type { FrontRequestLog, HttpFaultFront } from '../helpers/http-fault-front.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import type { UploadServerOptions } from '../../server/index.js';

/**
 * The engine tests' world: the real server on 127.0.0.1:0, the fault proxy in front of it, a
 * temp folder for local files and state, and managers with short timeouts (no test waits on a
 * default 60 s). Everything is closed by `close()`.
 */
export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Settings that keep fault tests fast; individual tests override. */
export const fastOptions: NetworkManagerOptions = {
  retryDelay: 0.02,
  retryMaxDelay: 0.3,
  stalledTimeout: 3,
  initTimeout: 5,
  uploadTimeout: 60,
  maxRetries: 4,
  stopTimeout: 2,
};

export interface LocalFile {
  path: string;
  sha256: string;
  size: number;
}

export interface EngineWorld {
  server: TestServer;
  proxy: FaultProxy;
  dir: TempDir;
  managers: NetworkManager[];
  manager(options?: NetworkManagerOptions): NetworkManager;
  randomFile(name: string, size: number): Promise<LocalFile>;
  writeFile(name: string, data: Buffer): Promise<LocalFile>;
  /** SHA-256 of the file the server stores at remotePath (anonymous uploader). */
  storedSha(remotePath: string): Promise<string>;
  close(): Promise<void>;
}

export async function createWorld(serverOptions: UploadServerOptions = {}): Promise<EngineWorld> {
  const dir = await createTempDir('engine');
  const server = await startTestServer(serverOptions);
  const proxy = await FaultProxy.start({ port: server.server.port });
  const managers: NetworkManager[] = [];
  let stateCount = 0;
  return {
    server,
    proxy,
    dir,
    managers,
    manager(options = {}) {
      stateCount += 1;
      const manager = new NetworkManager({
        serverUrl: proxy.url(server.url.startsWith('https') ? 'https' : 'http'),
        stateDir: path.join(dir.path, `state-${stateCount}`),
        logger: pino({ level: process.env.ENGINE_LOG_LEVEL ?? 'silent' }),
        ...fastOptions,
        ...options,
      });
      managers.push(manager);
      return manager;
    },
    async randomFile(name, size) {
      const file = path.join(dir.path, 'files', name);
      const sha256 = await writeRandomFile(file, size);
      return { path: file, sha256, size };
    },
    async writeFile(name, data) {
      const file = path.join(dir.path, 'files', name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, data);
      return { path: file, sha256: await sha256OfBuffer(data), size: data.length };
    },
    storedSha: (remotePath) => sha256OfFile(server.completedPath('anonymous', remotePath)),
    async close() {
      await Promise.allSettled(managers.map((manager) => manager.stop()));
      await proxy.close();
      await server.close();
      await dir.remove();
    },
  };
}

async function sha256OfBuffer(data: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(data).digest('hex');
}

/** Records every event of a manager, in order. */
export class EventLog {
  readonly entries: { event: keyof NetworkManagerEvents; args: unknown[] }[] = [];

  constructor(manager: NetworkManager) {
    const names: (keyof NetworkManagerEvents)[] = [
      'queued',
      'started',
      'progress',
      'retrying',
      'stalled',
      'completed',
      'failed',
      'state',
      'online',
      'offline',
      'cancelled',
      'blocked',
      'unblocked',
    ];
    for (const name of names) {
      (manager.on as (event: string, listener: (...args: unknown[]) => void) => void)(name, (...args: unknown[]) =>
        this.entries.push({ event: name, args }),
      );
    }
  }

  of<K extends keyof NetworkManagerEvents>(event: K): NetworkManagerEvents[K][0][] {
    return this.entries
      .filter((entry) => entry.event === event)
      .map((entry) => entry.args[0] as NetworkManagerEvents[K][0]);
  }

  count(event: keyof NetworkManagerEvents): number {
    return this.entries.filter((entry) => entry.event === event).length;
  }
}

/** Waits for an upload to complete (or fail: then throws with the reason). */
export async function waitForCompletion(
  manager: NetworkManager,
  id: string,
  timeoutMs = 60_000,
): Promise<CompletedEvent> {
  return new Promise<CompletedEvent>((resolve, reject) => {
    const snapshot = manager.upload(id);
    if (snapshot?.state === 'completed') {
      resolve({
        upload: snapshot,
        sha256: snapshot.sha256 ?? '',
        duration: 0,
        deduplicated: snapshot.deduplicated ?? false,
      });
      return;
    }
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `upload ${id} did not complete within ${timeoutMs} ms; status: ${JSON.stringify(manager.upload(id))}`,
        ),
      );
    }, timeoutMs);
    const onCompleted = (event: CompletedEvent): void => {
      if (event.upload.id !== id) return;
      cleanup();
      resolve(event);
    };
    const onFailed = (event: FailedEvent): void => {
      if (event.upload.id !== id) return;
      cleanup();
      reject(new Error(`upload ${id} failed: ${event.code}: ${event.reason}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      manager.off('completed', onCompleted);
      manager.off('failed', onFailed);
    };
    manager.on('completed', onCompleted);
    manager.on('failed', onFailed);
  });
}

export async function waitForFailure(manager: NetworkManager, id: string, timeoutMs = 30_000): Promise<FailedEvent> {
  return new Promise<FailedEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`upload ${id} did not fail within ${timeoutMs} ms`)), timeoutMs);
    const onFailed = (event: FailedEvent): void => {
      if (event.upload.id !== id) return;
      clearTimeout(timer);
      manager.off('failed', onFailed);
      resolve(event);
    };
    manager.on('failed', onFailed);
  });
}

export { waitFor };

/**
 * The requests that begin a file's upload as seen at a front: a session's create-or-resume
 * (POST /v1/sessions) or a whole small file (PUT /v1/files/<path>).
 */
export function uploadStarts(front: HttpFaultFront): FrontRequestLog[] {
  return [...front.requests('POST', /^\/v1\/sessions$/), ...front.requests('PUT', /^\/v1\/files\//)].sort(
    (a, b) => a.at - b.at,
  );
}
