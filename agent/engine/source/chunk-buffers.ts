import { UploadError } from '../../../common/errors/upload-error.js';

/**
 * The chunk buffers of one upload: at most `limit` buffers of `size` bytes, reused from chunk to
 * chunk instead of allocating a new one per chunk (an 8 MiB allocation per chunk leaves dead
 * buffers for the GC and raises the peak RSS). With read-ahead an upload needs two: the chunk on
 * the wire and the next one being read. A buffer is given back once its chunk's body left whole
 * (see throttledBody's onSent) or was acknowledged, so it is never overwritten while a request
 * may still send from it.
 */
export class ChunkBuffers {
  readonly #size: number;
  readonly #limit: number;
  readonly #all: Buffer[] = [];
  readonly #free: Buffer[] = [];

  constructor(size: number, limit = 2) {
    this.#size = size;
    this.#limit = limit;
  }

  /** A view of `length` bytes (at most the buffer size) of a free buffer. */
  take(length: number): Buffer {
    if (length > this.#size)
      throw new UploadError(
        'INTERNAL',
        `a chunk of ${length} bytes does not fit the chunk buffers (${this.#size} bytes)`,
      );
    let buffer = this.#free.pop();
    if (!buffer) {
      if (this.#all.length >= this.#limit)
        throw new UploadError('INTERNAL', `more than ${this.#limit} chunk buffers in use by one upload`);
      // Not from Node's shared pool: each buffer is its own allocation, freed with the upload.
      buffer = Buffer.allocUnsafeSlow(this.#size);
      this.#all.push(buffer);
    }
    return buffer.subarray(0, length);
  }

  /** Gives back the buffer behind a view from take(). */
  give(view: Buffer): void {
    const owner = this.#all.find((buffer) => buffer.buffer === view.buffer);
    if (owner && !this.#free.includes(owner)) this.#free.push(owner);
  }

  /**
   * Takes the buffer behind a view out of the pool for good, without reusing it: a request that
   * failed while sending from it may still hold it. A new buffer may be allocated in its place.
   */
  retire(view: Buffer): void {
    const owner = this.#all.findIndex((buffer) => buffer.buffer === view.buffer);
    if (owner >= 0) this.#all.splice(owner, 1);
    const free = this.#free.findIndex((buffer) => buffer.buffer === view.buffer);
    if (free >= 0) this.#free.splice(free, 1);
  }

  /** Forgets every buffer (views still held keep theirs alive until they are dropped). */
  clear(): void {
    this.#all.length = 0;
    this.#free.length = 0;
  }

  /** Buffers allocated so far (for tests). */
  get allocated(): number {
    return this.#all.length;
  }
}
