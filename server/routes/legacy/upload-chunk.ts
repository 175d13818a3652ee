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
 * and the file part `chunk`, streamed to a spool of its session while the form is read (a part
 * before its `upload_id` waits in a small buffer: see readChunkForm).
 */
export function legacyChunkRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const { uploader } = callerOf(res);
    const declared = Number(req.headers['content-length']);
    const form = await readChunkForm(req, context.config.maxFileSize, async (fields) =>
      legacyPartSink(context, await legacySessionOf(context, uploader, fields.upload_id), {
        index: indexHint(fields.chunk_index),
        declaredLength: Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined,
      }),
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

/** `chunk_index` when it is a valid index, else undefined (it is checked properly once the form ended). */
function indexHint(value: string | undefined): number | undefined {
  try {
    return value === undefined ? undefined : parseIndex('chunk_index', value);
  } catch {
    return undefined;
  }
}
