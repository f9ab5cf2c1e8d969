// Damage is not a crash. A damaged final record is indistinguishable from a torn write and is
// dropped; a damaged record with a valid one after it may have held an acknowledged promise,
// so recovery refuses to start and leaves the file untouched for an operator.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/frame.js';
import { CorruptStoreError, openFileStore } from '../src/index.js';
import { useTempDir } from './helpers.js';
import { type LogFixture, SIX_RECORDS, writeLog } from './log-fixture.js';

const tempDir = useTempDir();
const LAST = SIX_RECORDS.length - 1;

function flipped(log: LogFixture, at: number): Uint8Array {
  const copy = new Uint8Array(log.bytes);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

async function expectRefusal(path: string, content: Uint8Array): Promise<CorruptStoreError> {
  const error: unknown = await openFileStore(path, { fsync: false }).then(
    () => new Error('opened a corrupt log'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CorruptStoreError);
  expect(new Uint8Array(await readFile(path))).toEqual(content);
  return error as CorruptStoreError;
}

describe('corruption', () => {
  it('a flipped byte anywhere in the last record drops only that record', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'flip.log');
    for (let at = log.starts[LAST] ?? 0; at < (log.ends[LAST] ?? 0); at++) {
      await writeFile(scratch, flipped(log, at));
      const store = await openFileStore(scratch, { fsync: false });
      expect(store.recovered, `flip at byte ${at}`).toEqual(SIX_RECORDS.slice(0, LAST));
      await store.close();
      expect((await readFile(scratch)).length).toBe(log.starts[LAST]);
    }
  });

  it.each([
    ['the second-to-last record', LAST - 1],
    ['a middle record', 2],
    ['the first record', 0],
  ])(
    'a flipped byte anywhere in %s refuses to start, names the record and changes nothing',
    async (_, index) => {
      const log = await writeLog(tempDir(), SIX_RECORDS);
      const scratch = join(tempDir(), 'flip.log');
      const start = log.starts[index] ?? 0;
      for (let at = start; at < (log.ends[index] ?? 0); at++) {
        const content = flipped(log, at);
        await writeFile(scratch, content);
        const error = await expectRefusal(scratch, content);
        expect(error.offset, `flip at byte ${at}`).toBe(start);
        expect(error.offset).toBeLessThanOrEqual(at);
        expect(error.path).toBe(scratch);
        expect(error.message).toContain('refusing to start');
        expect(error.message).toContain(
          `followed by a valid record at byte ${log.starts[index + 1]}`,
        );
      }
    },
  );

  it('a final record with intact checksums that does not decode is corruption, not a torn write', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'foreign-record.log');
    const packr = new Packr({ useRecords: false });
    const frame = encodeFrame(
      packr.pack({ kind: 'promise', instance: -5, ballot: { round: 1, nodeId: 'n' } }),
    );
    const content = new Uint8Array([...log.bytes, ...frame]);
    await writeFile(scratch, content);
    const error = await expectRefusal(scratch, content);
    expect(error.offset).toBe(log.bytes.length);
    expect(error.reason).toMatch(/intact checksums but does not decode/);
  });

  it('a record over maxRecordBytes with an intact header is refused, not cut off', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'big.log');
    await writeFile(scratch, log.bytes);
    const error: unknown = await openFileStore(scratch, { maxRecordBytes: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CorruptStoreError);
    expect((error as CorruptStoreError).offset).toBe(log.starts[1]);
    expect(new Uint8Array(await readFile(scratch))).toEqual(log.bytes);
  });

  it('a file that is not an acceptor log is refused and left as it was', async () => {
    const scratch = join(tempDir(), 'foreign.txt');
    const content = new TextEncoder().encode('hello, this is somebody else’s file\n'.repeat(20));
    await writeFile(scratch, content);
    const error = await expectRefusal(scratch, content);
    expect(error.offset).toBe(0);
    expect(error.reason).toMatch(/not a synod acceptor log/);
  });

  it('a log of another format version is refused and left as it was', async () => {
    const log = await writeLog(tempDir(), SIX_RECORDS);
    const scratch = join(tempDir(), 'v2.log');
    const content = new Uint8Array(log.bytes);
    content[8] = 2;
    await writeFile(scratch, content);
    const error = await expectRefusal(scratch, content);
    expect(error.reason).toMatch(/unsupported log format version 2/);
  });
});
