import { createHash } from 'node:crypto';
import {
  type LeaderContext,
  type LeaderTiming,
  leaderMachine,
  type ProtocolRules,
} from '@synod/actors';
import {
  type Ballot,
  formatBallot,
  type GroupSubjects,
  type Membership,
  type PeerMessage,
  type SnapshotChunk,
  type Value,
} from '@synod/protocol';
import type { Scheduler, TimerHandle } from '@synod/transport';
import { type AnyActorRef, createActor } from 'xstate';
import { tell } from './tell.js';

/**
 * The outcome of submit(): the slot the value was chosen in, or who to ask instead. Chosen is
 * not yet in order: a slot below may still be open, and a later write can be chosen there. An
 * answer to a client waits until the slot is delivered (the node runtime answers writes as
 * they are applied), or a client's next write can overtake the one it was told of.
 */
export type SubmitResult =
  | { readonly ok: true; readonly slot: number }
  | { readonly ok: false; readonly leader: string | undefined };

/** What leader mode needs from its host. */
export interface LeaderModeHost {
  readonly nodeId: string;
  readonly group: string;
  /** The founding members and the changes delivered so far. */
  membership(): Membership;
  readonly scheduler: Scheduler;
  readonly subjects: GroupSubjects;
  readonly seed: number;
  readonly rules: ProtocolRules;
  readonly timing: LeaderTiming | undefined;
  readonly maxInFlight: number | undefined;
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
  /** The first slot log() still holds (earlier ones were compacted away). */
  logStart(): number;
  /** This node's latest durable snapshot, for peers behind its compaction point. */
  latestSnapshot(): { readonly throughSlot: number; readonly bytes: Uint8Array } | undefined;
  /** Size of the pieces snapshots are sent in (default SNAPSHOT_CHUNK_BYTES). */
  readonly snapshotChunkBytes: number | undefined;
  /** A complete snapshot from a peer. */
  installSnapshot(snapshot: { readonly throughSlot: number; readonly bytes: Uint8Array }): void;
}

/** A snapshot arriving in pieces. */
interface Transfer {
  readonly throughSlot: number;
  readonly total: number;
  readonly parts: Uint8Array[];
  received: number;
  /** Catch-up rounds since the last piece arrived: a transfer that stalls starts over. */
  idleRounds: number;
}

/** How long a read waits for a missing slot from peers before proposing the no-op itself. */
const CATCH_UP_GRACE_MS = 200;
/** How often a node that knows it is behind asks its peers for chosen values. */
const CATCH_UP_EVERY_MS = 50;
const CATCH_UP_BATCH = 512;
/** Most no-op proposals a node starts per grace period for slots its reads wait for. */
const NOOP_FALLBACK_BATCH = 16;
/** Most value bytes in one catch-up answer: it must fit in one message (1 MiB by default). */
const CATCH_UP_BYTES = 512 * 1024;
/** A snapshot moves in pieces of this size: a NATS message is bounded (1 MiB by default). */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
const TRANSFER_STALL_ROUNDS = 5;

/**
 * What a submitted value is matched by when it is chosen: its bytes in hex when short, else a
 * SHA-256 digest (a 512 KiB batch made a 1 MiB string per waiting submit, and hex of it took
 * twice as long as hashing). The prefixes keep the two kinds apart.
 */
