import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface EntryPoint {
  /** Runtime exports: exactly these (unless `atLeast`). */
  values: string[];
  /** Type-only exports: each must import. */
  types: string[];
  /** The entry is another part's own (the server's): only these names are checked to be there. */
  atLeast?: boolean;
}

/** The documented public API (index.ts, agent/engine/index.ts, common/protocol/index.ts; the server's entry). */
const api: Record<string, EntryPoint> = {
  'ros2-upload-agent': {
    values: [
      'NetworkManager',
      'UploadError',
      'createUploadHandler',
      'createUploadServer',
      'engineOptions',
      'errorCodes',
      'isUploadError',
      'localErrorCodes',
      'serverOptions',
      'wireErrorCodes',
    ],
    types: [
      'AddUploadOptions',
      'AddUploadResult',
      'CancelOptions',
      'CompletedEvent',
      'EngineConfig',
      'ErrorDetails',
      'FailedEvent',
      'FileCompletedEvent',
      'LocalErrorCode',
      'NetworkManagerEvents',
      'NetworkManagerOptions',
      'ProgressEvent',
      'RetryingEvent',
      'ServerConfig',
      'UploadErrorCode',
      'UploadEventName',
      'UploadEvents',
      'UploadHandler',
      'UploadHandlerOptions',
      'UploadServer',
      'UploadServerOptions',
      'UploadSnapshot',
      'UploadState',
      'WireErrorCode',
    ],
  },
  'ros2-upload-agent/engine': {
    values: [
      'DEFAULT_PRIORITY',
      'MAX_PRIORITY',
      'MIN_PRIORITY',
      'NetworkManager',
      'engineOptionSpecs',
      'engineOptions',
    ],
    types: [
      'AddUploadOptions',
      'AddUploadResult',
      'CancelOptions',
      'CompletedEvent',
      'EngineConfig',
      'FailedEvent',
      'NetworkManagerEvents',
      'NetworkManagerOptions',
      'ProgressEvent',
      'RetryingEvent',
      'UploadSnapshot',
      'UploadState',
    ],
  },
  'ros2-upload-agent/protocol': {
    values: [
      'API_PREFIX',
      'Crc32',
      'DEFAULT_CHUNK_SIZE',
      'DEFAULT_SERVER_HOST',
      'DEFAULT_SERVER_PORT',
      'MAX_CHUNK_COUNT',
      'MAX_CHUNK_SIZE',
      'MAX_METADATA_BYTES',
      'MAX_PATH_BYTES',
      'MAX_SEGMENT_BYTES',
      'MAX_WHOLE_FILE_SIZE',
      'MIN_CHUNK_SIZE',
      'PROTOCOL_VERSION',
      'canonicalRequestText',
      'checkRequestChecksum',
      'fingerprintFile',
      'formatChunkChecksum',
      'headers',
      'isFingerprint',
      'isWireErrorCode',
      'normaliseRelativePath',
      'parseChunkChecksum',
      'requestChecksum',
      'routes',
      'wireErrorCodes',
      'wireErrorStatus',
    ],
    types: [
      'ChunkResponse',
      'CompleteRequest',
      'CompleteResponse',
      'CompletedFile',
      'CreateSessionRequest',
      'CreateSessionResponse',
      'ErrorResponse',
      'HealthResponse',
      'OpenSession',
      'PutFileResponse',
      'RequestToCheck',
      'SessionStatusResponse',
      'WireErrorCode',
      'WireErrorDetails',
    ],
  },
  'ros2-upload-agent/server': {
    values: ['createUploadServer', 'serverOptionSpecs', 'serverOptions'],
    types: ['ServerConfig', 'UploadServer', 'UploadServerOptions'],
    atLeast: true,
  },
};

/**
 * The package as a consumer sees it: built (test/global-setup.ts runs `npm run build`), found as
 * node_modules/ros2-upload-agent (a symlink to this repository) and resolved through
 * package.json "exports", in plain Node and by TypeScript (NodeNext).
 */
describe('the public API, through package.json exports of the built package', { timeout: 180_000 }, () => {
  let consumer: string;
  beforeAll(async () => {
    consumer = await mkdtemp(path.join(os.tmpdir(), 'api-consumer-'));
    await mkdir(path.join(consumer, 'node_modules'));
    await symlink(REPO_ROOT, path.join(consumer, 'node_modules', 'ros2-upload-agent'), 'dir');
    // A TypeScript consumer has Node's types installed.
    await symlink(path.join(REPO_ROOT, 'node_modules', '@types'), path.join(consumer, 'node_modules', '@types'), 'dir');
    await writeFile(
      path.join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
  });
  afterAll(async () => {
    await rm(consumer, { recursive: true, force: true });
  });

  it('each entry point exports exactly its documented values; nothing else of the package is importable', async () => {
    const script = [
      `const entries = ${JSON.stringify(Object.keys(api))};`,
      'const found = {};',
      'for (const entry of entries) found[entry] = Object.keys(await import(entry)).sort();',
      "try { await import('ros2-upload-agent/dist/agent/cli/run-cli.js'); " +
        "found.private = 'importable'; } catch (error) { found.private = error.code; }",
      'console.log(JSON.stringify(found));',
    ].join('\n');
    await writeFile(path.join(consumer, 'list-exports.mjs'), script);
    const { stdout } = await run(process.execPath, ['list-exports.mjs'], { cwd: consumer });
    const found = JSON.parse(stdout) as Record<string, string[] | string>;
    for (const [entry, documented] of Object.entries(api)) {
      if (documented.atLeast) expect(found[entry], entry).toEqual(expect.arrayContaining(documented.values));
      else expect(found[entry], entry).toEqual([...documented.values].sort());
    }
    expect(found.private).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it("types: every documented name imports from its entry point under TypeScript's NodeNext resolution", async () => {
    const source = Object.entries(api)
      .map(([entry, { values, types }], index) => {
        // Aliased, so one name may come from several entry points in one file.
        const names = [
          ...values.map((name) => `${name} as e${index}_${name}`),
          ...types.map((name) => `type ${name} as e${index}_${name}`),
        ];
        return `import { ${names.join(', ')} } from '${entry}';`;
      })
      .join('\n');
    await writeFile(path.join(consumer, 'consumer.ts'), `${source}\nexport {};\n`);
    await writeFile(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const result = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: consumer }).then(
      () => ({ ok: true, output: '' }),
      (error: { stdout?: string }) => ({ ok: false, output: error.stdout ?? String(error) }),
    );
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });
});
