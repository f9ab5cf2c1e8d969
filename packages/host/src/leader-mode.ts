import { DEFAULT_LEADER_TIMING, type LeaderEffect, leaderMachine } from '@synod/actors';
import { type Ballot, formatBallot, type PeerMessage, type Value } from '@synod/protocol';
import { type ActorRefFrom, createActor } from 'xstate';
import { CatchUp } from './catch-up.js';
import type { LeaderModeHost } from './leader-mode-host.js';
import { type LeaderReadOutcome, LeaderReads } from './leader-reads.js';
import { type SubmitResult, WaitingSubmits } from './submits.js';
import { tell } from './tell.js';

export type { LeaderModeHost } from './leader-mode-host.js';
export type { LeaderReadOutcome } from './leader-reads.js';
export type { SubmitResult } from './submits.js';

/**
 * The distinguished-leader half of a host: runs the leader machine, sends client values to it
 * (submit) and answers them when they are chosen, tracks who leads from heartbeats and
 * accepts, and keeps this node caught up (CatchUp).
 */
export class LeaderMode {
  readonly actor: ActorRefFrom<typeof leaderMachine>;
  readonly #host: LeaderModeHost;
  readonly #submits: WaitingSubmits;
  readonly #catchUp: CatchUp;
  readonly #reads: LeaderReads;
  #leaderId: string | undefined;
  #lastHeartbeatAt: number | undefined;

