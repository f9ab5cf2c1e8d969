import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { CorruptStoreError } from './errors.js';

/** A state machine's state after applying every log slot through `throughSlot`. */
export interface SnapshotFile {
  readonly throughSlot: number;
  readonly state: Uint8Array;
  /** What the node keeps with the state (the group's membership through throughSlot). */
  readonly meta?: Uint8Array;
}

const MAGIC = new TextEncoder().encode('SYNODSNP');
/** Version 1 has no meta; version 2 is written only when there is some. */
const VERSION = 1;
const VERSION_WITH_META = 2;
/**
 * magic | u32 version | f64 throughSlot | u32 state length | u32 crc32, then in version 2 a
 * u32 meta length and the meta, then the state. The crc covers slot, length, meta and state.
 */
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
  const meta = snapshot.meta;
  const header = new Uint8Array(HEADER_BYTES + (meta === undefined ? 0 : 4 + meta.length));
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  view.setUint32(MAGIC.length, meta === undefined ? VERSION : VERSION_WITH_META, true);
  view.setFloat64(MAGIC.length + 4, snapshot.throughSlot, true);
  view.setUint32(MAGIC.length + 12, snapshot.state.length, true);
  let crc = crc32(header.subarray(MAGIC.length + 4, MAGIC.length + 16));
  if (meta !== undefined) {
    view.setUint32(HEADER_BYTES, meta.length, true);
    header.set(meta, HEADER_BYTES + 4);
    crc = crc32(header.subarray(HEADER_BYTES), crc);
  }
  view.setUint32(MAGIC.length + 16, crc32(snapshot.state, crc) >>> 0, true);
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
  if (version !== VERSION && version !== VERSION_WITH_META)
    corrupt(MAGIC.length, `unsupported snapshot format version ${version}`);
  const throughSlot = view.getFloat64(MAGIC.length + 4, true);
  const length = view.getUint32(MAGIC.length + 12, true);
  let stateAt = HEADER_BYTES;
  let meta: Uint8Array | undefined;
  if (version === VERSION_WITH_META) {
    if (bytes.length < HEADER_BYTES + 4) corrupt(HEADER_BYTES, 'the meta length is missing');
    const metaLength = view.getUint32(HEADER_BYTES, true);
    stateAt = HEADER_BYTES + 4 + metaLength;
    if (stateAt > bytes.length) corrupt(HEADER_BYTES, 'the meta is longer than the file');
    meta = new Uint8Array(bytes.subarray(HEADER_BYTES + 4, stateAt));
  }
  if (bytes.length !== stateAt + length)
    corrupt(
      stateAt,
      `the state should be ${length} bytes, the file holds ${bytes.length - stateAt}`,
    );
  const state = bytes.subarray(stateAt);
  let crc = crc32(bytes.subarray(MAGIC.length + 4, MAGIC.length + 16));
  if (version === VERSION_WITH_META) crc = crc32(bytes.subarray(HEADER_BYTES, stateAt), crc);
  if (crc32(state, crc) >>> 0 !== view.getUint32(MAGIC.length + 16, true))
    corrupt(MAGIC.length + 4, 'checksum mismatch');
  if (!Number.isSafeInteger(throughSlot) || throughSlot < 0)
    corrupt(MAGIC.length + 4, `bad slot number ${throughSlot}`);
  return { throughSlot, state: new Uint8Array(state), ...(meta === undefined ? {} : { meta }) };
}
