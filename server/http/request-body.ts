import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import type { UploadBody } from '../uploads/upload-body.js';

export interface RequestBody {
  /** The decoded body, streamed. */
  source: AsyncIterable<Uint8Array>;
  /**
   * Reads and discards whatever the handler did not consume, so that an error answer reaches a
   * client that is still sending (Node does not drain a body that was partly read).
   */
  discardRest(): void;
}

/**
 * A raw request body as an async iterable that, unlike `for await (… of req)`, does not destroy
 * the socket when the consumer stops early (so a 400/422 answer can still be sent), decoded
 * when `Content-Encoding: gzip`. A client that disconnects makes the iteration throw.
 */
export function requestBody(req: IncomingMessage, encoding: 'identity' | 'gzip'): RequestBody {
  const discardRest = (): void => discardRestOf(req);
  if (encoding === 'identity') return { source: clientBytes(req), discardRest };
  const gunzip = createGunzip();
  // The consumer starts iterating only after opening its file; until then an error (not gzip at
  // all) must not be an uncaught 'error' event. The iteration still sees it (the stream errored).
  gunzip.on('error', () => undefined);
  const onClose = (): void => {
    // Not `req.complete`: the body may have arrived whole and still not been read to its end.
    if (!req.readableEnded)
      gunzip.destroy(new UploadError('BAD_REQUEST', 'the client closed the connection before its request was handled'));
  };
  req.pipe(gunzip);
  // The handler may start reading after awaiting something else, by when the client may be gone:
  // a closed request never emits 'close' again (and never ends), so check now as well.
  if (req.destroyed) onClose();
  else req.once('close', onClose);
  const source = (async function* (): AsyncIterable<Uint8Array> {
    try {
      for await (const piece of gunzip) yield piece as Buffer;
    } catch (error) {
      if (error instanceof UploadError) throw error;
      throw new UploadError('BAD_REQUEST', `the gzip-encoded body is not valid gzip: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      req.off('close', onClose);
    }
  })();
  return { source, discardRest };
}

/**
 * A request's body as the use cases take it: decoded lazily (the gzip decoder is attached only
 * when the bytes are read, so a body that is skipped is drained as sent).
 */
export function uploadBodyOf(req: IncomingMessage, encoding: 'identity' | 'gzip'): UploadBody {
  let opened: RequestBody | undefined;
  return {
    bytes: () => {
      opened ??= requestBody(req, encoding);
      return opened.source;
    },
    skip: () => drainBody(req),
    discardRest: () => discardRestOf(req),
    abort: (reason) => req.destroy(reason),
  };
}

function discardRestOf(req: IncomingMessage): void {
  if (!req.complete && !req.destroyed) {
    req.unpipe();
    req.resume();
  }
}

/** Reads and discards a whole body (a duplicate chunk); resolves when it ended. */
export async function drainBody(req: IncomingMessage): Promise<void> {
  if (req.complete) return;
  for await (const piece of clientBytes(req)) void piece;
}

/**
 * The body's bytes as they arrive. A request stream fails only when its connection closed (or
 * when the server aborted it, with an UploadError as the reason): a client that hangs up before
 * its request was handled, even when all its bytes had arrived, is the client's doing. Node's
 * "aborted" (ECONNRESET) becomes a 400 BAD_REQUEST, so it is not reported (and logged) as a
 * server fault.
 */
async function* clientBytes(req: IncomingMessage): AsyncIterable<Uint8Array> {
  try {
    yield* req.iterator({ destroyOnReturn: false });
  } catch (error) {
    if (isUploadError(error)) throw error;
    throw new UploadError('BAD_REQUEST', 'the client closed the connection before its request was handled', {
      cause: error,
    });
  }
}