  constructor(host: LeaderModeHost) {
    this.#host = host;
    this.#submits = new WaitingSubmits(host.limits.maxWaitingSubmits);
    this.#catchUp = new CatchUp(host);
    const actor = createActor(leaderMachine, {
      input: {
        group: host.group,
        nodeId: host.nodeId,
        membership: host.membership(),
        minRound: host.minRound(),
        firstUnknownSlot: host.firstUnknownSlot(),
        seed: host.seed * 104_729 + 1,
        rules: host.rules,
        ...(host.timing === undefined ? {} : { timing: host.timing }),
        ...(host.maxInFlight === undefined ? {} : { maxInFlight: host.maxInFlight }),
      },
    });
    this.actor = actor;
    this.#reads = new LeaderReads({
      scheduler: host.scheduler,
      check: (id) => tell(actor, { type: 'checkLeadership', id }),
      // Two beats: an answer slower than that was most likely lost (NATS is at-most-once).
      resendAfterMs: 2 * (host.timing ?? DEFAULT_LEADER_TIMING).heartbeatMs,
      maxReads: host.limits.maxLeaderReads,
    });
    host.start('leader', actor, (event) => {
      if (event.type !== 'proposalDone') tell(actor, event);
    });
  }

  get leader(): string | undefined {
    return this.#leaderId;
  }

  /** Distinct values waiting for their slot here (at most HostLimits.maxWaitingSubmits). */
  get waitingSubmits(): number {
    return this.#submits.size;
  }

  /** Reads waiting for slots to reach this node (at most HostLimits.maxSlotWaiters). */
  get slotWaiters(): number {
    return this.#catchUp.slotWaiters;
  }

  /** Linearizable reads waiting for a ReadIndex round here (at most HostLimits.maxLeaderReads). */
  get leaderReads(): number {
    return this.#reads.size;
  }

  /**
   * A linearizable read without a log slot: once a majority confirmed this node still leads,
   * `done` gets the slot to serve it at (LeaderReads). Returns a function that gives it up.
   */
  read(done: (outcome: LeaderReadOutcome) => void): () => void {
    return this.#reads.read(done);
  }

  /** The leader machine's answer to a ReadIndex round. */
  leadershipChecked(effect: Extract<LeaderEffect, { type: 'leadershipChecked' }>): void {
    this.#reads.checked(effect);
  }

  /** Who leads at which ballot, how far the log is known chosen, and the leader's last beat. */
  view(): {
    ballot: string;
    commitIndex: number;
    lastHeartbeatMsAgo: number | null;
  } {
    const context = this.actor.getSnapshot().context;
    const leading = this.#leaderId === this.#host.nodeId;
    return {
      ballot: formatBallot(leading ? context.ballot : context.leaderBallot),
      commitIndex: leading
        ? context.firstUnknownSlot - 1
        : Math.max(this.#catchUp.knownCommitIndex, this.#host.firstUnknownSlot() - 1),
      lastHeartbeatMsAgo: leading
        ? 0
        : this.#lastHeartbeatAt === undefined
          ? null
          : Math.round(this.#host.scheduler.now() - this.#lastHeartbeatAt),
    };
  }

  submit(value: Value, done: (result: SubmitResult) => void): void {
    const self = this.#host.nodeId;
    const leader = this.#leaderId;
    const taken =
      leader === self &&
      this.#submits.add(value, done, () => tell(this.actor, { type: 'propose', value }));
    // Not the leader: say who is. Too many waiting: as the machine answers when its queue is
    // full, not taken here, ask again.
    if (!taken) this.#host.scheduler.setTimer(0, () => done({ ok: false, leader }));
  }

  leadership(leader: string | undefined): void {
    this.#leaderId = leader;
  }

  chosen(slot: number, value: Value): void {
    this.#submits.chosen(slot, value);
  }

  refused(values: readonly Value[], leader: string | undefined): void {
    for (const value of values) this.#submits.refused(value, leader);
  }

  /** A slot was delivered here: tell the leader machine, and release reads waiting for it. */
  delivered(slot: number, value: Value): void {
    // A submitted value is in the log once delivered, whoever's acks made it so.
    this.#submits.chosen(slot, value);
    tell(this.actor, {
      type: 'progress',
      firstUnknownSlot: slot + 1,
      membership: this.#host.membership(),
    });
    this.#catchUp.delivered(slot, value);
  }

  /** A snapshot moved delivery past `throughSlot`: release what waited for those slots. */
  skipped(throughSlot: number): void {
    tell(this.actor, {
      type: 'progress',
      firstUnknownSlot: throughSlot + 1,
      membership: this.#host.membership(),
    });
    this.#catchUp.skipped(throughSlot);
  }

  /** The leader this node follows and the ballot it leads at; undefined if none, or itself. */
  followed(): { readonly id: string; readonly ballot: Ballot } | undefined {
    const id = this.#leaderId;
    if (id === undefined || id === this.#host.nodeId) return undefined;
    return { id, ballot: this.actor.getSnapshot().context.leaderBallot };
  }

  /**
   * A peer says `instance` is chosen, but this node could not check its value: the slot comes
   * from the peers' logs instead (catch-up), like any slot known chosen and not yet here.
   */
  chosenElsewhere(instance: number | string): void {
    if (typeof instance === 'number') this.#catchUp.heard(instance);
  }

  /** A node this one does not know as a member says the log moved on (CatchUp.probe). */
  probe(): void {
    this.#catchUp.probe();
  }

  /** An acceptor refused this node's phase 1: it compacted through `compactedThrough`. */
  behind(compactedThrough: number): void {
    this.#catchUp.heard(compactedThrough);
  }

  /** A read needs `slot` (CatchUp.awaitSlot). */
  awaitSlot(slot: number, done: (value: Value) => void): void {
    this.#catchUp.awaitSlot(slot, done);
  }

  /**
   * An accept from the leader this node follows, at the ballot it follows: as good as a
   * heartbeat for the election timer (Raft's AppendEntries resets it too). Only then: an
   * accept of any other proposer says nothing about who leads.
   */
  acceptSeen(message: PeerMessage): void {
    if (message.type !== 'accept') return;
    const followed = this.followed();
    if (
      followed === undefined ||
      followed.id !== message.from ||
      followed.ballot.round !== message.ballot.round ||
      followed.ballot.nodeId !== message.ballot.nodeId
    )
      return;
    this.#lastHeartbeatAt = this.#host.scheduler.now();
    tell(this.actor, {
      type: 'message',
      message: {
        type: 'heartbeat',
        group: message.group,
        from: message.from,
        ballot: message.ballot,
        commitIndex: -1,
      },
    });
  }

  heartbeat(message: PeerMessage): void {
    if (message.type !== 'heartbeat') return;
    if (message.from === this.#leaderId || this.#leaderId === undefined)
      this.#lastHeartbeatAt = this.#host.scheduler.now();
    tell(this.actor, { type: 'message', message });
    this.#catchUp.heard(message.commitIndex);
  }

  /** Answers a peer's catch-up request, and learns from a member's how far it got (CatchUp.serve). */
  serveCatchUp(message: PeerMessage, reply: string | undefined, fromMember: boolean): void {
    this.#catchUp.serve(message, reply, fromMember);
  }

  caughtUp(message: PeerMessage): void {
    this.#catchUp.caughtUp(message);
  }

  stop(): void {
    this.#catchUp.stop();
    this.#reads.stop();
    this.actor.stop();
  }
}
