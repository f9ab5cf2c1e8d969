import { catchUpMachine, type Effect } from '@synod/actors';
import type { Membership, PeerMessage } from '@synod/protocol';
import { type ActorRefFrom, createActor } from 'xstate';
import { type Feedback, type HostedActor, tell } from './tell.js';

/** What strong reads need of their host. */
export interface ReadsHost {
  readonly group: string;
  readonly nodeId: string;
  /** The founding members' count: without a leader, a majority of them answers a read. */
  readonly acceptorCount: number;
  /** Leader mode: reads ask a majority of every member set of the undelivered slots. */
  readonly leaderMode: boolean;
  readonly seed: number;
  membership(): Membership;
  /** The first slot not delivered on this node. */
  firstUnknownSlot(): number;
  /** Starts a read's actor; `completed` runs when it ends, unless the host stopped. */
  startOp(actor: HostedActor<Effect>, feedback: Feedback, completed: () => void): void;
  /** Stops a read's actor that was given up on. */
  stopOp(actor: HostedActor<Effect>): void;
}

interface Waiter {
  readonly through: number;
  readonly done: (through: number) => void;
}

/**
 * pg_paxos's strong reads: ask a majority for their highest accepted slot, fill what is
 * missing here, and answer once this node has delivered through it.
 */
export class StrongReads {
  readonly #host: ReadsHost;
  /** Reads still asking acceptors: they take the acceptors' answers. */
  readonly #asking = new Set<ActorRefFrom<typeof catchUpMachine>>();
  /** Reads that know their slot and wait for this node to deliver it. */
  readonly #waiters: Waiter[] = [];
  /**
   * Reads still asking acceptors, with the member sets they asked: they ask again when the
   * member sets of the undelivered slots change (see read).
   */
  readonly #restarts = new Map<() => void, string>();
  /**
   * Read request ids start at a seed-derived base, so answers still in flight from this
   * node's previous life (the same node subject) are not mistaken for answers to new reads.
   */
  #nextRequestId: number;

  constructor(host: ReadsHost) {
    this.#host = host;
    this.#nextRequestId = (Math.abs(host.seed) % 2 ** 21) * 2 ** 20;
  }

  /**
   * Calls back once this node has applied every write acknowledged before the call. Returns
   * a cancel function: a read given up on (a timeout) stops asking.
   */
  read(done: (through: number) => void): () => void {
    let cancelled = false;
    let cancelRound = (): void => undefined;
    // A write acknowledged under members this node has not yet learned of was accepted by a
    // majority of those members: the first change it did not know of was chosen under members
    // it did know, so catching up brings it here, and the read asks again. A round still
    // asking when the member sets of the undelivered slots change starts over too: members it
    // asked may no longer speak for the group (their answers are dropped), and slots
    // delivered since need no answer.
    const restart = (): void => {
      cancelRound();
      round();
    };
    const round = (): void => {
      const membership = this.#host.membership();
      this.#restarts.set(restart, this.#quorumsKey());
      cancelRound = this.#round((through) => {
        this.#restarts.delete(restart);
        if (cancelled) return;
        if (this.#host.membership() !== membership) round();
        else done(through);
      });
    };
    round();
    return () => {
      cancelled = true;
      this.#restarts.delete(restart);
      cancelRound();
    };
  }

  /** An acceptor's answer to a read's question: for the reads still asking. */
  answered(message: PeerMessage): void {
    for (const read of this.#asking) tell(read, { type: 'message', message });
  }

  /** The membership changed: reads asking members that no longer decide ask again. */
  membershipChanged(): void {
    if (this.#restarts.size === 0) return;
    const now = this.#quorumsKey();
    for (const [restart, asked] of [...this.#restarts]) if (asked !== now) restart();
  }

  /** This node delivered more slots: answer the reads waiting for them. */
  delivered(deliveredThrough: number): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (waiter.through <= deliveredThrough) {
        this.#waiters.splice(i, 1);
        waiter.done(waiter.through);
      }
    }
  }

  #round(done: (through: number) => void): () => void {
    const host = this.#host;
    const deliveredThrough = host.firstUnknownSlot() - 1;
    const actor = createActor(catchUpMachine, {
      input: {
        group: host.group,
        nodeId: host.nodeId,
        acceptorCount: host.acceptorCount,
        ...(host.leaderMode
          ? { quorums: host.membership().configsFrom(host.firstUnknownSlot()) }
          : {}),
        deliveredThrough,
        requestId: this.#nextRequestId++,
      },
    });
    let waiter: Waiter | undefined;
    this.#asking.add(actor);
    host.startOp(
      actor,
      (event) => {
        if (event.type !== 'persisted') tell(actor, event);
      },
      () => {
        this.#asking.delete(actor);
        const output = actor.getSnapshot().output;
        if (output === undefined) return;
        if (host.firstUnknownSlot() - 1 >= output.through) done(output.through);
        else {
          waiter = { through: output.through, done };
          this.#waiters.push(waiter);
        }
      },
    );
    return () => {
      this.#asking.delete(actor);
      host.stopOp(actor);
      const index = waiter === undefined ? -1 : this.#waiters.indexOf(waiter);
      if (index >= 0) this.#waiters.splice(index, 1);
    };
  }

  /** The member sets a read asks now: those of the undelivered slots. */
  #quorumsKey(): string {
    return this.#host
      .membership()
      .configsFrom(this.#host.firstUnknownSlot())
      .map((members) => members.join(','))
      .join('|');
  }
}
