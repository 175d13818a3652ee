import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { readChunkHeaders } from '../../http/chunk-headers.js';
import { parseIndex } from '../../http/fields.js';
import { uploadBodyOf } from '../../http/request-body.js';
import { nativeChunkSlot, receiveNativeChunk } from '../../uploads/receive-native-chunk.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** PUT /v1/sessions/:id/chunks/:index: a raw chunk body, verified before it is acknowledged. */
export function putChunkRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = await context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    const slot = nativeChunkSlot(runtime, parseIndex('chunk index', String(req.params.index)));
    const { encoding, crc, prefixSha256 } = readChunkHeaders(req, slot.index, slot.length);
    const body = uploadBodyOf(req, encoding);
    res.json(await receiveNativeChunk(context, runtime, { slot, crc, prefixSha256, body }));
  };
}
