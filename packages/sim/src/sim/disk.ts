import type { StoreRecord } from '@synod/protocol';
import type { Rng, Scheduler } from '@synod/transport';

/**
 * A node's disk in the simulator. Writes become durable only when their fsync completes,
 * after a latency the seed picks; a crash keeps the durable records and a random prefix of
 * the rest (what the OS happened to write back), never more. Completions come in order.
 */
export class SimDisk {
  readonly #durable: StoreRecord[] = [];
  #pending: { records: readonly StoreRecord[]; done: () => void }[] = [];
  #syncing = false;
  #epoch = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rng: Rng,
    private readonly fsyncMs: { readonly min: number; readonly max: number },
  ) {}

  /** Everything that survives a crash right now, in write order. */
  get durable(): readonly StoreRecord[] {
    return this.#durable;
  }

  /** Whether some write is not durable yet: a crash now would lose it. */
  get hasUnsyncedWrites(): boolean {
    return this.#pending.length > 0;
  }

  write(records: readonly StoreRecord[], done: () => void): void {
    this.#pending.push({ records, done });
    if (!this.#syncing) this.#sync();
  }

  /** Loses what was not fsynced, except a random prefix of it; drops every callback. */
  crash(): void {
    const survivors = this.rng.chance(0.5) ? 0 : this.rng.int(0, this.#pending.length);
    for (const write of this.#pending.slice(0, survivors)) this.#durable.push(...write.records);
    this.#pending = [];
    this.#syncing = false;
    this.#epoch++;
  }

  // Group commit: one fsync covers every write queued when it starts.
  #sync(): void {
    const batch = this.#pending.length;
    if (batch === 0) return;
    this.#syncing = true;
    const epoch = this.#epoch;
    const latency = this.fsyncMs.min + this.rng.next() * (this.fsyncMs.max - this.fsyncMs.min);
    this.scheduler.setTimer(latency, () => {
      if (epoch !== this.#epoch) return;
      const done = this.#pending.splice(0, batch);
      for (const write of done) this.#durable.push(...write.records);
      this.#syncing = false;
      for (const write of done) write.done();
      if (this.#pending.length > 0) this.#sync();
    });
  }
}
