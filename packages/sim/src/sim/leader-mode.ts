import { type LeaderTiming, leaderMachine, type PlantedBug } from '@synod/actors';
import type { GroupSubjects, PeerMessage, Value } from '@synod/protocol';
import type { Scheduler, TimerHandle } from '@synod/transport';
import { type AnyActorRef, createActor } from 'xstate';

/** The outcome of submit(): the slot the value was chosen in, or who to ask instead. */
export type SubmitResult =
  | { readonly ok: true; readonly slot: number }
  | { readonly ok: false; readonly leader: string | undefined };

/** What leader mode needs from its host. */
export interface LeaderModeHost {
  readonly nodeId: string;
  readonly group: string;
  readonly acceptorCount: number;
  readonly scheduler: Scheduler;
  readonly subjects: GroupSubjects;
  readonly seed: number;
  readonly plant: PlantedBug | undefined;
  readonly timing: LeaderTiming | undefined;
  minRound(): number;
  firstUnknownSlot(): number;
  log(): ReadonlyMap<number, Value>;
  start(name: string, actor: AnyActorRef): AnyActorRef;
  /** Sends a peer message to a subject, replies to this node. */
  publish(subject: string, message: PeerMessage): void;
  /** The learner hears of a chosen value from a peer. */
  learn(slot: number, value: Value): void;
  /** pg_paxos's fallback: run paxos(slot, no-op) on this node. */
  proposeNoop(slot: number, done: (value: Value) => void): void;
}

/** How long a read waits for a missing slot from peers before proposing the no-op itself. */
const CATCH_UP_GRACE_MS = 200;
/** How often a node that knows it is behind asks its peers for chosen values. */
const CATCH_UP_EVERY_MS = 50;
const CATCH_UP_BATCH = 512;

const hex = (value: Value): string => Buffer.from(value).toString('hex');

/**
 * The distinguished-leader half of a host: runs the leader machine, sends client values to it
 * (submit), keeps followers caught up from their peers' logs, and serves those requests. A
 * slot a read waits for is first asked of peers; only if it stays unknown does the node run
 * pg_paxos's no-op proposal, which may depose the leader but never loses a chosen value.
 */
export class LeaderMode {
  readonly actor: AnyActorRef;
  readonly #host: LeaderModeHost;
  readonly #submits = new Map<string, ((result: SubmitResult) => void)[]>();
  readonly #slotWaiters = new Map<
    number,
    { done: ((value: Value) => void)[]; fallback: TimerHandle }
  >();
  #leaderId: string | undefined;
  #knownCommitIndex = -1;
  #catchUpTimer: TimerHandle | undefined;

  constructor(host: LeaderModeHost) {
    this.#host = host;
    this.actor = host.start(
      'leader',
      createActor(leaderMachine, {
        input: {
          group: host.group,
          nodeId: host.nodeId,
          acceptorCount: host.acceptorCount,
          minRound: host.minRound(),
          firstUnchosen: host.firstUnknownSlot(),
          seed: host.seed * 104_729 + 1,
          ...(host.plant === undefined ? {} : { plant: host.plant }),
          ...(host.timing === undefined ? {} : { timing: host.timing }),
        },
      }),
    );
  }

  get leader(): string | undefined {
    return this.#leaderId;
  }

  submit(value: Value, done: (result: SubmitResult) => void): void {
    if (this.#leaderId !== this.#host.nodeId) {
      const leader = this.#leaderId;
      this.#host.scheduler.setTimer(0, () => done({ ok: false, leader }));
      return;
    }
    const key = hex(value);
    const waiting = this.#submits.get(key);
    if (waiting !== undefined) waiting.push(done);
    else {
      this.#submits.set(key, [done]);
      this.actor.send({ type: 'propose', value });
    }
  }

  leadership(leader: string | undefined): void {
    this.#leaderId = leader;
  }

  chosen(slot: number, value: Value): void {
    const key = hex(value);
    const waiting = this.#submits.get(key);
    if (waiting === undefined) return;
    this.#submits.delete(key);
    for (const done of waiting) done({ ok: true, slot });
  }

