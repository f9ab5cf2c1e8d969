import type { LeaderEffect, LeadershipRefusal } from '@synod/actors';
import type { Scheduler, TimerHandle } from '@synod/transport';

/** How a linearizable read without a log slot ended on this node. */
export type LeaderReadOutcome =
  /** Serve the read once this node has applied through `readIndex`. */
  | { readonly readIndex: number }
  /**
   * Not served here: `not-leader` and `deposed` (ask the leader, `leader` if known), `unsettled`
   * (a leader just elected: put the read in the log instead), `busy` (too many reads waiting).
   */
  | { readonly refused: LeadershipRefusal | 'busy'; readonly leader?: string | undefined };

/** What leader reads need of their host. */
export interface LeaderReadsHost {
  readonly scheduler: Scheduler;
  /** Asks the leader machine to confirm it leads (checkLeadership), for round `id`. */
  check(id: number): void;
  /** A round whose answers have not all come by then asks the acceptors again. */
  readonly resendAfterMs: number;
  readonly maxReads: number;
}

/** A round asks the acceptors this many times more before it starts over (see #startRound). */
const RESENDS_PER_ROUND = 2;

interface Reader {
  readonly done: (outcome: LeaderReadOutcome) => void;
}

/**
 * Linearizable reads on a leader, Raft's ReadIndex: reads that arrive in one turn of the event
 * loop, or while a round is open, share the next round, and one round (one message to the
 * acceptors and one answer from each) confirms every read it carries. A round must begin
 * after its reads arrived, so a read never joins a round already asked.
 */
export class LeaderReads {
  readonly #host: LeaderReadsHost;
  #next = new Set<Reader>();
  #round: { readonly id: number; readonly readers: Set<Reader>; timer: TimerHandle } | undefined;
  #lastId = 0;
  /** A round is due on the next turn: reads that arrive in the same turn share it. */
  #due = false;
  #stopped = false;

  constructor(host: LeaderReadsHost) {
    this.#host = host;
  }

  /** Reads waiting for a round or in one (at most LeaderReadsHost.maxReads). */
  get size(): number {
    return this.#next.size + (this.#round?.readers.size ?? 0);
  }

  /** Calls `done` once; the returned function gives the read up (its client's time ran out). */
  read(done: (outcome: LeaderReadOutcome) => void): () => void {
    if (this.size >= this.#host.maxReads) {
      this.#host.scheduler.setTimer(0, () => done({ refused: 'busy' }));
      return () => undefined;
    }
    const reader: Reader = { done };
    this.#next.add(reader);
    if (!this.#due && this.#round === undefined) {
      this.#due = true;
      this.#host.scheduler.setTimer(0, () => {
        this.#due = false;
        this.#startRound();
      });
    }
    return () => {
      this.#next.delete(reader);
      this.#round?.readers.delete(reader);
    };
  }

  /** The leader machine's answer to a round. */
  checked(effect: Extract<LeaderEffect, { type: 'leadershipChecked' }>): void {
    const round = this.#round;
    if (round === undefined || round.id !== effect.id) return;
    round.timer.cancel();
    this.#round = undefined;
    const outcome: LeaderReadOutcome =
      effect.readIndex !== undefined
        ? { readIndex: effect.readIndex }
        : { refused: effect.refused ?? 'not-leader', leader: effect.leader };
    for (const reader of round.readers) reader.done(outcome);
    this.#startRound();
  }

  stop(): void {
    this.#stopped = true;
    this.#round?.timer.cancel();
    this.#round = undefined;
    this.#next.clear();
  }

  #startRound(): void {
    if (this.#stopped || this.#round !== undefined || this.#next.size === 0) return;
    const id = ++this.#lastId;
    const readers = this.#next;
    this.#next = new Set();
    let resends = 0;
    const resend = (): void => {
      const round = this.#round;
      if (round?.id !== id) return;
      // Every read of the round was given up: a leader cut off from the group stops asking.
      // After a few resends the round starts over with a new id, so the machine takes the
      // member sets anew: a change delivered since may have left members the round still
      // waits for, whose answers are no longer believed.
      if (round.readers.size === 0 || ++resends > RESENDS_PER_ROUND) {
        this.#round = undefined;
        for (const reader of round.readers) this.#next.add(reader);
        this.#startRound();
        return;
      }
      round.timer = this.#host.scheduler.setTimer(this.#host.resendAfterMs, resend);
      this.#host.check(id);
    };
    // Set before asking: the machine may answer within check() (a follower refuses at once).
    this.#round = {
      id,
      readers,
      timer: this.#host.scheduler.setTimer(this.#host.resendAfterMs, resend),
    };
    this.#host.check(id);
  }
}
