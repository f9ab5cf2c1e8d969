/**
 * The host's limits: what grows with clients, reads and lagging peers, and the sizes it moves
 * state in. Each has a default here and may be lowered per host (GroupHostOptions.limits,
 * checked by resolveHostLimits); the relations between them are checked there too.
 */
export interface HostLimits {
  /**
   * Most distinct values waiting for their slot on a leader (submit). Beyond it, submit
   * answers at once as the leader machine does when its queue is full: not taken, ask this
   * node again. The machine's own queue (LeaderInput.maxQueued, default 10,000) usually
   * refuses first; this bound holds even when its answers are slow to come.
   */
  readonly maxWaitingSubmits: number;
  /**
   * Most reads waiting, summed over slots, for a slot to reach this node (awaitSlot). Beyond
   * it a read's slot is not awaited: the read is answered by its own timeout.
   */
  readonly maxSlotWaiters: number;
  /**
   * Most linearizable reads waiting on a leader for its ReadIndex round (LeaderReads). Beyond
   * it a read is refused as busy at once.
   */
  readonly maxLeaderReads: number;
  /**
   * paxos(key, value) registers whose chosen value this node remembers, to answer at once.
   * The oldest is forgotten beyond it: asking again runs Paxos, which finds the same value.
   */
  readonly maxKnownRegisters: number;
  /** Most log slots in one catch-up answer. */
  readonly catchUpEntries: number;
  /** Most value bytes in one catch-up answer: it must fit in one message (1 MiB by default). */
  readonly catchUpBytes: number;
  /** A snapshot moves in pieces of this size: a NATS message is bounded (1 MiB by default). */
  readonly snapshotChunkBytes: number;
}

/** A snapshot moves in pieces of this size by default (HostLimits.snapshotChunkBytes). */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

export const DEFAULT_HOST_LIMITS: HostLimits = {
  maxWaitingSubmits: 16_384,
  maxSlotWaiters: 65_536,
  maxLeaderReads: 65_536,
  maxKnownRegisters: 10_000,
  catchUpEntries: 512,
  catchUpBytes: 512 * 1024,
  snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES,
};

/** A peer message carries one catch-up answer or snapshot piece, with room for its envelope. */
const MESSAGE_PAYLOAD_BYTES = 1024 * 1024 - 64 * 1024;

/** The defaults with `overrides` applied, each checked; a RangeError names the first bad one. */
export function resolveHostLimits(overrides: Partial<HostLimits> = {}): HostLimits {
  const limits = { ...DEFAULT_HOST_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits))
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`host limit ${name} must be a positive integer, got ${value}`);
  for (const name of ['catchUpBytes', 'snapshotChunkBytes'] as const)
    if (limits[name] > MESSAGE_PAYLOAD_BYTES)
      throw new RangeError(
        `host limit ${name} (${limits[name]}) must leave room in one 1 MiB message (at most ${MESSAGE_PAYLOAD_BYTES})`,
      );
  return limits;
}
