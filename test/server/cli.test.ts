import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runServerProgram, spawnServer } from '../helpers/spawn-server.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await createTempDir('server-cli');
});
afterAll(async () => {
  await dir?.remove();
});

describe('ros2-upload-server program', () => {
  it('--help lists every option with its flag, environment variable and default', async () => {
    const run = await runServerProgram(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: ros2-upload-server');
    expect(run.stdout).toMatch(/--port <integer>\s+TCP port.*\[default: 8080; env UPLOAD_SERVER_PORT\]/);
    expect(run.stdout).toMatch(
      /--compression-threshold <size>.*\[default: 10 MiB; env UPLOAD_SERVER_COMPRESSION_THRESHOLD\]/,
    );
    expect(run.stdout).toMatch(/--upload-dir <string>.*\[default: ~\/ros2_uploads; env UPLOAD_SERVER_UPLOAD_DIR\]/);
    expect(run.stdout).not.toContain('--tokens ');
  });

  it('a bad value stops startup with one line naming the option and the value', async () => {
    const flag = await runServerProgram(['--compression-level', '12']);
    expect(flag.code).toBe(64);
    expect(flag.stderr.trim().split('\n')).toEqual([
      'ros2-upload-server: Invalid compressionLevel (--compression-level, UPLOAD_SERVER_COMPRESSION_LEVEL) ' +
        'from the command line (--compression-level): "12": must be at most 9',
    ]);
    const env = await runServerProgram([], { MAX_FILE_SIZE: 'huge' });
    expect(env.code).toBe(64);
    expect(env.stderr).toMatch(
      new RegExp(
        '^ros2-upload-server: Invalid maxFileSize \\(--max-file-size, UPLOAD_SERVER_MAX_FILE_SIZE\\) ' +
          'from environment variable MAX_FILE_SIZE: "huge": expected a size',
      ),
    );
    const unknown = await runServerProgram(['--frobnicate']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/frobnicate/);
    // A misspelt variable is an error with the closest name, never an open server.
    const typo = await runServerProgram([], { UPLOAD_SERVER_TOKEN: 'robot1=0123456789abcdef' });
    expect(typo.code).toBe(64);
    expect(typo.stderr.trim()).toMatch(
      /^ros2-upload-server: Unknown environment variable UPLOAD_SERVER_TOKEN \(did you mean UPLOAD_SERVER_TOKENS\?\)/,
    );
    expect(typo.stderr).not.toContain('0123456789abcdef');
    const version = await runServerProgram(['-V']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // A weak token is a configuration that cannot be used (78); the message names the uploader, never the token.
    const secret = await runServerProgram([], { UPLOAD_SERVER_TOKENS: 'robot1=short-secret' });
    expect(secret.code).toBe(78);
    expect(secret.stderr).toMatch(/token of uploader robot1 .* too weak/);
    expect(secret.stderr).not.toContain('short-secret');
  });

  it('an upload folder that cannot be created (under /proc) stops startup at once: exit 73, one line', async () => {
    // Node's recursive mkdir loops forever under /proc (mkdir fails with ENOENT below an existing
    // folder); runServerProgram's deadline turns such a hang into a failure.
    for (const dir of ['/proc/ros2-upload-test/uploads', '/proc/ros2-upload-test']) {
      const run = await runServerProgram(['--port', '0', '--upload-dir', dir]);
      expect(run.code, run.stderr).toBe(73);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(
        /^ros2-upload-server: Cannot use the upload folder \/proc\/ros2-upload-test.*--upload-dir/,
      );
    }
  });

  it('accepts the older variable names (PORT, UPLOAD_DIR: with a warning; SSL_CERT: silently)', async () => {
    const server = await spawnServer([], {
      env: { HOST: '127.0.0.1', PORT: '0', UPLOAD_DIR: path.join(dir.path, 'old-names') },
    });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const warnings = server
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"event":"setting_name"'))
        .map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(warnings.sort()).toEqual([
        'HOST is an old name: use UPLOAD_SERVER_HOST',
        'PORT is an old name: use UPLOAD_SERVER_PORT',
        'UPLOAD_DIR is an old name: use UPLOAD_SERVER_UPLOAD_DIR',
      ]);
      expect(await readdir(path.join(dir.path, 'old-names'))).toContain('completed');
    } finally {
      await server.stop();
    }
  });

  it('reads a YAML config file (flags and environment override it) and closes gracefully on SIGINT', async () => {
    const config = path.join(dir.path, 'server.yaml');
    await writeFile(
      config,
      `server:\n  port: 0\n  host: 127.0.0.1\n  upload_dir: ${path.join(dir.path, 'storage')}\n  rate-limit-init: 1\n`,
    );
    const server = await spawnServer(['--config', config]);
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await legacyPost(server.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 })).status).toBe(
        200,
      );
      expect((await legacyPost(server.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 })).status).toBe(
        429,
      );
    } finally {
      expect(await server.stop('SIGINT')).toBe(0);
    }
    expect(server.stdout()).toContain('"event":"shutdown","signal":"SIGINT"');
    expect(server.stdout()).toContain('"event":"closed"');
    const broken = path.join(dir.path, 'broken.yaml');
    await writeFile(broken, 'port: [1, 2\n');
    const run = await runServerProgram(['--config', broken]);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain(broken);
  });

  it('a SIGTERM at the moment it reports listening closes it cleanly, exit 0', async () => {
    // The signal handlers exist before the "listening" line, so a supervisor that stops the
    // server as soon as it is up never kills it with the default action.
    for (let round = 0; round < 3; round += 1) {
      const server = await spawnServer(['--port', '0', '--host', '127.0.0.1', '--upload-dir', dir.path]);
      expect(await server.stop('SIGTERM')).toBe(0);
      expect(server.stdout()).toContain('"event":"shutdown","signal":"SIGTERM"');
    }
  });

  it('SIGTERM lets a request in flight finish before exiting', async () => {
    const storage = path.join(dir.path, 'storage2');
    const server = await spawnServer(['--port', '0', '--host', '127.0.0.1', '--upload-dir', storage]);
    const init = await legacyPost(server.url, '/upload/init', { filename: 'slow.bag', filesize: 1000, chunks: 1 });
    const form = new FormData();
    form.append('upload_id', init.json.upload_id as string);
    form.append('chunk_index', '0');
    form.append('chunk_total', '1');
    form.append('chunk', new Blob([Buffer.alloc(1000, 1)]), 'c');
    const body = new Response(form);
    const bytes = Buffer.from(await body.arrayBuffer());
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const request = fetch(`${server.url}/upload/chunk`, {
      method: 'POST',
      headers: { 'content-type': body.headers.get('content-type')!, 'content-length': String(bytes.length) },
      body: new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(bytes.subarray(0, bytes.length - 100));
          await released;
          controller.enqueue(bytes.subarray(bytes.length - 100));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    // The server is receiving the chunk once its part blob exists; only then is it stopped.
    const id = init.json.upload_id as string;
    await waitFor(
      async () => (await readdir(path.join(storage, 'temp', id))).some((name) => name.startsWith('part-')),
      'the chunk part to arrive',
    );
    server.child.kill('SIGTERM');
    await waitFor(() => server.stdout().includes('"event":"shutdown"'), 'the shutdown log line');
    release();
    const answer = await request;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ success: true, received_chunks: 1 });
    expect(await server.exited).toBe(0);
  });
});
