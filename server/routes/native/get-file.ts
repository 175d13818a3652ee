import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, RequestHandler, Response } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import { parseByteRange } from '../../http/byte-range.js';
import { readStoredFile } from '../../uploads/read-stored-file.js';
import { storedFile } from '../../uploads/stored-files.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { filePathOf } from './file-path.js';

/**
 * GET /v1/files/<path>: a file this uploader has stored. JSON metadata by default (without
 * creating a session); its bytes with `Accept: application/octet-stream`, whole or one range
 * (`Range: bytes=a-b`, 206), read through the storage.
 */
export function getFileRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const relativePath = normaliseRelativePath(filePathOf(req));
    const owner = ownerOf(req, res);
    if (req.accepts(['application/json', 'application/octet-stream']) !== 'application/octet-stream') {
      res.json(await storedFile(context, owner, relativePath));
      return;
    }
    let unsatisfiable = false;
    const read = await readStoredFile(context, owner, relativePath, (size) => {
      const range = parseByteRange(req.headers.range, size);
      if (range !== 'unsatisfiable') return range;
      unsatisfiable = true;
      return undefined;
    });
    const { record, range } = read;
    if (unsatisfiable) {
      res.setHeader('Content-Range', `bytes */${record.size}`);
      throw new UploadError(
        'RANGE_NOT_SATISFIABLE',
        `The range ${req.headers.range} is outside ${relativePath} (${record.size} bytes)`,
      );
    }
    const name = relativePath.split('/').pop() ?? 'file';
    res.status(range ? 206 : 200);
    res.set({
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(range ? range.end - range.start + 1 : record.size),
      'Accept-Ranges': 'bytes',
      ETag: `"${record.sha256}"`,
      'X-Content-SHA256': record.sha256,
      'Last-Modified': new Date(record.completedAt).toUTCString(),
      'Content-Disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
      ...(range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${record.size}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // A read error mid-body cannot change the status any more: the connection is cut, and the
    // client sees a short body (Content-Length says how long it should have been).
    await pipeline(Readable.from(read.body), res).catch(() => res.destroy());
  };
}

/**
 * Whose files the caller may read: today only its own. Viewer tokens (the dashboard work) widen
 * this: a viewer may name another uploader here, and nowhere else needs to change.
 */
function ownerOf(_req: Request, res: Response): string {
  return callerOf(res).uploader;
}
