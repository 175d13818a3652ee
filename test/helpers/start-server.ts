import path from 'node:path';
import { createUploadServer, type UploadServer, type UploadServerOptions } from '../../server/index.js';
import { createTempDir, type TempDir } from './tmp-dir.js';

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:43121. */
  readonly url: string;
  readonly server: UploadServer;
  /** The storage root (uploadDir): completed/, temp/, compressed/, state/. */
  readonly uploadDir: string;
  /** `completed/<uploader>/<relativePath>` under uploadDir. */
  completedPath(uploader: string, relativePath: string): string;
  /** Closes the server; with `keepFiles` the storage stays (to restart on it), otherwise it is deleted. */
  close(options?: { keepFiles?: boolean }): Promise<void>;
}

/**
 * Starts the real server in this process on 127.0.0.1, port 0, with its storage in a fresh
 * temp folder (or `uploadDir` when given, e.g. to restart on the same storage). Defaults suited
 * to tests: logs silenced (LOG_LEVEL env overrides), rate limits off (pass `rateLimit: true` to
 * test them). Any other server option can be passed.
 */
export async function startTestServer(options: UploadServerOptions = {}): Promise<TestServer> {
  let temp: TempDir | undefined;
  let uploadDir = options.uploadDir;
  if (!uploadDir) {
    temp = await createTempDir('upload-server');
    uploadDir = temp.path;
  }
  let server: UploadServer;
  try {
    server = await createUploadServer({
      host: '127.0.0.1',
      port: 0,
      logLevel: (process.env.LOG_LEVEL as UploadServerOptions['logLevel']) ?? 'silent',
      rateLimit: false,
      ...options,
      uploadDir,
    });
  } catch (error) {
    await temp?.remove();
    throw error;
  }
  const root = uploadDir;
  return {
    url: server.url,
    server,
    uploadDir: root,
    completedPath: (uploader, relativePath) => path.join(root, 'completed', uploader, ...relativePath.split('/')),
    close: async ({ keepFiles = false } = {}) => {
      await server.close();
      if (!keepFiles) await temp?.remove();
    },
  };
}
