import { DecodeError, type MembershipRecord } from '@synod/protocol';
import type { Snapshot } from './types.js';

/**
 * A snapshot as it travels between peers: a 4-byte length, the membership through the
 * snapshot's slot as JSON, then the owner's bytes. The host adds and removes the envelope;
 * owners only ever see their own bytes and the `membership` field.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function wrapSnapshot(snapshot: Snapshot): Snapshot {
  const head = encoder.encode(JSON.stringify(snapshot.membership ?? null));
  const bytes = new Uint8Array(4 + head.length + snapshot.bytes.length);
  new DataView(bytes.buffer).setUint32(0, head.length);
  bytes.set(head, 4);
  bytes.set(snapshot.bytes, 4 + head.length);
  return { throughSlot: snapshot.throughSlot, bytes };
}

export function unwrapSnapshot(wrapped: Snapshot): Snapshot {
  const view = new DataView(wrapped.bytes.buffer, wrapped.bytes.byteOffset, wrapped.bytes.length);
  if (wrapped.bytes.length < 4) throw new DecodeError('MALFORMED', 'a snapshot has no envelope');
  const length = view.getUint32(0);
  if (4 + length > wrapped.bytes.length)
    throw new DecodeError('MALFORMED', 'a snapshot envelope is longer than the snapshot');
  const membership = JSON.parse(
    decoder.decode(wrapped.bytes.subarray(4, 4 + length)),
  ) as MembershipRecord | null;
  return {
    throughSlot: wrapped.throughSlot,
    bytes: wrapped.bytes.subarray(4 + length),
    ...(membership === null ? {} : { membership }),
  };
}
