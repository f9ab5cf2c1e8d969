import type { Snapshot } from '@synod/host';
import type { MembershipRecord } from '@synod/protocol';
import { readSnapshotFile, writeSnapshotFile } from '@synod/storage';

/**
 * A node's snapshot file: the state machine's bytes (none for a machine whose state is a
 * database: then the file only says where the log starts again) and the group's membership
 * through the same slot, kept as the file's meta.
 */
export async function readSnapshot(path: string): Promise<Snapshot | undefined> {
  const saved = await readSnapshotFile(path);
  if (saved === undefined) return undefined;
  return {
    throughSlot: saved.throughSlot,
    bytes: saved.state,
    ...(saved.meta === undefined
      ? {}
      : { membership: JSON.parse(new TextDecoder().decode(saved.meta)) as MembershipRecord }),
  };
}

/** Writes it durably and atomically (see writeSnapshotFile). */
export function writeSnapshot(path: string, snapshot: Snapshot): Promise<void> {
  return writeSnapshotFile(path, {
    throughSlot: snapshot.throughSlot,
    state: snapshot.bytes,
    ...(snapshot.membership === undefined
      ? {}
      : { meta: new TextEncoder().encode(JSON.stringify(snapshot.membership)) }),
  });
}
