import type { PeerMessage, SnapshotChunk, Value } from '@synod/protocol';
import type { TimerHandle } from '@synod/transport';
import type { LeaderModeHost } from './leader-mode-host.js';
import type { HostLimits } from './limits.js';

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
/**
 * A slot said to be chosen that no peer hands over within this long, while catch-up brings
 * nothing else either, gets the no-op proposal too: the word that it is chosen may be false
 * (a forged decide or heartbeat from a sender claiming a member's id; NATS without
 * authentication cannot tell), and a proposal in a slot that is chosen finds the chosen value,
 * so it is always safe. Not while catch-up makes progress: a node far behind would otherwise
 * depose a healthy leader with proposals in slots that are on their way.
 */
const UNPROVEN_CHOSEN_MS = 1_000;
/** Most no-op proposals a node starts per grace period for slots its reads wait for. */
const NOOP_FALLBACK_BATCH = 16;
const TRANSFER_STALL_ROUNDS = 5;

/**
 * Keeps a follower's log caught up from its peers' logs, and serves their requests: slots
 * known chosen (a heartbeat's commit index, a decide it could not check) come by catch-up,
 * and a peer compacted past them sends its snapshot in pieces. A slot a read waits for is
 * first asked of peers; only if it stays unknown does the node run pg_paxos's no-op
 * proposal, which may depose the leader but never loses a chosen value.
 */
export class CatchUp {
  readonly #host: LeaderModeHost;
  readonly #limits: HostLimits;
  /** Reads waiting for a slot to be delivered here, by slot, and when the first began to. */
  readonly #slotWaiters = new Map<
    number,
    { readonly since: number; readonly waiters: ((value: Value) => void)[] }
  >();
  /** When catch-up last brought something: a slot delivered, or a piece of a snapshot. */
  #lastProgressAt = Number.NEGATIVE_INFINITY;
  #waiterCount = 0;
  /** One timer for all waiting slots: see #armFallback. */
  #fallbackTimer: TimerHandle | undefined;
  #knownCommitIndex = -1;
  #catchUpTimer: TimerHandle | undefined;
  #transfer: Transfer | undefined;
  #lastProbeAt = Number.NEGATIVE_INFINITY;

  constructor(host: LeaderModeHost) {
    this.#host = host;
    this.#limits = host.limits;
  }

  /** The highest slot this node has heard is chosen. */
  get knownCommitIndex(): number {
    return this.#knownCommitIndex;
  }

  /** Reads waiting for slots, summed over slots (at most HostLimits.maxSlotWaiters). */
  get slotWaiters(): number {
    return this.#waiterCount;
  }

  /** A peer says the log is chosen through `slot`: fetch what is missing here. */
  heard(slot: number): void {
    this.#knownCommitIndex = Math.max(this.#knownCommitIndex, slot);
    if (this.#knownCommitIndex >= this.#host.firstUnknownSlot()) this.#requestCatchUp();
  }

  /** A slot was delivered here: release the reads waiting for it. */
  delivered(slot: number, value: Value): void {
    this.#lastProgressAt = this.#host.scheduler.now();
    const waiting = this.#slotWaiters.get(slot);
    if (waiting === undefined) return;
    this.#slotWaiters.delete(slot);
    this.#waiterCount -= waiting.waiters.length;
    for (const done of waiting.waiters) done(value);
  }

  /** A snapshot moved delivery past `throughSlot`: release what waited for those slots. */
  skipped(throughSlot: number): void {
    this.#lastProgressAt = this.#host.scheduler.now();
    for (const [slot, { waiters }] of this.#slotWaiters) {
      if (slot > throughSlot) continue;
      this.#slotWaiters.delete(slot);
      this.#waiterCount -= waiters.length;
      // The value of a slot inside a snapshot is unknown here; its readers only need it settled.
      for (const done of waiters) done(new Uint8Array(0));
    }
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

  /**
   * A read needs `slot`: ask the peers, and fall back to the no-op proposal after a grace
   * period. Beyond HostLimits.maxSlotWaiters the slot is not awaited, and the read ends by its
   * own timeout.
   */
  awaitSlot(slot: number, done: (value: Value) => void): void {
    const known = this.#host.log().get(slot);
    if (known !== undefined || slot < this.#host.logStart()) {
      const value = known ?? new Uint8Array(0);
      this.#host.scheduler.setTimer(0, () => done(value));
      return;
    }
    if (this.#waiterCount >= this.#limits.maxSlotWaiters) return;
    this.#waiterCount++;
    const waiting = this.#slotWaiters.get(slot);
    if (waiting !== undefined) {
      waiting.waiters.push(done);
      return;
    }
    this.#slotWaiters.set(slot, { since: this.#host.scheduler.now(), waiters: [done] });
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
      const now = this.#host.scheduler.now();
      const stalled = now - this.#lastProgressAt >= UNPROVEN_CHOSEN_MS;
      const slots = [...this.#slotWaiters]
        // Beyond the membership window the members who decide a slot are not known yet.
        .filter(
          ([slot, { since }]) =>
            (slot > this.#knownCommitIndex || (stalled && now - since >= UNPROVEN_CHOSEN_MS)) &&
            slot < this.#host.firstUnknownSlot() + this.#host.membership().window,
        )
        .map(([slot]) => slot)
        .sort((a, b) => a - b)
        .slice(0, NOOP_FALLBACK_BATCH);
      // A chosen no-op reaches the learner like any chosen value; delivery releases the read.
      for (const slot of slots) this.#host.proposeNoop(slot, () => undefined);
      this.#armFallback();
    });
  }

  /**
   * Answers a peer's catch-up request from this node's delivered log. A request from a member
   * (`fromMember`) also says every slot before its `fromSlot` is chosen, since a node asks from
   * its first undelivered slot: a node that lost its log (restarted before any snapshot) hears
   * no heartbeat while no leader holds, and this is how it learns it is behind. Without it, a
   * peer stuck on a slot only this node's members could decide asked it in vain forever
   * (simulator seed 400029854 in leader mode).
   */
  serve(message: PeerMessage, reply: string | undefined, fromMember: boolean): void {
    if (
      message.type !== 'catchupRequest' ||
      reply === undefined ||
      message.from === this.#host.nodeId
    )
      return;
    if (fromMember && message.fromSlot > this.#host.firstUnknownSlot())
      this.heard(message.fromSlot - 1);
    if (message.fromSlot < this.#host.logStart()) {
      this.#serveSnapshot(message.snapshot, reply);
      return;
    }
    const log = this.#host.log();
    const entries: { slot: number; value: Value }[] = [];
    let bytes = 0;
    const maxEntries = Math.min(message.maxEntries, this.#limits.catchUpEntries);
    for (let slot = message.fromSlot; entries.length < maxEntries; slot++) {
      const value = log.get(slot);
      if (
        value === undefined ||
        (entries.length > 0 && bytes + value.length > this.#limits.catchUpBytes)
      )
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
        bytes: snapshot.bytes.subarray(offset, offset + this.#limits.snapshotChunkBytes),
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
    this.#lastProgressAt = this.#host.scheduler.now();
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
      maxEntries: this.#limits.catchUpEntries,
      ...(transfer === undefined
        ? {}
        : { snapshot: { throughSlot: transfer.throughSlot, offset: transfer.received } }),
    });
  }

  stop(): void {
    this.#catchUpTimer?.cancel();
    this.#fallbackTimer?.cancel();
  }
}
