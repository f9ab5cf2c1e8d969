import type { LeaderTiming } from '@synod/actors';
import type { InspectionSink } from '@synod/host';
import type { Logger } from '@synod/log';
import type { Transport } from '@synod/transport';
import type { AsyncStateMachine } from './async-machine.js';
import { MAX_BATCH_BYTES, MAX_PENDING_BYTES, MAX_PENDING_BYTES_PER_CLIENT } from './batcher.js';
import type { DataDirLock } from './data-dir-lock.js';
import type { SnapshotPolicy } from './snapshot-keeper.js';
import type { StateMachineKind } from './state-machine.js';

// What a NodeRuntime is started with: its own file, so the parts the runtime hands the
// options to (client-requests.ts) do not import the runtime.

/** Snapshot and compaction settings: see SnapshotPolicy. */
export interface NodeRuntimeOptions extends SnapshotPolicy {
  readonly group: string;
  readonly nodeId: string;
  /**
   * The group's founding members. Membership changes in the log (`join`, `leave`) add and
   * remove members later; every node, a later one too, names the same founders here.
   */
  readonly peers: readonly string[];
  /**
   * This node is not a founding member: it may be missing from `peers`, and once running it
   * asks the group to add it (pg_paxos's paxos_join_group), until it is a member.
   */
  readonly join?: boolean;
  readonly transport: Transport;
  /**
   * The acceptor's log lives here, as <group>.acceptor.log, with the directory's lock and
   * identity (one process, one group and node per directory; see DataDir).
   */
  readonly dataDir: string;
  /** The data directory's lock, taken already by the caller (see lockDataDir); else taken here. */
  readonly dataDirLock?: DataDirLock;
  readonly logger?: Logger;
  /** A client request not answered in this time gets NO_QUORUM. Default 5,000 ms. */
  readonly requestTimeoutMs?: number;
  /** Most client writes packed into one log slot (batching). Default 256. */
  readonly maxBatch?: number;
  /** Most slots the leader keeps in phase 2 at once (pipelining). Default 64. */
  readonly maxInFlight?: number;
  /**
   * Largest client write, in request bytes (default 256 KiB). A log slot travels in one NATS
   * message (1 MiB by default): larger writes are refused with BAD_REQUEST, and a batch is
   * cut at MAX_BATCH_BYTES.
   */
  readonly maxWriteBytes?: number;
  /**
   * Most request bytes of writes a leader holds unanswered, and a follower holds forwarded
   * (default 32 MiB), and most of one client at the leader (default 8 MiB). Beyond them a
   * write is answered BUSY with a retry hint: a burst costs bounded memory.
   */
  readonly maxPendingBytes?: number;
  readonly maxPendingBytesPerClient?: number;
  readonly leaderTiming?: LeaderTiming;
  /** The state machine the log is applied to (default KV); every node of a group runs the same. */
  readonly machine?: StateMachineKind;
  /**
   * Instead of `machine`: one that lives in a database (the SQL machine of @synod/pg-applier).
   * It keeps its own applied slot, so the node takes no snapshots and never compacts; the
   * runtime closes it on stop.
   */
  readonly asyncMachine?: AsyncStateMachine;
  /**
   * With an asynchronous machine that has verify writes (SQL): the leader puts one in the log
   * this often while slots are applied, and every node compares its state's digest there with
   * the members' (consistency-check.ts). Default 600,000 ms; 0: only when a client asks.
   */
  readonly verifyEveryMs?: number;
  /** Told of every actor the node starts, so a viewer can watch them (@synod/inspector). */
  readonly inspection?: InspectionSink;
  /** Told of measurements as they happen (@synod/inspector's NodeMetrics). */
  readonly metrics?: RuntimeMetrics;
  /** More fields for this node's status answer (`synod status`), e.g. its metrics. */
  readonly statusExtra?: () => Record<string, unknown>;
  /**
   * The node stopped itself: a protocol invariant broke, or its store or snapshots failed.
   * Called once it has stopped. The CLI exits non-zero here.
   */
  readonly onFatal?: (error: unknown) => void;
}

/** Measurements the runtime reports as they happen. */
export interface RuntimeMetrics {
  /** A client write this node led was applied and answered, `ms` after the leader took it. */
  committed(ms: number): void;
  /** An append to the acceptor's store (write and fsync) took `ms`. */
  persisted(ms: number): void;
}

/**
 * Every number a node is started with: its default, and the least value it takes. The
 * runtime checks them once, here (resolveRuntimeOptions), and its parts read the resolved
 * values; the CLI only parses.
 */
export const RUNTIME_NUMBERS = {
  requestTimeoutMs: { default: 5_000, min: 1 },
  maxBatch: { default: 256, min: 1 },
  maxWriteBytes: { default: 256 * 1024, min: 1 },
  maxPendingBytes: { default: MAX_PENDING_BYTES, min: 1 },
  maxPendingBytesPerClient: { default: MAX_PENDING_BYTES_PER_CLIENT, min: 1 },
  snapshotEvery: { default: 10_000, min: 1 },
  snapshotEveryBytes: { default: 4 * 2 ** 20, min: 0 },
  retainSlots: { default: 256, min: 0 },
  retainBytes: { default: 2 * 2 ** 20, min: 0 },
  verifyEveryMs: { default: 600_000, min: 0 },
} as const;

/** The options with every number of RUNTIME_NUMBERS resolved to the value in force. */
export type ResolvedRuntimeOptions = NodeRuntimeOptions & {
  readonly [K in keyof typeof RUNTIME_NUMBERS]: number;
};

/**
 * Checks every number (a whole number at or above its least value; maxInFlight too, whose
 * default is the leader's), and the relations between them: a write must fit in one slot,
 * and one client's pending bytes within everyone's. Throws RangeError naming the option.
 */
export function resolveRuntimeOptions(options: NodeRuntimeOptions): ResolvedRuntimeOptions {
  const resolved: Record<string, number> = {};
  for (const [name, { default: fallback, min }] of Object.entries(RUNTIME_NUMBERS)) {
    const value = (options as unknown as Record<string, unknown>)[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
      throw new RangeError(
        `${name} must be a whole number of at least ${min}, got ${String(value)}`,
      );
    resolved[name] = value;
  }
  const inFlight = options.maxInFlight;
  if (inFlight !== undefined && (!Number.isSafeInteger(inFlight) || inFlight < 1))
    throw new RangeError(`maxInFlight must be a whole number of at least 1, got ${inFlight}`);
  const r = resolved as { [K in keyof typeof RUNTIME_NUMBERS]: number };
  if (r.maxWriteBytes > MAX_BATCH_BYTES)
    throw new RangeError(
      `maxWriteBytes must be at most ${MAX_BATCH_BYTES}: a write travels in one slot`,
    );
  if (r.maxPendingBytesPerClient > r.maxPendingBytes)
    throw new RangeError('maxPendingBytesPerClient must be at most maxPendingBytes');
  return { ...options, ...r };
}
