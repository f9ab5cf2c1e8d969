import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreRecord } from '@synod/protocol';
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../src/frame.js';
import { encodeRecord, openFileStore } from '../src/index.js';
import { bytes } from './helpers.js';

/** Six records of varied sizes and kinds; the last two are small so every byte can be cut. */
export const SIX_RECORDS: readonly StoreRecord[] = [
  { kind: 'promise', instance: 'reg', ballot: { round: 1, nodeId: 'n1' } },
  { kind: 'accept', instance: 0, ballot: { round: 1, nodeId: 'n1' }, value: bytes(5000) },
  { kind: 'promiseFrom', fromSlot: 1, ballot: { round: 2, nodeId: 'n2' } },
  { kind: 'accept', instance: 1, ballot: { round: 2, nodeId: 'n2' }, value: bytes(1) },
  { kind: 'accept', instance: 2, ballot: { round: 2, nodeId: 'n2' }, value: bytes(300, 2) },
  { kind: 'chosen', instance: 'reg', value: bytes(120, 3) },
];

export interface LogFixture {
  readonly bytes: Uint8Array;
  /** starts[i] and ends[i]: where record i's frame begins and ends in the file. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
}

/** Writes the records through a real file store (one append each) and reads the file back. */
export async function writeLog(dir: string, records: readonly StoreRecord[]): Promise<LogFixture> {
  const path = join(dir, 'original.log');
  const store = await openFileStore(path);
  for (const record of records) await store.append([record]);
  await store.close();
  const starts: number[] = [];
  const ends: number[] = [];
  let at = FILE_HEADER_BYTES;
  for (const record of records) {
    starts.push(at);
    at += FRAME_HEADER_BYTES + encodeRecord(record).length;
    ends.push(at);
  }
  const file = new Uint8Array(await readFile(path));
  if (file.length !== at) throw new Error(`expected a log of ${at} bytes, found ${file.length}`);
  return { bytes: file, starts, ends };
}
