// Snapshots of the state machine: compaction forgets log slots only once one is durable, so
// a snapshot must come back whole and exact, or refuse loudly.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptStoreError, readSnapshotFile, writeSnapshotFile } from '../src/index.js';
import { bytes, useTempDir } from './helpers.js';

const tempDir = useTempDir();

describe('snapshot file', () => {
  it('reads back what was written; the last write wins', async () => {
    const path = join(tempDir(), 'g.snapshot');
    expect(await readSnapshotFile(path)).toBeUndefined();
    await writeSnapshotFile(path, { throughSlot: 41, state: bytes(1000) });
    await writeSnapshotFile(path, { throughSlot: 9_000_000_000, state: bytes(300, 7) });
    expect(await readSnapshotFile(path)).toEqual({
      throughSlot: 9_000_000_000,
      state: bytes(300, 7),
    });
  });

  it('an empty state is a valid snapshot', async () => {
    const path = join(tempDir(), 'g.snapshot');
    await writeSnapshotFile(path, { throughSlot: 0, state: new Uint8Array() });
    expect(await readSnapshotFile(path)).toEqual({ throughSlot: 0, state: new Uint8Array() });
  });

  it('keeps meta (the membership) with the state', async () => {
    const path = join(tempDir(), 'g.snapshot');
    await writeSnapshotFile(path, { throughSlot: 5, state: bytes(10), meta: bytes(20, 3) });
    expect(await readSnapshotFile(path)).toEqual({
      throughSlot: 5,
      state: bytes(10),
      meta: bytes(20, 3),
    });
  });

  it.each([
    ['without meta', undefined],
    ['with meta', bytes(9, 5)],
  ])(
    'a flipped byte anywhere, or a cut anywhere, is refused with CorruptStoreError (%s)',
    async (_, meta) => {
      const path = join(tempDir(), 'g.snapshot');
      await writeSnapshotFile(path, { throughSlot: 12, state: bytes(64), ...(meta && { meta }) });
      const good = await readFile(path);
      for (let i = 0; i < good.length; i++) {
        const flipped = Buffer.from(good);
        flipped[i] = flipped[i]! ^ 0x10;
        await writeFile(path, flipped);
        await expect(readSnapshotFile(path), `byte ${i}`).rejects.toBeInstanceOf(CorruptStoreError);
      }
      for (const cut of [0, 5, 24, good.length - 1]) {
        await writeFile(path, good.subarray(0, cut));
        await expect(readSnapshotFile(path), `cut at ${cut}`).rejects.toBeInstanceOf(
          CorruptStoreError,
        );
      }
    },
  );

  it('refuses a slot that is not a slot number before touching the disk', async () => {
    const path = join(tempDir(), 'g.snapshot');
    await expect(writeSnapshotFile(path, { throughSlot: -1, state: bytes(1) })).rejects.toThrow(
      RangeError,
    );
    expect(await readSnapshotFile(path)).toBeUndefined();
  });
});
