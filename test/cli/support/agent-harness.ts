import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { AgentConfig } from '../../../agent/app/agent-options.js';
import { UploadAgent } from '../../../agent/app/upload-agent.js';
import { startTestServer, type TestServer } from '../../helpers/start-server.js';
import { createTempDir, type TempDir } from '../../helpers/tmp-dir.js';
import { RecordingProxy } from './recording-proxy.js';

export interface Harness {
  agent: UploadAgent;
  server: TestServer;
  proxy: RecordingProxy;
  /** The watched recording root. */
  root: string;
  stateDir: string;
  /**
   * The server's stored copy of a remote path (anonymous uploader), or undefined; undefined too
   * until the proxy has recorded the answers for that path (the file is stored before its
   * answer reaches the proxy), so what the proxy says about a stored file is complete.
   */
  stored(remotePath: string): Buffer | undefined;
  /** Restarts the agent on the same state directory (as after a crash or a reboot). */
  restart(config?: Partial<AgentConfig>): Promise<UploadAgent>;
  close(): Promise<void>;
}

/**
 * The agent in this process against the real server on 127.0.0.1 (port 0), through a
 * recording proxy, watching a fresh temp folder. Logs are silent unless LOG_LEVEL is set.
 */
export async function startHarness(
  config: Partial<AgentConfig> = {},
  options: { freeSpace?: (dir: string) => Promise<number>; start?: boolean; logger?: Logger } = {},
): Promise<Harness> {
  const temp: TempDir = await createTempDir('agent');
  const server = await startTestServer();
  const proxy = await RecordingProxy.start(server.url);
  const root = path.join(temp.path, 'recordings');
  const stateDir = path.join(temp.path, 'state');
  const logger = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  const base: Partial<AgentConfig> = {
    serverUrl: proxy.url,
    watchDir: root,
    createWatchDir: true,
    stateDir,
    quietPeriod: 1,
    ...config,
  };
  let agent = new UploadAgent({ config: base, logger, ...(options.freeSpace ? { freeSpace: options.freeSpace } : {}) });
  if (options.start !== false) await agent.start();
  const harness: Harness = {
    get agent() {
      return agent;
    },
    server,
    proxy,
    root,
    stateDir,
    stored(remotePath) {
      const file = server.completedPath('anonymous', remotePath);
      return existsSync(file) && proxy.settled(remotePath) ? readFileSync(file) : undefined;
    },
    async restart(more = {}) {
      await agent.stop();
      agent = new UploadAgent({
        config: { ...base, ...more },
        logger,
        ...(options.freeSpace ? { freeSpace: options.freeSpace } : {}),
      });
      await agent.start();
      return agent;
    },
    async close() {
      await agent.stop().catch(() => undefined);
      await proxy.close();
      await server.close();
      await temp.remove();
    },
  };
  return harness;
}
