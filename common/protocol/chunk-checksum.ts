import zlib from 'node:zlib';

/**
 * Per-chunk integrity: CRC-32 (zlib's SIMD implementation, built into Node >= 20.15), about
 * 4.5 GB/s on one core here against 0.2 to 1.6 GB/s for SHA-256 depending on SHA instructions.
 * It catches transmission corruption; SHA-256 once per file on each side is the real proof.
 * Header value: `crc32:<8 lowercase hex digits>`.
 */
export class Crc32 {
  #value = 0;

  update(data: Uint8Array): this {
    this.#value = zlib.crc32(data, this.#value);
    return this;
  }

  get value(): number {
    return this.#value;
  }

  header(): string {
    return formatChunkChecksum(this.#value);
  }
}

export function formatChunkChecksum(crc: number): string {
  return `crc32:${(crc >>> 0).toString(16).padStart(8, '0')}`;
}

/** The CRC value of a header, or undefined when it is not `crc32:<8 hex>`. */
export function parseChunkChecksum(header: string | undefined): number | undefined {
  const hex = header ? /^crc32:([0-9a-f]{8})$/i.exec(header.trim())?.[1] : undefined;
  return hex === undefined ? undefined : Number.parseInt(hex, 16);
}
