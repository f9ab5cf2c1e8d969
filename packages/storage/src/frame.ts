import { crc32 } from 'node:zlib';

/**
 * The on-disk layout (README.md has the full description). All integers little-endian.
 *
 * File header, written once at creation: the 8 ASCII bytes `SYNODACC` and a u32 format
 * version. It makes a foreign file fail loudly instead of being taken for a torn tail and
 * truncated.
 *
 * Frame, one per record: magic u16 | payload length u32 | crc32(payload) u32 |
 * crc32(the 10 header bytes before it) u32, then the payload. The header checksum is what lets
 * recovery trust a length field: without it, one flipped bit in a length would look like a
 * record running past the end of the file, i.e. like a torn write, and be cut off silently.
 */
export const FORMAT_VERSION = 1;
const FILE_MAGIC = new TextEncoder().encode('SYNODACC');
export const FILE_HEADER_BYTES = FILE_MAGIC.length + 4;

export const FRAME_MAGIC = 0x5953; // the bytes 'S' 'Y' on disk
export const FRAME_MAGIC_LOW = FRAME_MAGIC & 0xff;
export const FRAME_MAGIC_HIGH = FRAME_MAGIC >> 8;
export const FRAME_HEADER_BYTES = 14;
const CHECKED_HEADER_BYTES = 10;

export function fileHeader(): Uint8Array {
  const bytes = new Uint8Array(FILE_HEADER_BYTES);
  bytes.set(FILE_MAGIC, 0);
  new DataView(bytes.buffer).setUint32(FILE_MAGIC.length, FORMAT_VERSION, true);
  return bytes;
}

/** What the first bytes of a file say about it. */
export type FileHeaderCheck =
  | { readonly kind: 'ok' }
  /** Shorter than a header but a prefix of one: a crash while the file was being created. */
  | { readonly kind: 'unfinished' }
  | { readonly kind: 'foreign' }
  | { readonly kind: 'version'; readonly version: number };

export function checkFileHeader(bytes: Uint8Array): FileHeaderCheck {
  const expected = fileHeader();
  const n = Math.min(bytes.length, FILE_HEADER_BYTES);
  const magicBytes = Math.min(n, FILE_MAGIC.length);
  for (let i = 0; i < magicBytes; i++) if (bytes[i] !== expected[i]) return { kind: 'foreign' };
  if (bytes.length < FILE_HEADER_BYTES) {
    for (let i = magicBytes; i < n; i++) if (bytes[i] !== expected[i]) return { kind: 'foreign' };
    return { kind: 'unfinished' };
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset).getUint32(FILE_MAGIC.length, true);
  return version === FORMAT_VERSION ? { kind: 'ok' } : { kind: 'version', version };
}

/** The frame of one payload: header and payload in one buffer, ready for a batch write. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint16(0, FRAME_MAGIC, true);
  view.setUint32(2, payload.length, true);
  view.setUint32(6, crc32(payload), true);
  view.setUint32(10, crc32(frame.subarray(0, CHECKED_HEADER_BYTES)), true);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export interface FrameHeader {
  readonly payloadBytes: number;
  readonly payloadCrc: number;
}

/**
 * The frame header at `at` in `bytes` (which must hold FRAME_HEADER_BYTES from there), or
 * undefined when its magic or its own checksum is wrong.
 */
export function readFrameHeader(bytes: Uint8Array, at: number): FrameHeader | undefined {
  if (bytes[at] !== FRAME_MAGIC_LOW || bytes[at + 1] !== FRAME_MAGIC_HIGH) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, FRAME_HEADER_BYTES);
  const headerCrc = view.getUint32(10, true);
  if (crc32(bytes.subarray(at, at + CHECKED_HEADER_BYTES)) !== headerCrc) return undefined;
  return { payloadBytes: view.getUint32(2, true), payloadCrc: view.getUint32(6, true) };
}

export function payloadIntact(header: FrameHeader, payload: Uint8Array): boolean {
  return crc32(payload) === header.payloadCrc;
}
