// Group commit (ARCHITECTURE.md: "Group-commit many records into one fsync; never reply early"):
// appends that arrive together or during an fsync share one write and one fsync.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileStore } from '../src/index.js';
import { acceptRecord, gate, nextMacrotask, useTempDir } from './helpers.js';

const tempDir = useTempDir();
const APPENDS = 200;

describe('group commit', () => {
  it('200 concurrent appends complete with far fewer fsyncs than appends, and all are recovered', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path);
    const records = Array.from({ length: APPENDS }, (_, i) => acceptRecord(i, i % 50));
    await Promise.all(records.map((record) => store.append([record])));
    const { fsyncs, appends } = store.stats;
    console.info(`group commit, one tick: ${appends} appends, ${fsyncs} fsyncs`);
    expect(appends).toBe(APPENDS);
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThan(APPENDS / 4);
    await store.close();
    const reopened = await openFileStore(path);
    expect(reopened.recovered).toEqual(records);
    await reopened.close();
  });

  it('200 appends arriving over many event-loop turns still share fsyncs, in order', async () => {
    const path = join(tempDir(), 'acceptor.log');
    const store = await openFileStore(path);
    const records = Array.from({ length: APPENDS }, (_, i) => acceptRecord(i, 24));
    const acknowledged: number[] = [];
    const pending: Promise<void>[] = [];
    for (const [i, record] of records.entries()) {
      pending.push(store.append([record]).then(() => void acknowledged.push(i)));
      if (i % 10 === 9) await nextMacrotask();
    }
    await Promise.all(pending);
    const { fsyncs } = store.stats;
    console.info(`group commit, spread over turns: ${APPENDS} appends, ${fsyncs} fsyncs`);
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThan(APPENDS / 4);
    expect(acknowledged).toEqual(records.map((_, i) => i));
    await store.close();
    const reopened = await openFileStore(path);
    expect(reopened.recovered).toEqual(records);
    await reopened.close();
  });

  it('appends made while an fsync runs share exactly one next write and fsync', async () => {
    const held = gate();
    let syncs = 0;
    const store = await openFileStore(join(tempDir(), 'acceptor.log'), {
      testHooks: {
        beforeSync: async () => {
          syncs += 1;
          if (syncs === 1) await held.promise;
        },
      },
    });
    const first = store.append([acceptRecord(0)]);
    while (syncs === 0) await nextMacrotask();
    const during = Array.from({ length: 50 }, (_, i) => store.append([acceptRecord(i + 1)]));
    for (let i = 0; i < 5; i++) await nextMacrotask();
    expect(syncs).toBe(1);
    held.open();
    await Promise.all([first, ...during]);
    expect(store.stats).toEqual({ appends: 51, records: 51, fsyncs: 2 });
    await store.close();
  });
});