const valueKey = (value: Value): string =>
  value.length <= 64
    ? `h${Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex')}`
    : `s${createHash('sha256').update(value).digest('base64')}`;

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
  /** Reads waiting for a slot to be delivered here, by slot. */
  readonly #slotWaiters = new Map<number, ((value: Value) => void)[]>();
  /** One timer for all waiting slots: see #armFallback. */
  #fallbackTimer: TimerHandle | undefined;
  #leaderId: string | undefined;
  #knownCommitIndex = -1;
  #catchUpTimer: TimerHandle | undefined;
  #transfer: Transfer | undefined;
  #lastHeartbeatAt: number | undefined;
  #lastProbeAt = Number.NEGATIVE_INFINITY;

  constructor(host: LeaderModeHost) {
    this.#host = host;
    this.actor = host.start(
      'leader',
      createActor(leaderMachine, {
        input: {
          group: host.group,
          nodeId: host.nodeId,
          membership: host.membership(),
          minRound: host.minRound(),
          firstUnchosen: host.firstUnknownSlot(),
          seed: host.seed * 104_729 + 1,
          rules: host.rules,
          ...(host.timing === undefined ? {} : { timing: host.timing }),
          ...(host.maxInFlight === undefined ? {} : { maxInFlight: host.maxInFlight }),
        },
      }),
    );
  }

  get leader(): string | undefined {
    return this.#leaderId;
  }

  /** Who leads at which ballot, how far the log is known chosen, and the leader's last beat. */
  view(): {
    ballot: string;
    commitIndex: number;
    lastHeartbeatMsAgo: number | null;
  } {
    const context = this.actor.getSnapshot().context as LeaderContext;
    const leading = this.#leaderId === this.#host.nodeId;
    return {
      ballot: formatBallot(leading ? context.ballot : context.leaderBallot),
      commitIndex: leading
        ? context.firstUnchosen - 1
        : Math.max(this.#knownCommitIndex, this.#host.firstUnknownSlot() - 1),
      lastHeartbeatMsAgo: leading
        ? 0
        : this.#lastHeartbeatAt === undefined
          ? null
          : Math.round(this.#host.scheduler.now() - this.#lastHeartbeatAt),
    };
  }

  submit(value: Value, done: (result: SubmitResult) => void): void {
    if (this.#leaderId !== this.#host.nodeId) {
      const leader = this.#leaderId;
      this.#host.scheduler.setTimer(0, () => done({ ok: false, leader }));
      return;
    }
    const key = valueKey(value);
    const waiting = this.#submits.get(key);
    if (waiting !== undefined) waiting.push(done);
    else {
      this.#submits.set(key, [done]);
      tell(this.actor, { type: 'propose', value });
    }
  }

  leadership(leader: string | undefined): void {
    this.#leaderId = leader;
  }

  chosen(slot: number, value: Value): void {
    if (this.#submits.size === 0) return;
    const key = valueKey(value);
    const waiting = this.#submits.get(key);
    if (waiting === undefined) return;
    this.#submits.delete(key);
    for (const done of waiting) done({ ok: true, slot });
  }

  refused(values: readonly Value[], leader: string | undefined): void {
    for (const value of values) {
      const key = valueKey(value);
      const waiting = this.#submits.get(key);
      this.#submits.delete(key);
      for (const done of waiting ?? []) done({ ok: false, leader });
    }
  }

  /** A slot was delivered here: tell the leader machine, and release reads waiting for it. */
  delivered(slot: number, value: Value): void {
    // A submitted value is in the log once delivered, whoever's acks made it so.
    this.chosen(slot, value);
    tell(this.actor, {
      type: 'progress',
      firstUnchosen: slot + 1,
      membership: this.#host.membership(),
    });
    const waiters = this.#slotWaiters.get(slot);
    if (waiters !== undefined) {
      this.#slotWaiters.delete(slot);
      for (const done of waiters) done(value);
    }
  }

  /** A snapshot moved delivery past `throughSlot`: release what waited for those slots. */
  skipped(throughSlot: number): void {
    tell(this.actor, {
      type: 'progress',
      firstUnchosen: throughSlot + 1,
      membership: this.#host.membership(),
    });
    for (const [slot, waiters] of this.#slotWaiters) {
      if (slot > throughSlot) continue;
      this.#slotWaiters.delete(slot);
      // The value of a slot inside a snapshot is unknown here; its readers only need it settled.
      for (const done of waiters) done(new Uint8Array(0));
    }
  }

  /** The leader this node follows and the ballot it leads at; undefined if none, or itself. */
  followed(): { readonly id: string; readonly ballot: Ballot } | undefined {
    const id = this.#leaderId;
    if (id === undefined || id === this.#host.nodeId) return undefined;
    return { id, ballot: (this.actor.getSnapshot().context as LeaderContext).leaderBallot };
  }

  /**
   * A peer says `instance` is chosen, but this node could not check its value: the slot comes
   * from the peers' logs instead (catch-up), like any slot known chosen and not yet here.
   */
  chosenElsewhere(instance: number | string): void {
    if (typeof instance !== 'number') return;
    this.#knownCommitIndex = Math.max(this.#knownCommitIndex, instance);
    if (this.#knownCommitIndex >= this.#host.firstUnknownSlot()) this.#requestCatchUp();
  }

  /**
   * A node this one does not know as a member says the log moved on (a heartbeat or decide
   * it dropped): this node may be behind the change that made that node a member. It asks
   * its peers once, and believes only the answers of members it knows; an answer showing it
   * behind starts the usual catch-up. At most one such question per catch-up period, so
   * nobody can make a node flood its peers.
   */
  probe(): void {
    const now = this.#host.scheduler.now();
    if (this.#catchUpTimer !== undefined || now - this.#lastProbeAt < CATCH_UP_EVERY_MS) return;
    this.#lastProbeAt = now;
    this.#sendCatchUpRequest();
  }

  /** An acceptor refused this node's phase 1: it compacted through `compactedThrough`. */
  behind(compactedThrough: number): void {
    this.#knownCommitIndex = Math.max(this.#knownCommitIndex, compactedThrough);
    if (this.#knownCommitIndex >= this.#host.firstUnknownSlot()) this.#requestCatchUp();
  }

  /** A read needs `slot`: ask the peers, and fall back to the no-op proposal after a grace period. */
  awaitSlot(slot: number, done: (value: Value) => void): void {
    const known = this.#host.log().get(slot);
    if (known !== undefined || slot < this.#host.logStart()) {
      const value = known ?? new Uint8Array(0);
      this.#host.scheduler.setTimer(0, () => done(value));
      return;
    }
    const waiters = this.#slotWaiters.get(slot);
    if (waiters !== undefined) {
      waiters.push(done);
      return;
    }
    this.#slotWaiters.set(slot, [done]);
    this.#armFallback();
    this.#requestCatchUp();
  }

  /**
   * pg_paxos's fallback for slots that stay missing: a no-op proposal, which adopts any value
   * accepted there. Only for slots no leader said were chosen (those come by catch-up, or in a
   * snapshot), and a few at a time: a node far behind must not start a proposer per slot.
   */
  #armFallback(): void {
    if (this.#fallbackTimer !== undefined) return;
    this.#fallbackTimer = this.#host.scheduler.setTimer(CATCH_UP_GRACE_MS, () => {
      this.#fallbackTimer = undefined;
      if (this.#slotWaiters.size === 0) return;
      const slots = [...this.#slotWaiters.keys()]
        // Beyond the membership window the members who decide a slot are not known yet.
        .filter(
          (slot) =>
            slot > this.#knownCommitIndex &&
            slot < this.#host.firstUnknownSlot() + this.#host.membership().window,
        )
        .sort((a, b) => a - b)
        .slice(0, NOOP_FALLBACK_BATCH);
      // A chosen no-op reaches the learner like any chosen value; delivery releases the read.
      for (const slot of slots) this.#host.proposeNoop(slot, () => undefined);
      this.#armFallback();
    });
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
    if (message.fromSlot < this.#host.logStart()) {
      this.#serveSnapshot(message.snapshot, reply);
      return;
    }
    const log = this.#host.log();
    const entries: { slot: number; value: Value }[] = [];
    let bytes = 0;
    for (let slot = message.fromSlot; entries.length < message.maxEntries; slot++) {
      const value = log.get(slot);
      if (value === undefined || (entries.length > 0 && bytes + value.length > CATCH_UP_BYTES))
        break;
      bytes += value.length;
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

  /** The slots asked for are compacted away here: send a piece of the snapshot instead. */
  #serveSnapshot(
    wanted: { readonly throughSlot: number; readonly offset: number } | undefined,
    reply: string,
  ): void {
    const snapshot = this.#host.latestSnapshot();
    if (snapshot === undefined) return;
    // Mid-transfer of another snapshot (another peer's, or an older one of ours): not ours to continue.
    if (wanted !== undefined && wanted.throughSlot !== snapshot.throughSlot) return;
    const offset = wanted?.offset ?? 0;
    if (offset >= snapshot.bytes.length && snapshot.bytes.length > 0) return;
    const { group, nodeId } = this.#host;
    this.#host.publish(reply, {
      type: 'catchupResponse',
      group,
      from: nodeId,
      entries: [],
      commitIndex: this.#host.firstUnknownSlot() - 1,
      snapshot: {
        throughSlot: snapshot.throughSlot,
        offset,
        total: snapshot.bytes.length,
        bytes: snapshot.bytes.subarray(
          offset,
          offset + (this.#host.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES),
        ),
      },
    });
  }

  caughtUp(message: PeerMessage): void {
    if (message.type !== 'catchupResponse') return;
    this.#knownCommitIndex = Math.max(this.#knownCommitIndex, message.commitIndex);
    if (message.snapshot !== undefined) this.#receiveChunk(message.snapshot);
    for (const { slot, value } of message.entries) this.#host.learn(slot, value);
  }

  #receiveChunk(chunk: SnapshotChunk): void {
    if (chunk.throughSlot < this.#host.firstUnknownSlot()) return;
    let transfer = this.#transfer;
    if (transfer === undefined || transfer.throughSlot !== chunk.throughSlot) {
      if (chunk.offset !== 0 || (transfer !== undefined && transfer.idleRounds === 0)) return;
      transfer = {
        throughSlot: chunk.throughSlot,
        total: chunk.total,
        parts: [],
        received: 0,
        idleRounds: 0,
      };
      this.#transfer = transfer;
    }
    if (chunk.offset !== transfer.received || chunk.total !== transfer.total) return;
    transfer.parts.push(chunk.bytes);
    transfer.received += chunk.bytes.length;
    transfer.idleRounds = 0;
    if (transfer.received < transfer.total) {
      this.#sendCatchUpRequest();
      return;
    }
    this.#transfer = undefined;
    this.#host.installSnapshot({
      throughSlot: transfer.throughSlot,
      bytes: Buffer.concat(transfer.parts),
    });
    // Entries after the snapshot come next (or another snapshot, if the peers moved on).
    if (this.#knownCommitIndex >= this.#host.firstUnknownSlot()) this.#sendCatchUpRequest();
  }

  #requestCatchUp(): void {
    if (this.#catchUpTimer !== undefined) return;
    this.#sendCatchUpRequest();
    // Ask again shortly while something is still missing (requests and answers can be lost).
    this.#catchUpTimer = this.#host.scheduler.setTimer(CATCH_UP_EVERY_MS, () => {
      this.#catchUpTimer = undefined;
      const transfer = this.#transfer;
      if (transfer !== undefined && ++transfer.idleRounds >= TRANSFER_STALL_ROUNDS)
        this.#transfer = undefined; // its peer went away or moved on: start over with anyone's
      if (
        this.#slotWaiters.size > 0 ||
        this.#knownCommitIndex >= this.#host.firstUnknownSlot() ||
        this.#transfer !== undefined
      )
        this.#requestCatchUp();
    });
  }

  #sendCatchUpRequest(): void {
    const { group, nodeId, subjects } = this.#host;
    const transfer = this.#transfer;
    this.#host.publish(subjects.catchup, {
      type: 'catchupRequest',
      group,
      from: nodeId,
      fromSlot: this.#host.firstUnknownSlot(),
      maxEntries: CATCH_UP_BATCH,
      ...(transfer === undefined
        ? {}
        : { snapshot: { throughSlot: transfer.throughSlot, offset: transfer.received } }),
    });
  }

  stop(): void {
    this.#catchUpTimer?.cancel();
    this.#fallbackTimer?.cancel();
    this.actor.stop();
  }
}
