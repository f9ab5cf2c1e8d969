import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { CorruptStoreError } from './errors.js';

/** A state machine's state after applying every log slot through `throughSlot`. */
export interface SnapshotFile {
  readonly throughSlot: number;
  readonly state: Uint8Array;
}

const MAGIC = new TextEncoder().encode('SYNODSNP');
const VERSION = 1;
/** magic | u32 version | f64 throughSlot | u32 state length | u32 crc32(throughSlot..state) */
const HEADER_BYTES = MAGIC.length + 4 + 8 + 4 + 4;

/**
 * Writes a snapshot durably and atomically: a temporary file, fsync, rename over `path`, fsync
 * of the directory. A crash leaves the previous snapshot or this one, never a mix. Only after
 * this resolves may the log be compacted through `throughSlot`.
 */
export async function writeSnapshotFile(
  path: string,
  snapshot: SnapshotFile,
  options: { readonly fsync?: boolean } = {},
): Promise<void> {
  if (!Number.isSafeInteger(snapshot.throughSlot) || snapshot.throughSlot < 0)
    throw new RangeError(`throughSlot must be a slot number, got ${snapshot.throughSlot}`);
  const fsync = options.fsync ?? true;
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  view.setUint32(MAGIC.length, VERSION, true);
  view.setFloat64(MAGIC.length + 4, snapshot.throughSlot, true);
  view.setUint32(MAGIC.length + 12, snapshot.state.length, true);
  const checked = header.subarray(MAGIC.length + 4, MAGIC.length + 16);
  view.setUint32(MAGIC.length + 16, crc32(snapshot.state, crc32(checked)) >>> 0, true);
  const temporary = `${path}.tmp`;
  await rm(temporary, { force: true });
  const handle = await open(temporary, 'wx');
  try {
    await handle.writeFile(Buffer.concat([header, snapshot.state]));
    if (fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  if (fsync) {
    const directory = await open(dirname(path), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

/**
 * Reads the snapshot at `path`: undefined when there is none, CorruptStoreError when the file
 * is not a whole, intact snapshot (it was written atomically, so that is damage, not a crash).
 */
export async function readSnapshotFile(path: string): Promise<SnapshotFile | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const corrupt = (offset: number, reason: string): never => {
    throw new CorruptStoreError(path, offset, reason);
  };
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC))
    corrupt(0, 'not a synod snapshot (its first bytes are not SYNODSNP)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = view.getUint32(MAGIC.length, true);
  if (version !== VERSION) corrupt(MAGIC.length, `unsupported snapshot format version ${version}`);
  const throughSlot = view.getFloat64(MAGIC.length + 4, true);
  const length = view.getUint32(MAGIC.length + 12, true);
  if (bytes.length !== HEADER_BYTES + length)
    corrupt(
      HEADER_BYTES,
      `the state should be ${length} bytes, the file holds ${bytes.length - HEADER_BYTES}`,
    );
  const state = bytes.subarray(HEADER_BYTES);
  const checked = bytes.subarray(MAGIC.length + 4, MAGIC.length + 16);
  if (crc32(state, crc32(checked)) >>> 0 !== view.getUint32(MAGIC.length + 16, true))
    corrupt(MAGIC.length + 4, 'checksum mismatch');
  if (!Number.isSafeInteger(throughSlot) || throughSlot < 0)
    corrupt(MAGIC.length + 4, `bad slot number ${throughSlot}`);
  return { throughSlot, state: new Uint8Array(state) };
}
