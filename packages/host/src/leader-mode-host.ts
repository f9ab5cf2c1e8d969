import type { LeaderEffect, LeaderTiming, ProtocolRules } from '@synod/actors';
import type { GroupSubjects, Membership, PeerMessage, Value } from '@synod/protocol';
import type { Scheduler } from '@synod/transport';
import type { HostLimits } from './limits.js';
import type { Feedback, HostedActor } from './tell.js';

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
  /** Runs an actor's effects; `feedback` answers them. */
  start(name: string, actor: HostedActor<LeaderEffect>, feedback: Feedback): void;
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
  readonly limits: HostLimits;
  /** A complete snapshot from a peer. */
  installSnapshot(snapshot: { readonly throughSlot: number; readonly bytes: Uint8Array }): void;
}
