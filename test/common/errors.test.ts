import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localErrorCodes } from '../../common/errors/local-errors.js';
import {
  UploadError,
  errorCodes,
  isUploadError,
  isUploadErrorCode,
  type UploadErrorCode,
} from '../../common/errors/upload-error.js';
import { isWireErrorCode, wireErrorCodes, wireErrorStatus } from '../../common/protocol/errors/wire-errors.js';
import { routes } from '../../common/protocol/native-protocol.js';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { httpStatusError } from '../../agent/engine/transport/http-errors.js';
import { httpStatusOf } from '../../server/index.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';

describe('error codes: the wire contract and the local ones', () => {
  it('splits every code into exactly one of the two lists', () => {
    const wire = Object.keys(wireErrorCodes);
    const local = Object.keys(localErrorCodes);
    expect(wire.filter((code) => local.includes(code))).toEqual([]);
    expect([...wire, ...local].sort()).toEqual(Object.keys(errorCodes).sort());
    for (const code of wire) expect(new UploadError(code as UploadErrorCode, 'x').kind).toBe('wire');
    for (const code of local) expect(new UploadError(code as UploadErrorCode, 'x').kind).toBe('local');
  });

  it('gives every wire code an error status, and the server answers with exactly that status', () => {
    for (const code of Object.keys(wireErrorCodes) as (keyof typeof wireErrorCodes)[]) {
      const status = wireErrorStatus[code];
      expect(status >= 400 && status < 600, `${code} → ${status}`).toBe(true);
      expect(httpStatusOf(code)).toBe(status);
    }
    // A local code never reaches a client as itself.
    for (const code of Object.keys(localErrorCodes) as UploadErrorCode[]) expect(httpStatusOf(code)).toBe(500);
  });

  it('carries its details, typed by code, and narrows by code', () => {
    const error: unknown = new UploadError('FILE_CHANGED', 'changed', {
      details: { before: { size: 1, mtimeMs: 2 }, after: { size: 3, mtimeMs: 4 } },
    });
    expect(isUploadError(error, 'FILE_CHANGED') && error.details?.after.size).toBe(3);
    expect(isUploadError(error, 'NETWORK')).toBe(false);
    expect(new UploadError('CHUNKS_MISSING', 'gaps', { details: { missing: [2, 5] } }).toJSON()).toEqual({
      code: 'CHUNKS_MISSING',
      message: 'gaps',
      details: { missing: [2, 5] },
    });
    expect(isUploadErrorCode('LOCAL_FILE_NOT_FOUND') && !isWireErrorCode('LOCAL_FILE_NOT_FOUND')).toBe(true);
  });

  it("on the agent, takes only a wire code as the server's, and keeps any other as serverCode", () => {
    const known = httpStatusError(
      'f: chunk 1',
      409,
      { success: false, error: 'gaps', code: 'CHUNKS_MISSING', missing: [1] },
      undefined,
    );
    expect(known).toMatchObject({
      code: 'CHUNKS_MISSING',
      details: { status: 409, serverCode: 'CHUNKS_MISSING', missing: [1] },
    });
    const local = httpStatusError('f: chunk 1', 500, { success: false, error: 'disk', code: 'STATE_DIR' }, undefined);
    expect(local).toMatchObject({ code: 'HTTP_STATUS', details: { status: 500, serverCode: 'STATE_DIR' } });
  });
});

describe('"file not found" means one thing per side', () => {
  let server: TestServer;
  let stateDir: string;
  beforeAll(async () => {
    server = await startTestServer();
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'errors-state-'));
  });
  afterAll(async () => {
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('the server answers 404 FILE_NOT_FOUND for a stored file it does not hold', async () => {
    const answer = await fetch(server.url + routes.file('never/uploaded.bin'));
    expect(answer.status).toBe(404);
    expect(await answer.json()).toMatchObject({ success: false, code: 'FILE_NOT_FOUND' });
  });

  it('the agent refuses a local file that does not exist with LOCAL_FILE_NOT_FOUND', async () => {
    const manager = new NetworkManager({ serverUrl: server.url, stateDir });
    try {
      await expect(manager.addUpload(path.join(stateDir, 'nope.bin'))).rejects.toMatchObject({
        code: 'LOCAL_FILE_NOT_FOUND',
        kind: 'local',
      });
    } finally {
      await manager.stop();
    }
  });
});
