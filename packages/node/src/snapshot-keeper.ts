import type { Snapshot } from '@synod/host';
import type { Logger } from '@synod/log';
import type { MembershipRecord } from '@synod/protocol';
import { writeSnapshot } from './snapshot-io.js';

export interface SnapshotPolicy {
  /** Snapshot every this many applied slots. Default 10,000. */
  readonly snapshotEvery?: number;
  /**
   * Also snapshot once this many bytes of log values were applied since the last snapshot,
   * or as many as the last snapshot's size if that is larger (default 4 MiB): with batching,
   * 10,000 slots can hold hundreds of megabytes, and a snapshot should cost less than the
   * log it replaces.
   */
  readonly snapshotEveryBytes?: number;
  /**
   * Slots kept below a snapshot for peers a little behind to catch up from: at most this many
   * (default 256), and no more than retainBytes of values (default 2 MiB). Peers further
   * behind install a snapshot.
   */
  readonly retainSlots?: number;
  readonly retainBytes?: number;
}

/** The keeper takes the policy resolved (resolveRuntimeOptions): every number in force. */
export interface SnapshotKeeperOptions extends Required<SnapshotPolicy> {
  readonly path: string;
  readonly initial: Snapshot | undefined;
  readonly logger?: Logger | undefined;
  /** The state machine's state through the slot just applied. */
  capture(): Uint8Array;
  /** The group's membership through `slot`, kept with the snapshot (GroupHost.membershipThrough). */
  membership(slot: number): MembershipRecord;
  /** Forget the log through this slot (GroupHost.compact): a snapshot covering it is durable. */
  compact(throughSlot: number): void;
  /** Writing a snapshot failed: the node must stop. */
  failed(error: unknown): void;
}

/**
 * When to snapshot the state machine and how much log to keep: a snapshot is taken after
 * a slot is applied, written durably, and only then is the log compacted below it. Peer
 * snapshots that the node installs are kept the same way (without compacting).
 */
export class SnapshotKeeper {
  readonly #o: SnapshotKeeperOptions;
  /** The latest durable snapshot: served to peers behind the compaction point. */
  #latest: Snapshot | undefined;
  /** The slot the last snapshot was taken at (durable or not yet). */
  #takenAt: number;
  #writes: Promise<void> = Promise.resolve();
  #writing = false;
  #bytesSince = 0;
  /** Sizes of the last retainSlots applied slots, newest last: how much compaction keeps. */
  readonly #recentSlotBytes: number[] = [];
  #stopped = false;
  installed = 0;

  constructor(options: SnapshotKeeperOptions) {
    this.#o = options;
    this.#latest = options.initial;
    this.#takenAt = options.initial?.throughSlot ?? -1;
  }

  get latest(): Snapshot | undefined {
    return this.#latest;
  }

  /** `slot`, of `bytes` bytes, is applied: snapshot now if the policy says so. */
  applied(slot: number, bytes: number): void {
    this.#bytesSince += bytes;
    this.#recentSlotBytes.push(bytes);
    if (this.#recentSlotBytes.length > this.#o.retainSlots) this.#recentSlotBytes.shift();
    const everyBytes = Math.max(this.#o.snapshotEveryBytes, this.#latest?.bytes.length ?? 0);
    const due = slot - this.#takenAt >= this.#o.snapshotEvery || this.#bytesSince >= everyBytes;
    if (this.#writing || !due) return;
    this.#takenAt = slot;
    this.#bytesSince = 0;
    // Keep the newest slots, as many as fit in retainBytes (and at most retainSlots).
    const retainBytes = this.#o.retainBytes;
    let kept = 0;
    let keptBytes = 0;
    for (let i = this.#recentSlotBytes.length - 1; i >= 0; i--) {
      keptBytes += this.#recentSlotBytes[i]!;
      if (keptBytes > retainBytes) break;
      kept += 1;
    }
    this.#save(
      { throughSlot: slot, bytes: this.#o.capture(), membership: this.#o.membership(slot) },
      slot - kept,
    );
  }

  /** A peer's snapshot was installed: keep it (it is now this node's latest). */
  install(snapshot: Snapshot): void {
    this.installed += 1;
    this.#takenAt = snapshot.throughSlot;
    this.#bytesSince = 0;
    this.#o.logger?.info(
      { throughSlot: snapshot.throughSlot, bytes: snapshot.bytes.length },
      'installed a snapshot from a peer',
    );
    this.#save(snapshot, undefined);
  }

  /** Waits for snapshot writes in progress; compacts nothing afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#writes;
  }

  #save(snapshot: Snapshot, compactThrough: number | undefined): void {
    this.#writing = true;
    this.#writes = this.#writes
      .then(() => writeSnapshot(this.#o.path, snapshot))
      .then(
        () => {
          this.#writing = false;
          if (this.#stopped) return;
          if (snapshot.throughSlot >= (this.#latest?.throughSlot ?? -1)) this.#latest = snapshot;
          if (compactThrough !== undefined && compactThrough >= 0) this.#o.compact(compactThrough);
        },
        (error: unknown) => this.#o.failed(error),
      );
  }
}
