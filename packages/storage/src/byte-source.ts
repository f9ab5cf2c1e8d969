import type { FileHandle } from 'node:fs/promises';

/** Bytes read per file read while recovering; large enough that a scan is a few reads. */
const WINDOW_BYTES = 1024 * 1024;

/**
 * Positional reads of a file being recovered, through one cached window, so a sequential
 * scan costs one read per megabyte rather than two per record, and a log larger than one
 * Buffer can hold still opens. A returned view stays valid: a new window is a new buffer.
 */
export class ByteSource {
  readonly #handle: FileHandle;
  readonly size: number;
  #window: Uint8Array = new Uint8Array(0);
  #windowStart = 0;

  constructor(handle: FileHandle, size: number) {
    this.#handle = handle;
    this.size = size;
  }

  /** `length` bytes from `offset`; the range must lie within the file. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(
        `read of ${length} bytes at ${offset} is outside a file of ${this.size}`,
      );
    }
    const from = offset - this.#windowStart;
    if (from >= 0 && from + length <= this.#window.length) {
      return this.#window.subarray(from, from + length);
    }
    const want = Math.min(Math.max(length, WINDOW_BYTES), this.size - offset);
    const window = new Uint8Array(want);
    let filled = 0;
    while (filled < want) {
      const { bytesRead } = await this.#handle.read(window, filled, want - filled, offset + filled);
      if (bytesRead === 0) throw new Error(`the file shrank while it was being recovered`);
      filled += bytesRead;
    }
    this.#window = window;
    this.#windowStart = offset;
    return window.subarray(0, length);
  }
}
