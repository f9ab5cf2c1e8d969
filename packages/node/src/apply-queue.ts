import type { Snapshot } from '@synod/host';
import type { Logger } from '@synod/log';
import type { ClientWrite } from '@synod/protocol';
import type { AsyncStateMachine, WriteResult } from './async-machine.js';

/** How long the queue waits before trying a batch again after the machine failed it. */
const RETRY_MS = 500;

/**
 * Feeds delivered slots to an asynchronous machine in order, many slots per call while the
 * machine is busy (one transaction, one fsync for all of them), and tells the node what each
 * write did once its slot is applied. A failed call is tried again with the same slots: the
 * machine applies each slot once whatever happens.
 */
export class ApplyQueue {
  readonly #machine: AsyncStateMachine;
  readonly #applied: (slot: number, writes: readonly ClientWrite[], results: WriteResult[]) => void;
  readonly #logger: Logger | undefined;
  #pending: ({ slot: number; writes: ClientWrite[] } | { install: Snapshot })[] = [];
  /** After each call that moved the applied slot: the compaction policy listens. */
  onApplied: ((appliedThrough: number) => void) | undefined;
  #running = false;
  #stopped = false;
  #appliedThrough: number;
  readonly #waiters: { slot: number; done: () => void }[] = [];

  constructor(
    machine: AsyncStateMachine,
    appliedThrough: number,
    applied: (slot: number, writes: readonly ClientWrite[], results: WriteResult[]) => void,
    logger?: Logger,
  ) {
    this.#machine = machine;
    this.#appliedThrough = appliedThrough;
    this.#applied = applied;
    this.#logger = logger;
  }

  get appliedThrough(): number {
    return this.#appliedThrough;
  }

  /** A delivered slot and its writes. Slots the machine already has are dropped here. */
  push(slot: number, writes: ClientWrite[]): void {
    if (slot <= this.#appliedThrough) return;
    this.#pending.push({ slot, writes });
    if (!this.#running) void this.#drain();
  }

  /**
   * A peer's snapshot, installed after the slots already queued: the host delivers the slots
   * after it next, and they wait for it.
   */
  install(snapshot: Snapshot): void {
    this.#pending.push({ install: snapshot });
    if (!this.#running) void this.#drain();
  }

  /** Calls `done` once every slot through `slot` is applied. */
  whenApplied(slot: number, done: () => void): void {
    if (slot <= this.#appliedThrough) done();
    else this.#waiters.push({ slot, done });
  }

  stop(): void {
    this.#stopped = true;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#pending.length > 0 && !this.#stopped) {
      const first = this.#pending[0]!;
      if ('install' in first) {
        try {
          await this.#machine.install!(first.install);
          this.#appliedThrough = await this.#machine.appliedThrough();
          this.#pending.shift();
        } catch (error) {
          this.#logger?.error({ err: error }, "installing a peer's snapshot failed; retrying");
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        this.#release();
        this.onApplied?.(this.#appliedThrough);
        continue;
      }
      const until = this.#pending.findIndex((item) => 'install' in item);
      const batch = this.#pending.splice(0, until < 0 ? this.#pending.length : until) as {
        slot: number;
        writes: ClientWrite[];
      }[];
      let results: Map<number, WriteResult[]>;
      try {
        results = await this.#machine.apply(batch);
      } catch (error) {
        this.#logger?.error({ err: error }, 'applying committed slots failed; retrying');
        this.#pending.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      for (const { slot, writes } of batch) {
        this.#appliedThrough = Math.max(this.#appliedThrough, slot);
        const slotResults = results.get(slot);
        if (slotResults !== undefined) this.#applied(slot, writes, slotResults);
      }
      this.#release();
      this.onApplied?.(this.#appliedThrough);
    }
    this.#running = false;
  }

  #release(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (waiter.slot <= this.#appliedThrough) {
        this.#waiters.splice(i, 1);
        waiter.done();
      }
    }
  }
}
