// File store behaviour beyond the shared contract: one owner per file, bounded records.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileStore, StoreInUseError } from '../src/index.js';
import { acceptRecord, useTempDir } from './helpers.js';

const tempDir = useTempDir();

describe('file store', () => {
  it('a file already open as a store in this process cannot be opened again until closed', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path);
    await expect(openFileStore(path)).rejects.toBeInstanceOf(StoreInUseError);
    await expect(openFileStore(join(tempDir(), '.', 'acceptor.log'))).rejects.toBeInstanceOf(
      StoreInUseError,
    );
    await store.close();
    const again = await openFileStore(path);
    await again.close();
  });

  it('a record over maxRecordBytes is refused with RangeError and nothing of its batch is stored', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path, { maxRecordBytes: 256 });
    await expect(store.append([acceptRecord(1), acceptRecord(2, 300)])).rejects.toBeInstanceOf(
      RangeError,
    );
    await store.append([acceptRecord(3, 150)]);
    await store.close();
    const reopened = await openFileStore(path, { maxRecordBytes: 256 });
    expect(reopened.recovered).toEqual([acceptRecord(3, 150)]);
    await reopened.close();
  });

  it('an invalid maxRecordBytes is refused before the file is touched', async () => {
    const path = join(tempDir(), 'acceptor.log');
    await expect(openFileStore(path, { maxRecordBytes: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(openFileStore(path, { maxRecordBytes: Number.NaN })).rejects.toBeInstanceOf(
      RangeError,
    );
  });

  it('with fsync off (tests only) appends are written but no fsync is counted', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path, { fsync: false });
    await store.append([acceptRecord(1)]);
    expect(store.stats).toEqual({ appends: 1, records: 1, fsyncs: 0 });
    await store.close();
    const reopened = await openFileStore(path, { fsync: false });
    expect(reopened.recovered).toEqual([acceptRecord(1)]);
    await reopened.close();
  });
});
