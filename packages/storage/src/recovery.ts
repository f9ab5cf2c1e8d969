import type { StoreRecord } from '@synod/protocol';
import type { ByteSource } from './byte-source.js';
import { CorruptStoreError, RecordDecodeError } from './errors.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_MAGIC_HIGH,
  FRAME_MAGIC_LOW,
  payloadIntact,
  readFrameHeader,
} from './frame.js';
import { decodeRecord } from './record-codec.js';

/** Start positions tried per read while looking for a valid frame past a damaged one. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

const ADVICE =
  "restore this acceptor's data from a backup of this same acceptor, or remove the node from " +
  'its group and add it back as a new, empty member; do not just delete the file: an acceptor ' +
  'that forgets its promises and acceptances can break consensus';

export interface RecoveredLog {
  readonly records: StoreRecord[];
  /** Where the last complete, intact record ends: the file is cut here if it is longer. */
  readonly goodEnd: number;
}

/**
 * Reads every frame from `start` and decides what a crash left behind.
 *
 * A write is torn only at the end of the file: frames are appended, and nothing is written
 * after a batch until its fsync returned. So a damaged frame with nothing valid after it is a
 * torn final write, never acknowledged, and is dropped. A damaged frame followed by a valid
 * one is damage in the middle of the log, which may have held acknowledged promises: recovery
 * refuses (CorruptStoreError) rather than lose them silently.
 */
export async function recoverLog(
  source: ByteSource,
  path: string,
  start: number,
  maxRecordBytes: number,
): Promise<RecoveredLog> {
  const records: StoreRecord[] = [];
  const size = source.size;
  let offset = start;
  while (offset < size) {
    if (size - offset < FRAME_HEADER_BYTES) break; // a torn header
    const header = readFrameHeader(await source.read(offset, FRAME_HEADER_BYTES), 0);
    if (header === undefined) {
      // The length cannot be trusted, so any later byte may begin the next frame.
      await refuseIfFollowed(source, path, offset, offset + 1, maxRecordBytes, 'header');
      break;
    }
    const end = offset + FRAME_HEADER_BYTES + header.payloadBytes;
    if (end > size) break; // a torn payload: its header is intact, its bytes never all landed
    if (header.payloadBytes > maxRecordBytes) {
      // Not torn (its header checksum holds): written with a larger limit, or damaged.
      throw new CorruptStoreError(
        path,
        offset,
        `a record declares ${header.payloadBytes} payload bytes, over maxRecordBytes ` +
          `(${maxRecordBytes}); if this log was written with a larger limit, open it with that`,
      );
    }
    const payload = await source.read(offset + FRAME_HEADER_BYTES, header.payloadBytes);
    if (!payloadIntact(header, payload)) {
      // The intact header says where this frame ends; the bytes inside it are only payload.
      await refuseIfFollowed(source, path, offset, end, maxRecordBytes, 'payload');
      break;
    }
    records.push(decodeAt(payload, path, offset));
    offset = end;
  }
  return { records, goodEnd: offset };
}

function decodeAt(payload: Uint8Array, path: string, offset: number): StoreRecord {
  try {
    return decodeRecord(payload);
  } catch (error) {
    // Good checksums: these are the bytes that were written, so this is a bug or a foreign file.
    const reason = error instanceof RecordDecodeError ? error.reason : String(error);
    throw new CorruptStoreError(
      path,
      offset,
      `the record has intact checksums but does not decode (${reason}); ${ADVICE}`,
      { cause: error },
    );
  }
}

async function refuseIfFollowed(
  source: ByteSource,
  path: string,
  offset: number,
  scanFrom: number,
  maxRecordBytes: number,
  damaged: 'header' | 'payload',
): Promise<void> {
  const next = await findValidFrame(source, scanFrom, maxRecordBytes);
  if (next === undefined) return;
  const what = damaged === 'header' ? 'its header' : 'its payload checksum';
  throw new CorruptStoreError(
    path,
    offset,
    `the record at byte ${offset} is corrupt (${what} does not match) and is followed by a ` +
      `valid record at byte ${next}, so this is not a torn final write; ${ADVICE}`,
  );
}

/**
 * The offset of the first valid frame (good magic, good header checksum, payload within the
 * file, good payload checksum) starting at or after `from`, trying every byte position.
 * A frame whose intact header declares more than maxRecordBytes counts as valid without its
 * payload being read: it cannot be a torn write, and reading it could allocate gigabytes.
 */
export async function findValidFrame(
  source: ByteSource,
  from: number,
  maxRecordBytes: number,
): Promise<number | undefined> {
  const size = source.size;
  for (
    let chunkStart = from;
    chunkStart + FRAME_HEADER_BYTES <= size;
    chunkStart += SCAN_CHUNK_BYTES
  ) {
    const chunkEnd = Math.min(size, chunkStart + SCAN_CHUNK_BYTES + FRAME_HEADER_BYTES - 1);
    const chunk = await source.read(chunkStart, chunkEnd - chunkStart);
    for (let i = 0; i < SCAN_CHUNK_BYTES && i + FRAME_HEADER_BYTES <= chunk.length; i++) {
      // The magic check first: it rules out almost every position without a checksum.
      if (chunk[i] !== FRAME_MAGIC_LOW || chunk[i + 1] !== FRAME_MAGIC_HIGH) continue;
      const header = readFrameHeader(chunk, i);
      if (header === undefined) continue;
      const at = chunkStart + i;
      if (at + FRAME_HEADER_BYTES + header.payloadBytes > size) continue;
      if (header.payloadBytes > maxRecordBytes) return at;
      const payload = await source.read(at + FRAME_HEADER_BYTES, header.payloadBytes);
      if (payloadIntact(header, payload)) return at;
    }
  }
  return undefined;
}
