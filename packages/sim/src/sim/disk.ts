import type { Snapshot } from '@synod/host';
import type { StoreRecord } from '@synod/protocol';
import type { Rng, Scheduler } from '@synod/transport';

type Pending =
  | { readonly kind: 'write'; readonly records: readonly StoreRecord[]; readonly done: () => void }
  | { readonly kind: 'rewrite'; readonly records: readonly StoreRecord[] };

/**
 * A node's disk in the simulator. Writes become durable only when their fsync completes,
 * after a latency the seed picks; a crash keeps the durable records and a random prefix of
 * the rest (what the OS happened to write back), never more. Completions come in order.
 * A rewrite (compaction) replaces the records atomically, in order with the writes, as a
 * rename of a fresh file would. Snapshots are files of their own, replaced atomically.
 */
export class SimDisk {
  #durable: StoreRecord[] = [];
  #pending: Pending[] = [];
  #syncing = false;
  #epoch = 0;
  #snapshot: Snapshot | undefined;
  #savingSnapshot = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rng: Rng,
    private readonly fsyncMs: { readonly min: number; readonly max: number },
  ) {}

  /** Everything that survives a crash right now, in write order. */
  get durable(): readonly StoreRecord[] {
    return this.#durable;
  }

  /** The last snapshot whose save completed. */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Whether some write is not durable yet: a crash now would lose it. */
  get hasUnsyncedWrites(): boolean {
    return this.#pending.some((p) => p.kind === 'write');
  }

  write(records: readonly StoreRecord[], done: () => void): void {
    this.#pending.push({ kind: 'write', records, done });
    if (!this.#syncing) this.#sync();
  }

  rewrite(records: readonly StoreRecord[]): void {
    this.#pending.push({ kind: 'rewrite', records: [...records] });
    if (!this.#syncing) this.#sync();
  }

  /** Saves a snapshot (write, fsync, rename): durable after a latency, lost if a crash comes first. */
  saveSnapshot(snapshot: Snapshot, done: () => void): void {
    const epoch = this.#epoch;
    const save = ++this.#savingSnapshot;
    this.scheduler.setTimer(this.#latency(), () => {
      if (epoch !== this.#epoch) return;
      if (
        save === this.#savingSnapshot ||
        (this.#snapshot?.throughSlot ?? -1) < snapshot.throughSlot
      )
        this.#snapshot = snapshot;
      done();
    });
  }

  /** Loses what was not fsynced, except a random prefix of it; drops every callback. */
  crash(): void {
    const survivors = this.rng.chance(0.5) ? 0 : this.rng.int(0, this.#pending.length);
    for (const entry of this.#pending.slice(0, survivors)) this.#land(entry);
    this.#pending = [];
    this.#syncing = false;
    this.#epoch++;
  }

  #land(entry: Pending): void {
    if (entry.kind === 'write') this.#durable.push(...entry.records);
    else this.#durable = [...entry.records];
  }

  #latency(): number {
    return this.fsyncMs.min + this.rng.next() * (this.fsyncMs.max - this.fsyncMs.min);
  }

  // Group commit: one fsync covers every write queued when it starts; a rewrite goes alone.
  #sync(): void {
    if (this.#pending.length === 0) return;
    let batch = 1;
    if (this.#pending[0]!.kind === 'write')
      while (batch < this.#pending.length && this.#pending[batch]!.kind === 'write') batch++;
    this.#syncing = true;
    const epoch = this.#epoch;
    this.scheduler.setTimer(this.#latency(), () => {
      if (epoch !== this.#epoch) return;
      const done = this.#pending.splice(0, batch);
      for (const entry of done) this.#land(entry);
      this.#syncing = false;
      for (const entry of done) if (entry.kind === 'write') entry.done();
      if (this.#pending.length > 0) this.#sync();
    });
  }
}
