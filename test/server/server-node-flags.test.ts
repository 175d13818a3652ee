import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BIN, spawnServer } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * The server program is meant to run with the node flags of its `#!` line (server/cli/v8-flags.ts
 * says why; the deployment examples pass the same). Started as the kernel starts the executable
 * file, the real program gets them, accepts them and serves.
 */
let storage: TempDir;
beforeAll(async () => {
  storage = await createTempDir('node-flags');
});
afterAll(async () => {
  await storage?.remove();
});

describe('the server started by its #! line', () => {
  it('runs node with --initial-old-space-size=32 and serves', { timeout: 60_000 }, async () => {
    expect(readFileSync(SERVER_BIN, 'utf8').split('\n', 1)[0]).toBe(
      '#!/usr/bin/env -S node --initial-old-space-size=32',
    );
    const server = await spawnServer(['--host', '127.0.0.1', '--port', '0', '--upload-dir', storage.path], {
      byShebang: true,
    });
    try {
      const commandLine = readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8').split('\0');
      expect(commandLine.slice(0, 3)).toEqual(['node', '--initial-old-space-size=32', SERVER_BIN]);
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
