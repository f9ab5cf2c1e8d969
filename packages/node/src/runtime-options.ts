import type { LeaderTiming } from '@synod/actors';
import type { InspectionSink } from '@synod/host';
import type { Logger } from '@synod/log';
import type { Transport } from '@synod/transport';
import type { AsyncStateMachine } from './async-machine.js';
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
