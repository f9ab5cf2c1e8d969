// "Persistence comes before the reply" (ARCHITECTURE.md): an append is acknowledged only after its
// fsync returned, and a store that could not persist stops acknowledging.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileStore, StoreClosedError, StoreFailedError } from '../src/index.js';
import { acceptRecord, gate, isSettled, nextMacrotask, useTempDir } from './helpers.js';

const tempDir = useTempDir();

describe('durability ordering', () => {
  it('an append does not resolve while its bytes are written but not yet fsynced', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const held = gate();
    let entered = false;
    const store = await openFileStore(path, {
      testHooks: {
        beforeSync: async () => {
          entered = true;
          await held.promise;
        },
      },
    });
    const sizeBefore = (await stat(path)).size;
    const append = store.append([acceptRecord(1, 500)]);
    while (!entered) await nextMacrotask();
    // The batch is in the file (written), yet the append waits for the fsync.
    expect((await stat(path)).size).toBeGreaterThan(sizeBefore + 500);
    for (let i = 0; i < 10; i++) expect(await isSettled(append)).toBe(false);
    expect(store.stats).toEqual({ appends: 0, records: 0, fsyncs: 0 });
    held.open();
    await append;
    expect(store.stats).toEqual({ appends: 1, records: 1, fsyncs: 1 });
    await store.close();
  });

  it('a failed fsync rejects its appends and those queued behind it, and every later append', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const held = gate();
    let calls = 0;
    const store = await openFileStore(path, {
      testHooks: {
        beforeSync: async () => {
          calls += 1;
          await held.promise;
          throw new Error('EIO: simulated fsync failure');
        },
      },
    });
    const failing = store.append([acceptRecord(1)]);
    while (calls === 0) await nextMacrotask();
    const queued = store.append([acceptRecord(2)]);
    held.open();
    await expect(failing).rejects.toBeInstanceOf(StoreFailedError);
    await expect(failing).rejects.toMatchObject({
      cause: { message: 'EIO: simulated fsync failure' },
    });
    await expect(queued).rejects.toBeInstanceOf(StoreFailedError);
    await expect(store.append([acceptRecord(3)])).rejects.toBeInstanceOf(StoreFailedError);
    expect(calls).toBe(1);
    expect(store.stats.appends).toBe(0);
    await store.close();
    await expect(store.append([acceptRecord(4)])).rejects.toBeInstanceOf(StoreClosedError);
    // Never acknowledged, so either outcome is allowed; what recovery finds is a prefix.
    const reopened = await openFileStore(path);
    expect([[], [acceptRecord(1)]]).toContainEqual(reopened.recovered);
    await reopened.close();
  });

  it('close lets appends already made become durable before it releases the file', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path);
    const appends = [store.append([acceptRecord(1)]), store.append([acceptRecord(2)])];
    await store.close();
    await Promise.all(appends);
    const reopened = await openFileStore(path);
    expect(reopened.recovered).toEqual([acceptRecord(1), acceptRecord(2)]);
    await reopened.close();
  });
});
