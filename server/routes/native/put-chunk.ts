import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { parseIndex } from '../../http/fields.js';
import { receiveNativeChunk } from '../../uploads/receive-native-chunk.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** PUT /v1/sessions/:id/chunks/:index: a raw chunk body, verified before it is acknowledged. */
export function putChunkRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    const index = parseIndex('chunk index', String(req.params.index));
    res.json(await receiveNativeChunk(context, runtime, index, req));
  };
}
