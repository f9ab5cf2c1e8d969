import type { LeaderTiming, PlantedBug, ProposerTiming } from '@synod/actors';
import type {
  Ballot,
  Instance,
  MembershipRecord,
  PeerMessage,
  StoreRecord,
  Value,
} from '@synod/protocol';
import type { Scheduler, Transport } from '@synod/transport';
import type { EventObject } from 'xstate';
import type { HostLimits } from './limits.js';
import type { DropReason } from './peer-filter.js';
import type { HostedActor } from './tell.js';

/** What a host needs to make its records durable. */
export interface Disk {
  readonly durable: readonly StoreRecord[];
  write(records: readonly StoreRecord[], done: () => void): void;
  /**
   * Replaces the durable records, atomically, with `records` (after every write already
   * queued): how compaction gives back the space of forgotten slots. Optional: a disk
   * without it only grows.
   */
  rewrite?(records: readonly StoreRecord[]): void;
}

/** A state machine's state after applying every slot through `throughSlot`. */
export interface Snapshot {
  readonly throughSlot: number;
  readonly bytes: Uint8Array;
  /**
   * The group's membership through `throughSlot` (GroupHost.membershipThrough): a node that
   * starts from the snapshot cannot read the changes from the log it replaces. Without it,
   * the members are the `founders`.
   */
  readonly membership?: MembershipRecord;
}

/**
 * How a host works with its owner's state-machine snapshots (leader mode). With them, the
 * owner can compact() the log, and a node that is behind a peer's compaction point catches
 * up by installing the peer's snapshot instead of replaying slots nobody keeps any more.
 */
export interface SnapshotHooks {
  /** The durable snapshot this node's state machine starts from, if any. */
  readonly initial?: Snapshot | undefined;
  /** The latest durable snapshot, served to peers that are behind it. */
  latest(): Snapshot | undefined;
  /**
   * A peer's snapshot arrived complete: restore the state machine from it (and keep it). After
   * this returns, delivery continues at `throughSlot + 1`.
   */
  install(snapshot: Snapshot): void;
}

/** What the host tells the outside world (the simulator's checkers, a node's metrics). */
export interface HostObserver {
  proposed?(node: string, instance: Instance, value: Value): void;
  chosen?(node: string, instance: Instance, value: Value, ballot: Ballot): void;
  learned?(node: string, instance: Instance, value: Value): void;
  delivered?(node: string, slot: number, value: Value): void;
  failed?(node: string, error: unknown): void;
  /** Leader mode: who `node` now knows leads (undefined: nobody it knows of). */
  leadership?(node: string, leader: string | undefined): void;
  /** The acceptor of `node` sent this answer (a promise, an acceptance, ...). */
  acceptorAnswered?(node: string, message: PeerMessage): void;
  /**
   * A machine of `node` (`machine` names it, unique across the node's lives) started phase 1
   * with `ballot`: no two machines may ever use one ballot.
   */
  sentPrepare?(node: string, machine: string, ballot: Ballot): void;
  /** A proposer or leader of `node` asked acceptors to accept (phase 2a). */
  sentAccept?(node: string, instance: Instance, ballot: Ballot, value: Value): void;
  /**
   * A peer message reached a machine of `node`: from the network (decoded and checked), or
   * from the node itself (`local`), which never crosses the network. For traces.
   */
  received?(node: string, message: PeerMessage, local: boolean): void;
  /** A peer message was not believed (PeerFilter) and went to no machine. */
  dropped?(node: string, message: PeerMessage, reason: DropReason): void;
  /** A timer a machine of `node` set (`machine` names it, as the inspection sink does) fired. */
  timerFired?(node: string, machine: string, timer: string): void;
}

/**
 * Watches the host's actors (XState's inspection API): told of every root actor the host
 * starts (acceptor, learner, leader, proposers, catch-ups), before it starts, with a name
 * unique on this node. It may attach `actor.system.inspect(...)` while someone looks.
 */
export interface InspectionSink {
  started(name: string, actor: HostedActor<EventObject>): void;
}

export interface GroupHostOptions {
  readonly group: string;
  readonly nodeId: string;
  /**
   * The group's founding members. In leader mode, membership changes chosen in the log
   * (encodeMembership values) change who must accept each slot; a node that joins later
   * passes the founding members too, and learns the changes from the log or a snapshot.
   */
  readonly founders: readonly string[];
  /** How many slots after its own a membership change takes effect (default MEMBERSHIP_WINDOW). */
  readonly membershipWindow?: number;
  readonly transport: Transport;
  readonly scheduler: Scheduler;
  readonly disk: Disk;
  readonly observer?: HostObserver;
  readonly timing?: ProposerTiming;
  readonly seed: number;
  readonly plant?: PlantedBug;
  /**
   * 'leaderless' (pg_paxos: every write runs full Paxos) or 'leader' (a distinguished leader
   * runs phase 1 once, then phase 2 only; writes go through submit()).
   */
  readonly mode?: 'leaderless' | 'leader';
  readonly leaderTiming?: LeaderTiming;
  /** Leader mode: most slots in phase 2 at once (pipelining). Default 64. */
  readonly maxInFlight?: number;
  /** Leader mode only: snapshots for compaction and catch-up (see SnapshotHooks). */
  readonly snapshots?: SnapshotHooks;
  /** What the host holds at most, and the sizes it moves state in (defaults: DEFAULT_HOST_LIMITS). */
  readonly limits?: Partial<HostLimits>;
  /** Told of every actor the host starts (@synod/inspector's NodeInspector). */
  readonly inspection?: InspectionSink;
}
