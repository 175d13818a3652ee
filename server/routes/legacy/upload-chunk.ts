import type { RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { callerOf } from '../../http/auth.js';
import { parseIndex } from '../../http/fields.js';
import { readChunkForm } from '../../http/multipart-chunk.js';
import { checkLegacyChunkIndex, legacyPartSink, storeLegacyChunk } from '../../uploads/receive-legacy-chunk.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { legacySessionOf } from './legacy-session.js';

/**
 * POST /upload/chunk (legacy API): multipart fields `upload_id`, `chunk_index`, `chunk_total`
 * and the file part `chunk`, streamed to a spool while the form is read.
 */
export function legacyChunkRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const { uploader } = callerOf(res);
    const form = await readChunkForm(req, context.config.maxFileSize, async (fields) =>
      legacyPartSink(
        context,
        fields.upload_id === undefined ? undefined : await legacySessionOf(context, uploader, fields.upload_id),
      ),
    );
    const { fields, part } = form;
    try {
      const runtime = await legacySessionOf(context, uploader, fields.upload_id);
      const index = parseIndex('chunk_index', fields.chunk_index);
      checkLegacyChunkIndex(runtime, index, parseIndex('chunk_total', fields.chunk_total));
      if (!part) throw new UploadError('INVALID_FIELD', 'the file part "chunk" is missing');
      res.json(await storeLegacyChunk(context, runtime, index, part.kept));
    } catch (error) {
      await part?.sink.discard().catch(() => undefined);
      throw error;
    }
  };
}
