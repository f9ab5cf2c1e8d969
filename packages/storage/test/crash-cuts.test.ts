// A crash can cut the file anywhere in the final write. Recovery must then start, keep every
// complete record (an acknowledged record is never lost) and drop the torn one (never
// acknowledged), leaving the file at the end of the last good record.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILE_HEADER_BYTES, fileHeader } from '../src/frame.js';
import { openFileStore } from '../src/index.js';
import { useTempDir } from './helpers.js';
import { SIX_RECORDS, writeLog } from './log-fixture.js';

const tempDir = useTempDir();

describe('crash cuts', () => {
  it('a cut at any byte from the second-to-last record to the end recovers the complete prefix', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'cut.log');
    const from = log.starts[SIX_RECORDS.length - 2] ?? 0;
    for (let cut = from; cut <= log.bytes.length; cut++) {
      await writeFile(scratch, log.bytes.subarray(0, cut));
      const complete = log.ends.filter((end) => end <= cut).length;
      const goodEnd = complete === 0 ? FILE_HEADER_BYTES : (log.ends[complete - 1] ?? 0);
      // fsync off: this test reopens over a thousand copies and asserts nothing about the disk.
      const store = await openFileStore(scratch, { fsync: false });
      expect(store.recovered, `cut at byte ${cut}`).toEqual(SIX_RECORDS.slice(0, complete));
      expect(store.droppedTailBytes).toBe(cut - goodEnd);
      await store.close();
      expect((await stat(scratch)).size, `file size after a cut at ${cut}`).toBe(goodEnd);
      const again = await openFileStore(scratch, { fsync: false });
      expect(again.droppedTailBytes).toBe(0);
      expect(again.recovered.length).toBe(complete);
      await again.close();
    }
  });

  it('a store reopened after a cut appends after the last good record', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'cut.log');
    await writeFile(scratch, log.bytes.subarray(0, (log.ends[4] ?? 0) + 20));
    const store = await openFileStore(scratch);
    const extra = SIX_RECORDS[0];
    if (extra === undefined) throw new Error('no records');
    await store.append([extra]);
    await store.close();
    const reopened = await openFileStore(scratch);
    expect(reopened.recovered).toEqual([...SIX_RECORDS.slice(0, 5), extra]);
    await reopened.close();
  });

  it('a file cut inside its header (a crash while it was created) opens empty and usable', async () => {
    const scratch = join(tempDir(), 'new.log');
    const header = fileHeader();
    for (let cut = 0; cut < FILE_HEADER_BYTES; cut++) {
      await writeFile(scratch, header.subarray(0, cut));
      const store = await openFileStore(scratch, { fsync: false });
      expect(store.recovered).toEqual([]);
      await store.close();
      expect(new Uint8Array(await readFile(scratch))).toEqual(header);
    }
  });

  it('a zero-filled tail (size grew, data never landed) is dropped as a torn write', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'zeros.log');
    const withZeros = new Uint8Array(log.bytes.length + 4096);
    withZeros.set(log.bytes);
    await writeFile(scratch, withZeros);
    const store = await openFileStore(scratch);
    expect(store.recovered).toEqual(SIX_RECORDS);
    expect(store.droppedTailBytes).toBe(4096);
    await store.close();
  });
});
