import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { StoreRecord } from '@synod/protocol';
import { ByteSource } from './byte-source.js';
import { CorruptStoreError, StoreClosedError, StoreInUseError } from './errors.js';
import { checkFileHeader, encodeFrame, FILE_HEADER_BYTES, fileHeader } from './frame.js';
import { GroupCommitter } from './group-commit.js';
import { packRecord } from './record-codec.js';
import { recoverLog } from './recovery.js';
import type { FileStore, FileStoreOptions, FileStoreTestHooks, StoreStats } from './types.js';

export const DEFAULT_MAX_RECORD_BYTES = 2 * 1024 * 1024;

/** Files open as stores in this process: two stores appending to one file would interleave. */
const openPaths = new Set<string>();

/**
 * Opens (creating if absent) the append-only log at `path` and recovers it: a torn final
 * write is cut off, damage anywhere else throws CorruptStoreError and leaves the file as it
 * was. Only one store per file: nothing stops two processes from opening one file.
 */
export async function openFileStore(
  path: string,
  options: FileStoreOptions = {},
): Promise<FileStore> {
  const fsync = options.fsync ?? true;
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!Number.isSafeInteger(maxRecordBytes) || maxRecordBytes < 1 || maxRecordBytes > 0xffffffff) {
    throw new RangeError(
      `maxRecordBytes must be an integer from 1 to 2^32-1, got ${maxRecordBytes}`,
    );
  }
  const fullPath = resolve(path);
  if (openPaths.has(fullPath)) throw new StoreInUseError(fullPath);
  openPaths.add(fullPath);
  let handle: FileHandle | undefined;
  try {
    const opened = await openOrCreate(fullPath);
    handle = opened.handle;
    const size = (await handle.stat()).size;
    const source = new ByteSource(handle, size);
    const header = await source.read(0, Math.min(size, FILE_HEADER_BYTES));
    const check = checkFileHeader(header);
    if (check.kind === 'foreign') {
      throw new CorruptStoreError(
        fullPath,
        0,
        'not a synod acceptor log (its first bytes are not SYNODACC)',
      );
    }
    if (check.kind === 'version') {
      throw new CorruptStoreError(fullPath, 0, `unsupported log format version ${check.version}`);
    }
    let recovered: StoreRecord[] = [];
    let goodEnd = size;
    let droppedTailBytes = 0;
    if (check.kind === 'unfinished') {
      // Created but not finished (a crash before the header was durable): start it over.
      await handle.truncate(0);
      await writeFully(handle, fileHeader(), 0);
      if (fsync) await handle.sync();
      goodEnd = FILE_HEADER_BYTES;
    } else {
      const log = await recoverLog(source, fullPath, FILE_HEADER_BYTES, maxRecordBytes);
      recovered = log.records;
      goodEnd = log.goodEnd;
      if (goodEnd < size) {
        droppedTailBytes = size - goodEnd;
        await handle.truncate(goodEnd);
        if (fsync) await handle.sync();
      }
    }
    // A new file's directory entry is durable only once the directory is synced.
    if (opened.created && fsync) await syncDirectory(dirname(fullPath));
    const store = new FileLog(fullPath, handle, goodEnd, {
      fsync,
      maxRecordBytes,
      hooks: options.testHooks ?? {},
      recovered,
      droppedTailBytes,
    });
    return store;
  } catch (error) {
    await handle?.close().catch(() => undefined);
    openPaths.delete(fullPath);
    throw error;
  }
}

