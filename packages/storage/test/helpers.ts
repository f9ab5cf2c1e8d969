import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoreRecord } from '@synod/protocol';
import { afterEach, beforeEach } from 'vitest';

/** A fresh directory under the OS temp dir for each test, removed after it. */
export function useTempDir(): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'synod-storage-'));
  });
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error('no temp dir outside a test');
    return dir;
  };
}

export function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 17) & 0xff;
  return out;
}

/** Every record kind, with slot and key instances, the zero ballot and extreme numbers. */
export const EVERY_KIND: readonly StoreRecord[] = [
  { kind: 'promise', instance: 0, ballot: { round: 1, nodeId: 'n1' } },
  { kind: 'promise', instance: 'user:42', ballot: { round: 2, nodeId: 'node-2' } },
  { kind: 'promiseFrom', fromSlot: 7, ballot: { round: 3, nodeId: 'leader_a' } },
  { kind: 'accept', instance: 7, ballot: { round: 3, nodeId: 'leader_a' }, value: bytes(40) },
  { kind: 'accept', instance: 'ключ', ballot: { round: 0, nodeId: '' }, value: new Uint8Array() },
  { kind: 'chosen', instance: 7, value: bytes(40) },
  { kind: 'chosen', instance: 'user:42', value: bytes(3, 9) },
  { kind: 'round', round: 9 },
  { kind: 'compact', throughSlot: 5 },
  {
    kind: 'accept',
    instance: Number.MAX_SAFE_INTEGER,
    ballot: { round: Number.MAX_SAFE_INTEGER, nodeId: 'z' },
    value: bytes(1000, 3),
  },
];

/** A record of about `valueBytes` bytes, distinct per `i`. */
export function acceptRecord(i: number, valueBytes = 16): StoreRecord {
  return {
    kind: 'accept',
    instance: i,
    ballot: { round: 1, nodeId: 'n1' },
    value: bytes(valueBytes, i),
  };
}

/** A promise that a test settles by hand, to hold an fsync open. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Whether the promise has settled, without waiting for it. */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await nextMacrotask();
  return settled;
}
