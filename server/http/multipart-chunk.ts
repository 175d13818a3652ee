import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { UploadError } from '../../common/errors/upload-error.js';

/** Where a form's file part is streamed (the use case decides: see uploads/receive-legacy-chunk.ts). */
export interface FormPartSink<Part> {
  /** The most bytes the part may have (longer parts are refused). */
  readonly maxSize: number;
  /** Streams the part's bytes to where they are kept; resolves with what was kept. */
  write(source: AsyncIterable<Uint8Array>): Promise<Part>;
  /** Deletes what `write` kept (the form failed after it). */
  discard(): Promise<void>;
}

export interface ChunkForm<Part> {
  fields: Record<string, string>;
  /** The `chunk` file part as its sink kept it; undefined when the form had none. */
  part: { kept: Part; sink: FormPartSink<Part> } | undefined;
}

/**
 * Bytes a form's file part may have while the form has not said which upload it belongs to (its
 * `upload_id` comes after the file part): held in memory, never written to disk before the
 * session is known. Python requests and the Python dashboard's client send the fields first;
 * a file-first form with a larger part is refused (400, naming the fix).
 */
export const UNNAMED_PART_LIMIT = 64 * 1024;

/**
 * Reads the legacy API's multipart chunk form with busboy, streaming: the `chunk` file part goes
 * to the sink that `openPart` gives for the fields before it, when they name the upload
 * (`upload_id`), as Python requests and the Python dashboard's client send it. A part that comes
 * before `upload_id` is held in memory, at most UNNAMED_PART_LIMIT bytes, until the form has
 * ended; its sink is opened then, with every field. So no byte reaches the disk before its
 * session is known, and a form with no session costs at most that much memory per connection.
 * `openPart` may throw (an unknown upload id, no space, too much in flight), and the part is then
 * discarded. `maxPartSize` bounds any part (busboy's limit).
 */
export async function readChunkForm<Part>(
  req: IncomingMessage,
  maxPartSize: number,
  openPart: (fields: Record<string, string>) => Promise<FormPartSink<Part>>,
): Promise<ChunkForm<Part>> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { fields: 20, fieldSize: 1024, files: 1, parts: 30, fileSize: maxPartSize },
    });
  } catch (error) {
    const message = (error as Error).message;
    throw /content type/i.test(message)
      ? new UploadError(
          'UNSUPPORTED_MEDIA_TYPE',
          `A chunk must be sent as multipart/form-data, not ${JSON.stringify(req.headers['content-type'] ?? '(none)')}`,
        )
      : new UploadError('BAD_REQUEST', `Malformed multipart form: ${message}`);
  }
  const fields: Record<string, string> = {};
  let part: ChunkForm<Part>['part'];
  let held: Buffer[] | undefined;
  let failure: unknown;
  let writing: Promise<void> | undefined;
  const fail = (error: unknown): void => {
    failure ??= error;
  };
  /** Streams the part into the sink `opening` resolves with; the kept part is `part`. */
  const keep = async (
    opening: Promise<FormPartSink<Part>>,
    source: AsyncIterable<Uint8Array>,
    truncated: () => boolean,
  ): Promise<void> => {
    const sink = await opening;
    try {
      const kept = await sink.write(source);
      part = { kept, sink };
      if (truncated())
        throw new UploadError('CHUNK_SIZE_MISMATCH', `the chunk is larger than the file (${sink.maxSize} bytes)`);
    } catch (error) {
      part = undefined;
      await sink.discard().catch(() => undefined);
      throw error;
    }
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
        if (name !== 'chunk')
          fail(
            new UploadError(
              'INVALID_FIELD',
              `unexpected file part ${JSON.stringify(name)}; the chunk's part is named "chunk"`,
            ),
          );
        stream.resume();
        return;
      }
      if (fields.upload_id === undefined) {
        writing = holdUnnamed(stream.iterator({ destroyOnReturn: false })).then(
          (pieces) => {
            held = pieces;
          },
          (error: unknown) => {
            fail(partError ?? error);
            stream.resume();
          },
        );
        return;
      }
      writing = keep(openPart({ ...fields }), stream.iterator({ destroyOnReturn: false }), () =>
        Boolean((stream as { truncated?: boolean }).truncated),
      ).catch((error: unknown) => {
        fail(partError ?? error);
        stream.resume();
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
  if (failure === undefined && held !== undefined) {
    // The form named its upload after the file part: the part's sink is known only now.
    const pieces = held;
    await keep(
      openPart({ ...fields }),
      (async function* replay() {
        yield* pieces;
      })(),
      () => false,
    ).catch(fail);
  }
  if (failure !== undefined) {
    await part?.sink.discard().catch(() => undefined);
    throw failure;
  }
  return { fields, part };
}

/** Holds a part that came before its upload_id in memory, refusing it beyond UNNAMED_PART_LIMIT. */
async function holdUnnamed(stream: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  let size = 0;
  for await (const piece of stream) {
    size += piece.byteLength;
    if (size > UNNAMED_PART_LIMIT)
      throw new UploadError(
        'INVALID_FIELD',
        `The form's file part comes before its upload_id field and is over ${UNNAMED_PART_LIMIT / 1024} ` +
          `KiB: send upload_id (with chunk_index and chunk_total) before the file part, as the ` +
          `Python dashboard's client does`,
      );
    pieces.push(piece);
  }
  return pieces;
}