  refused(values: readonly Value[], leader: string | undefined): void {
    for (const value of values) {
      const key = hex(value);
      const waiting = this.#submits.get(key);
      this.#submits.delete(key);
      for (const done of waiting ?? []) done({ ok: false, leader });
    }
  }

  /** A slot was delivered here: tell the leader machine, and release reads waiting for it. */
  delivered(slot: number, value: Value): void {
    this.actor.send({ type: 'progress', firstUnchosen: slot + 1 });
    const waiter = this.#slotWaiters.get(slot);
    if (waiter !== undefined) {
      this.#slotWaiters.delete(slot);
      waiter.fallback.cancel();
      for (const done of waiter.done) done(value);
    }
  }

  /** A read needs `slot`: ask the peers, and fall back to the no-op proposal after a grace period. */
  awaitSlot(slot: number, done: (value: Value) => void): void {
    const known = this.#host.log().get(slot);
    if (known !== undefined) {
      this.#host.scheduler.setTimer(0, () => done(known));
      return;
    }
    const waiter = this.#slotWaiters.get(slot);
    if (waiter !== undefined) {
      waiter.done.push(done);
      return;
    }
    const fallback = this.#host.scheduler.setTimer(CATCH_UP_GRACE_MS, () => {
      const entry = this.#slotWaiters.get(slot);
      if (entry === undefined) return;
      // The chosen no-op reaches the learner like any chosen value; delivery releases the read.
      this.#host.proposeNoop(slot, () => undefined);
    });
    this.#slotWaiters.set(slot, { done: [done], fallback });
    this.#requestCatchUp();
  }

  heartbeat(message: PeerMessage): void {
    if (message.type !== 'heartbeat') return;
    this.actor.send({ type: 'message', message });
    this.#knownCommitIndex = Math.max(this.#knownCommitIndex, message.commitIndex);
    if (this.#knownCommitIndex >= this.#host.firstUnknownSlot()) this.#requestCatchUp();
  }

  /** Answers a peer's catch-up request from this node's delivered log. */
  serveCatchUp(message: PeerMessage, reply: string | undefined): void {
    if (
      message.type !== 'catchupRequest' ||
      reply === undefined ||
      message.from === this.#host.nodeId
    )
      return;
    const log = this.#host.log();
    const entries: { slot: number; value: Value }[] = [];
    for (let slot = message.fromSlot; entries.length < message.maxEntries; slot++) {
      const value = log.get(slot);
      if (value === undefined) break;
      entries.push({ slot, value });
    }
    if (entries.length === 0) return;
    const { group, nodeId } = this.#host;
    this.#host.publish(reply, {
      type: 'catchupResponse',
      group,
      from: nodeId,
      entries,
      commitIndex: this.#host.firstUnknownSlot() - 1,
    });
  }

  caughtUp(message: PeerMessage): void {
    if (message.type !== 'catchupResponse') return;
    for (const { slot, value } of message.entries) this.#host.learn(slot, value);
  }

  #requestCatchUp(): void {
    if (this.#catchUpTimer !== undefined) return;
    const { group, nodeId, subjects } = this.#host;
    this.#host.publish(subjects.catchup, {
      type: 'catchupRequest',
      group,
      from: nodeId,
      fromSlot: this.#host.firstUnknownSlot(),
      maxEntries: CATCH_UP_BATCH,
    });
    // Ask again shortly while something is still missing (requests and answers can be lost).
    this.#catchUpTimer = this.#host.scheduler.setTimer(CATCH_UP_EVERY_MS, () => {
      this.#catchUpTimer = undefined;
      if (this.#slotWaiters.size > 0 || this.#knownCommitIndex >= this.#host.firstUnknownSlot())
        this.#requestCatchUp();
    });
  }

  stop(): void {
    this.#catchUpTimer?.cancel();
    for (const waiter of this.#slotWaiters.values()) waiter.fallback.cancel();
    this.actor.stop();
  }
}
