import type { RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { callerOf } from '../../http/auth.js';
import { parseIndex } from '../../http/fields.js';
import { readChunkForm } from '../../http/multipart-chunk.js';
import { commitLegacyChunk } from '../../uploads/receive-legacy-chunk.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { legacySessionOf } from './legacy-session.js';

/**
 * POST /upload/chunk (legacy API): multipart fields `upload_id`, `chunk_index`, `chunk_total`
 * and the file part `chunk`, streamed to disk.
 */
export function legacyChunkRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const { uploader } = callerOf(res);
    const form = await readChunkForm(
      req,
      context.storage,
      (fields) => {
        if (fields.upload_id === undefined) return undefined;
        const runtime = legacySessionOf(context, uploader, fields.upload_id);
        return { session: runtime.id, maxSize: runtime.record.size };
      },
      context.config.maxFileSize,
    );
    const { fields, part } = form;
    try {
      const runtime = legacySessionOf(context, uploader, fields.upload_id);
      const index = parseIndex('chunk_index', fields.chunk_index);
      const total = parseIndex('chunk_total', fields.chunk_total);
      if (total !== runtime.record.chunkCount) {
        throw new UploadError('INVALID_FIELD', `chunk_total ${total} does not match the ${runtime.record.chunkCount} chunks given at init`);
      }
      if (index >= runtime.record.chunkCount) {
        throw new UploadError('CHUNK_INDEX_OUT_OF_RANGE', `chunk_index ${index} is out of range: this upload has chunks 0 to ${runtime.record.chunkCount - 1}`);
      }
      if (!part) throw new UploadError('INVALID_FIELD', 'the file part "chunk" is missing');
      res.json(await commitLegacyChunk(context, runtime, index, part));
    } catch (error) {
      if (part) await context.storage.removeBlob(part.session, part.blob).catch(() => undefined);
      throw error;
    }
  };
}
