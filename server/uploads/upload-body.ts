/**
 * The body of an upload request as the use cases see it: a stream of bytes, not an HTTP
 * message. The HTTP layer makes one per request (http/request-body.ts), decoding a
 * gzip-encoded body on the way.
 */
export interface UploadBody {
  /** The decoded bytes, streamed; read once. A client that disconnects makes the iteration throw. */
  bytes(): AsyncIterable<Uint8Array>;
  /** Reads and discards the whole body as sent (a duplicate chunk, a file already stored); resolves when it ended. */
  skip(): Promise<void>;
  /** Stops reading for good: the rest is discarded, so that an error answer still reaches a client that is sending. */
  discardRest(): void;
  /** Ends the transfer now (a newer request for the same chunk took over, or the session was cancelled). */
  abort(reason: Error): void;
}