async function openOrCreate(path: string): Promise<{ handle: FileHandle; created: boolean }> {
  try {
    return { handle: await open(path, 'r+'), created: false };
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  // 'wx+' fails if the file appeared meanwhile, rather than opening someone else's file blind.
  return { handle: await open(path, 'wx+'), created: true };
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const result = await handle.write(bytes, written, bytes.length - written, position + written);
    if (result.bytesWritten === 0) throw new Error('write made no progress');
    written += result.bytesWritten;
  }
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

interface FileLogSettings {
  readonly fsync: boolean;
  readonly maxRecordBytes: number;
  readonly hooks: FileStoreTestHooks;
  readonly recovered: readonly StoreRecord[];
  readonly droppedTailBytes: number;
}

class FileLog implements FileStore {
  readonly path: string;
  readonly recovered: readonly StoreRecord[];
  readonly droppedTailBytes: number;
  #handle: FileHandle;
  readonly #settings: FileLogSettings;
  readonly #committer: GroupCommitter;
  /** Where the next batch goes: the end of the last good record, then of each batch. */
  #end: number;
  #fsyncs = 0;
  #closing: Promise<void> | undefined;

  constructor(path: string, handle: FileHandle, end: number, settings: FileLogSettings) {
    this.path = path;
    this.#handle = handle;
    this.#end = end;
    this.#settings = settings;
    this.recovered = Object.freeze([...settings.recovered]);
    this.droppedTailBytes = settings.droppedTailBytes;
    this.#committer = new GroupCommitter((bytes) => this.#persist(bytes));
  }

  get stats(): StoreStats {
    return {
      appends: this.#committer.appends,
      records: this.#committer.records,
      fsyncs: this.#fsyncs,
    };
  }

  append(records: readonly StoreRecord[]): Promise<void> {
    return this.#framed(records, (frames) => this.#committer.submit(frames, records.length));
  }

  rewrite(records: readonly StoreRecord[]): Promise<void> {
    // Enqueued now, synchronously: appends made after this call go to the new file.
    return this.#framed(records, (frames) =>
      this.#committer.exclusive(() => this.#replaceFile(frames)),
    );
  }

  /**
   * Frames the records now, so later changes to the caller's buffers cannot reach the disk;
   * a closed store or a malformed record rejects without queueing anything.
   */
  #framed(
    records: readonly StoreRecord[],
    queue: (frames: Uint8Array[]) => Promise<void>,
  ): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new StoreClosedError());
    let frames: Uint8Array[];
    try {
      frames = records.map((record) => this.#frame(record));
    } catch (error) {
      return Promise.reject(error);
    }
    return queue(frames);
  }

  /** Writes a fresh file beside the log, makes it durable, and renames it over the log. */
  async #replaceFile(frames: readonly Uint8Array[]): Promise<void> {
    const temporary = `${this.path}.rewrite`;
    await rm(temporary, { force: true });
    const handle = await open(temporary, 'wx+');
    const content = Buffer.concat([fileHeader(), ...frames]);
    try {
      await writeFully(handle, content, 0);
      if (this.#settings.fsync) await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(temporary, { force: true });
      throw error;
    }
    await rename(temporary, this.path);
    if (this.#settings.fsync) await syncDirectory(dirname(this.path));
    const old = this.#handle;
    this.#handle = handle;
    this.#end = content.length;
    await old.close();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      await this.#committer.idle();
      await this.#handle.close();
    } finally {
      openPaths.delete(this.path);
    }
  }

  #frame(record: StoreRecord): Uint8Array {
    const payload = packRecord(record);
    if (payload.length > this.#settings.maxRecordBytes) {
      throw new RangeError(
        `a record of kind ${record.kind} encodes to ${payload.length} bytes, over maxRecordBytes (${this.#settings.maxRecordBytes})`,
      );
    }
    return encodeFrame(payload);
  }

  async #persist(bytes: Uint8Array): Promise<void> {
    // One write for the whole batch, at the end of the log (never O_APPEND: a recovered file
    // was cut to its good length, and positions keep that explicit).
    await writeFully(this.#handle, bytes, this.#end);
    this.#end += bytes.length;
    if (!this.#settings.fsync) return;
    await this.#settings.hooks.beforeSync?.();
    await this.#handle.datasync();
    this.#fsyncs += 1;
  }
}
