import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { UploadError } from '../../common/errors/upload-error.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import type { UploadStorage } from '../storage/upload-storage.js';

/** The temp area of parts that arrive before their upload_id field. */
export const INCOMING_AREA = 'incoming';

export interface ChunkForm {
  fields: Record<string, string>;
  /** The `chunk` file part, streamed to a blob; undefined when the form had none. */
  part: { session: string; blob: string; size: number; crc: number } | undefined;
}

/**
 * Reads the legacy API's multipart chunk form with busboy, streaming: the `chunk` file part goes to a
 * part blob (in the session's temp area when `upload_id` came first, as Python requests and the
 * Python dashboard's client send it, otherwise in `temp/incoming`), through a ChunkVerifier for its size and
 * CRC. `destination` is asked where the part goes once the fields before it are known; it may
 * throw (an unknown upload id), and the part is then discarded. Nothing is buffered in memory.
 */
export async function readChunkForm(
  req: IncomingMessage,
  storage: UploadStorage,
  destination: (fields: Record<string, string>) => { session: string; maxSize: number } | undefined,
  fallbackMaxSize: number,
): Promise<ChunkForm> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, limits: { fields: 20, fieldSize: 1024, files: 1, parts: 30, fileSize: fallbackMaxSize } });
  } catch (error) {
    const message = (error as Error).message;
    throw /content type/i.test(message)
      ? new UploadError('UNSUPPORTED_MEDIA_TYPE', `A chunk must be sent as multipart/form-data, not ${JSON.stringify(req.headers['content-type'] ?? '(none)')}`)
      : new UploadError('BAD_REQUEST', `Malformed multipart form: ${message}`);
  }
  const fields: Record<string, string> = {};
  let part: ChunkForm['part'];
  let failure: unknown;
  let writing: Promise<void> | undefined;
  const fail = (error: unknown): void => {
    failure ??= error;
  };

  await new Promise<void>((resolve) => {
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(new UploadError('INVALID_FIELD', `field ${name} is too long`));
      fields[name] = value;
    });
    parser.on('file', (name, stream) => {
      // busboy destroys a part's stream with an error when the form ends inside it (no closing
      // boundary, a malformed part): unheard, that 'error' event would crash the process.
      let partError: UploadError | undefined;
      stream.on('error', (error: Error) => {
        partError ??= new UploadError('BAD_REQUEST', `Malformed multipart form: ${error.message}`, { cause: error });
        fail(partError);
      });
      if (name !== 'chunk' || failure !== undefined || writing) {
        if (name !== 'chunk') fail(new UploadError('INVALID_FIELD', `unexpected file part ${JSON.stringify(name)}; the chunk's part is named "chunk"`));
        stream.resume();
        return;
      }
      let target: { session: string; maxSize: number } | undefined;
      try {
        target = destination(fields);
      } catch (error) {
        fail(error);
        stream.resume();
        return;
      }
      const session = target?.session ?? INCOMING_AREA;
      const blob = `part-${randomUUID()}`;
      const maxSize = target?.maxSize ?? fallbackMaxSize;
      const verifier = new ChunkVerifier(maxSize);
      writing = storage
        .writeAt(session, blob, 0, verifier.through(stream.iterator({ destroyOnReturn: false })))
        .then(() => {
          if ((stream as { truncated?: boolean }).truncated) throw new UploadError('CHUNK_SIZE_MISMATCH', `the chunk is larger than the file (${maxSize} bytes)`);
          part = { session, blob, size: verifier.length, crc: verifier.crc };
        })
        .catch(async (error: unknown) => {
          fail(partError ?? error);
          stream.resume();
          await storage.removeBlob(session, blob).catch(() => undefined);
        });
    });
    parser.on('filesLimit', () => fail(new UploadError('INVALID_FIELD', 'only one file part (chunk) is allowed')));
    parser.on('fieldsLimit', () => fail(new UploadError('INVALID_FIELD', 'too many form fields')));
    parser.on('partsLimit', () => fail(new UploadError('INVALID_FIELD', 'too many form parts')));
    parser.on('error', (error: Error) => {
      fail(new UploadError('BAD_REQUEST', `Malformed multipart form: ${error.message}`, { cause: error }));
      req.unpipe(parser);
      req.resume();
      resolve();
    });
    parser.on('close', () => resolve());
    const onClose = (): void => {
      // Not `req.complete`: the whole form may have arrived and still not been read to its end
      // when the connection goes (garbage after it makes Node drop the connection).
      if (req.readableEnded) return;
      // The connection closed inside the form: busboy would wait for the rest forever, and with
      // it the part's write and its open file. Destroying the parser ends the part's stream.
      const gone = new UploadError('BAD_REQUEST', 'the client closed the connection before the form ended');
      fail(gone);
      parser.destroy(gone);
      resolve();
    };
    req.pipe(parser);
    // A request already closed (while an earlier handler awaited) never emits 'close' again.
    if (req.destroyed) onClose();
    else req.once('close', onClose);
  });
  await writing;
  if (failure !== undefined) {
    if (part) await storage.removeBlob(part.session, part.blob).catch(() => undefined);
    throw failure;
  }
  return { fields, part };
}
