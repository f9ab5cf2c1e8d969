import type { Snapshot } from '@synod/host';
import type { Logger } from '@synod/log';
import type { ClientWrite } from '@synod/protocol';
import type { AsyncStateMachine, WriteResult } from './async-machine.js';

/** How long the queue waits before trying a batch again after the machine failed it. */
const RETRY_MS = 500;
/** A failure that lasts is logged again this often, not at every retry. */
const LOG_AGAIN_MS = 30_000;

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
  #pending: ({ slot: number; writes: ClientWrite[] } | { install: Snapshot; replace?: boolean })[] =
    [];
  /** After each call that moved the applied slot: the compaction policy listens. */
  onApplied: ((appliedThrough: number) => void) | undefined;
  /**
   * A peer's state through at least a slot (database-repair.ts), from one of `from` when
   * given, else from any member: installed ahead of the slots that wait, it puts a database
   * that left its log position back in step.
   */
  fetchPeerState:
    | ((atLeast: number, from?: readonly string[]) => Promise<Snapshot | undefined>)
    | undefined;
  #repairing = false;
  #running = false;
  #stopped = false;
  #appliedThrough: number;
  readonly #waiters: { slot: number; done: () => void }[] = [];
  /** The machine's failure while it lasts (a database that left its log position, say). */
  #failing: { readonly since: number; message: string; loggedAt: number } | undefined;

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

  /**
   * Why this node applies nothing, while the machine keeps failing: `synod status` shows it.
   * A database whose bookkeeping someone changed fails every retry alike (SlotGapError).
   */
  get failing(): { readonly since: number; readonly message: string } | undefined {
    return this.#failing;
  }

  /**
   * Replaces the machine's state with a peer's (one of `from`, when given): for a database
   * that is not where its log is (it claims slots it never applied, or lost some), or whose
   * state differs from the group's at a verified slot. The peer's state is through at least
   * the slot this queue applied, so the slots that wait follow on from it; the database's own
   * claim of its position is not believed. True once a peer's state is queued to install.
   */
  async reinstall(why: string, from?: readonly string[]): Promise<boolean> {
    if (this.#repairing || this.fetchPeerState === undefined) return false;
    this.#repairing = true;
    const atLeast = this.#appliedThrough;
    this.#logger?.warn({ atLeast, why }, `${why}: installing a peer's state`);
    try {
      const snapshot = await this.fetchPeerState(atLeast, from);
      if (snapshot === undefined || this.#stopped) return false;
      this.#pending.unshift({ install: snapshot, replace: true });
      if (!this.#running) void this.#drain();
      return true;
    } catch (error) {
      this.#logger?.error({ err: error }, 'the repair failed; trying again');
      return false;
    } finally {
      this.#repairing = false;
    }
  }

  /** Logs the first failure and then one every LOG_AGAIN_MS, not one per retry. */
  #failed(error: unknown, what: string): void {
    const now = Date.now();
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const first = this.#failing === undefined;
    this.#failing ??= { since: now, message, loggedAt: now };
    this.#failing.message = message;
    if (first || now - this.#failing.loggedAt >= LOG_AGAIN_MS) {
      this.#failing.loggedAt = now;
      this.#logger?.error(
        { err: error, failingForMs: now - this.#failing.since },
        `${what}; retrying every ${RETRY_MS} ms`,
      );
    }
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#pending.length > 0 && !this.#stopped) {
      const first = this.#pending[0]!;
      if ('install' in first) {
        if (first.replace === true && first.install.throughSlot < this.#appliedThrough) {
          // Slots applied while it was fetched would be undone and never delivered again.
          this.#pending.shift();
          void this.reinstall("the peer's state fetched for a repair is behind: fetching again");
          continue;
        }
        try {
          await this.#machine.install!(first.install, { replace: first.replace === true });
          this.#appliedThrough = await this.#machine.appliedThrough();
          this.#pending.shift();
          this.#failing = undefined;
        } catch (error) {
          this.#failed(error, "installing a peer's snapshot failed");
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
        this.#failed(error, 'applying committed slots failed');
        this.#pending.unshift(...batch);
        if (error instanceof Error && error.name === 'SlotGapError')
          void this.reinstall("this node's database lost slots it had applied");
        if (error instanceof Error && error.name === 'SlotAheadError')
          void this.reinstall("this node's database claims slots it never applied");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      this.#failing = undefined;
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
