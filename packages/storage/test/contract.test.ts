// The contract every AcceptorStore keeps (ARCHITECTURE.md: "persistence comes before the reply"):
// what was appended is what a reopened store recovers, in order, and a closed store takes
// nothing more. The memory store and the file store run the same tests.
import { join } from 'node:path';
import type { StoreRecord } from '@synod/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AcceptorStore,
  type MemoryStore,
  openFileStore,
  openMemoryStore,
  StoreClosedError,
} from '../src/index.js';
import { recordArb } from './arbitraries.js';
import { acceptRecord, bytes, EVERY_KIND, useTempDir } from './helpers.js';

interface Harness {
  readonly name: string;
  open(): Promise<AcceptorStore>;
  /** Closes the store and opens a new one over the same durable state. */
  reopen(store: AcceptorStore): Promise<AcceptorStore>;
}

const tempDir = useTempDir();
let fileCount = 0;

const harnesses: readonly Harness[] = [
  {
    name: 'memory store',
    open: async () => openMemoryStore(),
    reopen: async (store) => {
      await store.close();
      return openMemoryStore((store as MemoryStore).durableRecords());
    },
  },
  {
    name: 'file store',
    open: () => openFileStore(join(tempDir(), `acceptor-${fileCount++}.log`)),
    reopen: async (store) => {
      await store.close();
      if (!('path' in store) || typeof store.path !== 'string') throw new Error('not a file store');
      return openFileStore(store.path);
    },
  },
];

describe.each(harnesses)('$name', (harness) => {
  it('a new store recovers nothing and has counted nothing', async () => {
    const store = await harness.open();
    expect(store.recovered).toEqual([]);
    expect(store.stats).toEqual({ appends: 0, records: 0, fsyncs: 0 });
    await store.close();
  });

  it('reopening recovers every record kind, with slot and key instances, in append order', async () => {
    let store = await harness.open();
    await store.append(EVERY_KIND.slice(0, 3));
    await store.append([]);
    await store.append(EVERY_KIND.slice(3));
    expect(store.stats.appends).toBe(3);
    expect(store.stats.records).toBe(EVERY_KIND.length);
    store = await harness.reopen(store);
    expect(store.recovered).toEqual(EVERY_KIND);
    await store.close();
  });

  it('appends after a reopen follow the recovered records, across several reopens', async () => {
    let store = await harness.open();
    const all: StoreRecord[] = [];
    for (let round = 0; round < 3; round++) {
      const batch = [acceptRecord(round * 2), acceptRecord(round * 2 + 1, 100)];
      await store.append(batch);
      all.push(...batch);
      store = await harness.reopen(store);
      expect(store.recovered).toEqual(all);
    }
    await store.close();
  });

  it('after close, append rejects with StoreClosedError and close can be called again', async () => {
    const store = await harness.open();
    await store.append([acceptRecord(1)]);
    await store.close();
    await expect(store.append([acceptRecord(2)])).rejects.toBeInstanceOf(StoreClosedError);
    await expect(store.append([])).rejects.toBeInstanceOf(StoreClosedError);
    await store.close();
    const reopened = await harness.reopen(store);
    expect(reopened.recovered).toEqual([acceptRecord(1)]);
    await reopened.close();
  });

  it('a malformed record is refused with its whole batch, and the store keeps working', async () => {
    let store = await harness.open();
    const bad = { kind: 'promise', instance: -1, ballot: { round: 1, nodeId: 'n1' } } as const;
    await expect(store.append([acceptRecord(1), bad])).rejects.toBeInstanceOf(TypeError);
    const unknownKind = { kind: 'forget', instance: 1 } as unknown as StoreRecord;
    await expect(store.append([unknownKind])).rejects.toBeInstanceOf(TypeError);
    await store.append([acceptRecord(2)]);
    store = await harness.reopen(store);
    expect(store.recovered).toEqual([acceptRecord(2)]);
    await store.close();
  });

  it('a value changed by its owner after append is recovered as it was appended', async () => {
    let store = await harness.open();
    const value = bytes(64);
    const pending = store.append([{ kind: 'chosen', instance: 3, value }]);
    value.fill(0);
    await pending;
    store = await harness.reopen(store);
    expect(store.recovered).toEqual([{ kind: 'chosen', instance: 3, value: bytes(64) }]);
    await store.close();
  });

  it('random batches of random records are recovered exactly, in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArb, { maxLength: 6 }), { maxLength: 6 }),
        async (batches) => {
          let store = await harness.open();
          await Promise.all(batches.map((batch) => store.append(batch)));
          store = await harness.reopen(store);
          expect(store.recovered).toEqual(batches.flat());
          await store.close();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('rewrite replaces the content atomically, in order with the appends around it', async () => {
    let store = await harness.open();
    const before = [acceptRecord(1), acceptRecord(2), acceptRecord(3)];
    const compacted: StoreRecord[] = [{ kind: 'compact', throughSlot: 2 }, acceptRecord(3)];
    // No await between the calls: the rewrite must land after `before`, and `after` after it.
    const appended = store.append(before);
    const rewritten = store.rewrite(compacted);
    const after = store.append([acceptRecord(4)]);
    await Promise.all([appended, rewritten, after]);
    await store.append([acceptRecord(5)]);
    store = await harness.reopen(store);
    expect(store.recovered).toEqual([...compacted, acceptRecord(4), acceptRecord(5)]);
    await store.close();
  });

  it('a rewrite to nothing leaves an empty store that takes appends', async () => {
    let store = await harness.open();
    await store.append([acceptRecord(1)]);
    await store.rewrite([]);
    store = await harness.reopen(store);
    expect(store.recovered).toEqual([]);
    await store.append([acceptRecord(2)]);
    store = await harness.reopen(store);
    expect(store.recovered).toEqual([acceptRecord(2)]);
    await store.close();
  });

  it('a closed store refuses a rewrite', async () => {
    const store = await harness.open();
    await store.close();
    await expect(store.rewrite([])).rejects.toBeInstanceOf(StoreClosedError);
  });
});
