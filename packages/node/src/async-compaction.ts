import type { GroupHost, Snapshot } from '@synod/host';
import type { Logger } from '@synod/log';
import type { ApplyQueue } from './apply-queue.js';
import type { AsyncStateMachine } from './async-machine.js';
import { writeSnapshot } from './snapshot-io.js';

export interface AsyncCompactionOptions {
  readonly path: string;
  readonly machine: AsyncStateMachine;
  readonly queue: ApplyQueue;
  host(): GroupHost;
  readonly initial: Snapshot | undefined;
  /** Compact once this many slots were applied since the last time (snapshotEvery). */
  readonly snapshotEvery: number;
  /** Slots kept below the applied one for peers a little behind (retainSlots). */
  readonly retainSlots: number;
  readonly logger?: Logger | undefined;
  failed(error: unknown): void;
}

/**
 * Log compaction for a node whose state machine is a database. The database is its own
 * snapshot: once it has applied a slot, the node may forget the log below it. A peer behind
 * that point gets the machine's snapshot (taken when first asked, at the applied slot), and
 * a node that installs one goes on from its slot.
 */
export class AsyncCompaction {
  readonly #o: AsyncCompactionOptions;
  #lastCompactedAt: number;
  #compacting = false;
  #served: Snapshot | undefined;
  #making = false;
  #writes: Promise<void> = Promise.resolve();
  installed = 0;

  constructor(options: AsyncCompactionOptions) {
    this.#o = options;
    this.#lastCompactedAt = options.initial?.throughSlot ?? -1;
  }

  /** The machine applied through `slot`: compact when the policy says so. */
  applied(slot: number): void {
    const every = this.#o.snapshotEvery;
    if (this.#compacting || slot - this.#lastCompactedAt < every) return;
    const host = this.#o.host();
    const through = Math.min(slot, host.deliveredThrough) - this.#o.retainSlots;
    if (through <= host.acceptorState.compactedThrough) return;
    this.#compacting = true;
    // The restart point first: once the log below it is gone, a restart must not look there.
    this.#saveRestartPoint(through).then(
      () => {
        this.#compacting = false;
        this.#lastCompactedAt = slot;
        host.compact(through);
        this.#o.logger?.info({ through }, 'compacted the log: the database holds the state');
      },
      (error: unknown) => this.#o.failed(error),
    );
  }

  /**
   * For peers behind the compaction point: a snapshot at or past it. Made when first asked
   * (a peer asks again every 50 ms while it waits) and kept until compaction passes it.
   */
  latest(): Snapshot | undefined {
    const floor = this.#o.host().acceptorState.compactedThrough;
    if (this.#served !== undefined && this.#served.throughSlot >= floor) return this.#served;
    if (!this.#making) {
      this.#making = true;
      this.#o.machine.snapshot!().then(
        (snapshot) => {
          this.#making = false;
          this.#served = snapshot;
        },
        (error: unknown) => {
          this.#making = false;
          this.#o.logger?.warn({ err: error }, 'could not take a snapshot for a peer');
        },
      );
    }
    return undefined;
  }

  /** A peer's snapshot: the queue installs it after what it holds; then the restart point moves. */
  install(snapshot: Snapshot): void {
    this.installed += 1;
    this.#o.logger?.info({ throughSlot: snapshot.throughSlot }, "installing a peer's snapshot");
    this.#o.queue.install(snapshot);
    this.#o.queue.whenApplied(snapshot.throughSlot, () => {
      this.#saveRestartPoint(snapshot.throughSlot).catch((error: unknown) => this.#o.failed(error));
    });
  }

  async stop(): Promise<void> {
    await this.#writes;
  }

  #saveRestartPoint(through: number): Promise<void> {
    const membership = this.#o.host().membershipThrough(through).toRecord();
    // No state: the database is the state, durable through its own applied slot, which is at
    // or past this one. The file only says where the log starts again, and who the members are.
    this.#writes = this.#writes.then(() =>
      writeSnapshot(this.#o.path, { throughSlot: through, bytes: new Uint8Array(0), membership }),
    );
    return this.#writes;
  }
}
