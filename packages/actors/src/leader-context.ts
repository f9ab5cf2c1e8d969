import type { AcceptedEntry, Ballot, Membership, Value } from '@synod/protocol';
import type {
  Effect,
  MessageEvent,
  PersistedEvent,
  RoundFloorEvent,
  TimerEvent,
} from './effects.js';
import type { PromiseRound } from './leader-promises.js';
import type { ProtocolRules } from './rules.js';

/*
 * The distinguished leader's vocabulary: its input, events, effects and context. The
 * statechart is in leader.ts, what a follower and a candidate do in leader-candidate.ts, and
 * what a leader does in leader-leading.ts.
 */

export interface LeaderTiming {
  readonly heartbeatMs: number;
  /** A follower that hears no leader for a random time in [min, max] starts an election. */
  readonly electionMinMs: number;
  readonly electionMaxMs: number;
  /** How long a candidate waits for a majority of promises. */
  readonly phaseTimeoutMs: number;
}

/** Default most value bytes in phase 2 at once (LeaderInput.maxInFlightBytes). */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_LEADER_TIMING: LeaderTiming = {
  heartbeatMs: 50,
  electionMinMs: 150,
  electionMaxMs: 300,
  phaseTimeoutMs: 200,
};

export interface LeaderInput {
  readonly group: string;
  readonly nodeId: string;
  /**
   * The group's members over the log, as far as this node has delivered it (the host sends
   * updates with `progress`). A majority of membersAt(s) must accept slot s.
   */
  readonly membership: Membership;
  /** Above every round this node ever used (the host's persisted floor + 1). */
  readonly minRound: number;
  /** The first slot this node does not know chosen. */
  readonly firstUnknownSlot: number;
  readonly timing?: LeaderTiming;
  /** Most slots in phase 2 at once (pipelining). */
  readonly maxInFlight?: number;
  /**
   * Most value bytes in phase 2 at once (default MAX_IN_FLIGHT_BYTES); one slot may always
   * go. Large writes then queue here instead of in every socket between the nodes, where
   * heartbeats would wait behind them.
   */
  readonly maxInFlightBytes?: number;
  /** Most values waiting for a free slot; beyond it, proposals are refused as busy. */
  readonly maxQueued?: number;
  readonly seed: number;
  /** The protocol's rules (the simulator bends one to plant a bug); default PAXOS_RULES. */
  readonly rules?: ProtocolRules;
}

/** Events the host sends besides messages, timers and persistence. */
export type LeaderEvent =
  | MessageEvent
  | TimerEvent
  | PersistedEvent
  | RoundFloorEvent
  /** Put this value (a batch of commands) in the log. */
  | { readonly type: 'propose'; readonly value: Value }
  /**
   * Confirm, without a log slot, that this node still leads (ReadIndex, leader-reads.ts):
   * answered by a `leadershipChecked` effect with the same id. A new check replaces one
   * still open, which is then never answered.
   */
  | { readonly type: 'checkLeadership'; readonly id: number }
  /**
   * The host learned the log is chosen up to firstUnknownSlot - 1, and with it the membership
   * changes chosen there.
   */
  | {
      readonly type: 'progress';
      readonly firstUnknownSlot: number;
      readonly membership?: Membership;
    };

/** Why a leader could not confirm that it leads, for a linearizable read. */
export type LeadershipRefusal =
  /** This node does not lead (or stopped leading before a majority answered). */
  | 'not-leader'
  /** It leads, but not yet settled: slots phase 1 reported, or promises of new members, are missing. */
  | 'unsettled'
  /** An acceptor promised a higher ballot: this leader is deposed. */
  | 'deposed';

/** What the leader role adds to the common effects. */
export type LeaderEffect =
  | Effect
  /**
   * The answer to a checkLeadership: a majority of every member set of the undelivered slots
   * promised no higher ballot after the check began, so every write acknowledged before it is
   * at or below `readIndex`; or why not.
   */
  | {
      readonly type: 'leadershipChecked';
      readonly id: number;
      readonly readIndex?: number;
      readonly refused?: LeadershipRefusal;
      readonly leader?: string | undefined;
    }
  /** Who leads, as far as this node knows (undefined: nobody known). */
  | { readonly type: 'leadership'; readonly leader: string | undefined; readonly ballot: Ballot }
  /** Values this node cannot put in the log (not the leader, deposed, or busy): the client retries. */
  | {
      readonly type: 'refused';
      readonly values: readonly Value[];
      readonly reason: 'not-leader' | 'busy';
      readonly leader: string | undefined;
    };

interface InFlight {
  readonly value: Value;
  /** The tick its accept was last sent at: it is sent again only once it is overdue. */
  sentAt: number;
  /** The members whose majority must accept this slot. */
  readonly members: readonly string[];
  readonly acks: Set<string>;
  readonly refusals: Set<string>;
}

/** Leader: a ReadIndex round waiting for a majority of every member set to answer. */
export interface ReadCheck {
  readonly id: number;
  readonly readIndex: number;
  readonly configs: readonly (readonly string[])[];
  readonly answered: Set<string>;
}

/** Mutable, like the other machines' contexts: drive it as a live actor. */
export interface LeaderContext {
  readonly input: LeaderInput;
  readonly timing: LeaderTiming;
  readonly rules: ProtocolRules;
  membership: Membership;
  ballot: Ballot;
  highestSeen: Ballot;
  leader: string | undefined;
  leaderBallot: Ballot;
  firstUnknownSlot: number;
  /** Candidate: the answers to its prepareLog (from fromSlot). */
  phase1: PromiseRound;
  /** Leader: where phase 1 started, the next free slot, and the slots in phase 2. */
  fromSlot: number;
  nextSlot: number;
  /**
   * Leader: every acceptor known to have promised this ballot, with the first slot its
   * promise covers (its report from there on is in `recovered`). Slot s starts only once
   * these include a majority of the members that decide s: the promises of phase 1 came from
   * the members of its time, and a membership change chosen since needs its own.
   */
  promisedFrom: Map<string, number>;
  /** Leader: a prepareLog at this ballot, asking members that have not promised it yet. */
  widening: PromiseRound | undefined;
  /**
   * Leader: the value accepted at the highest ballot that any promiser reported, for each
   * slot not yet started through recoveredThrough; re-proposed as the membership window lets
   * slots start (a slot nobody reported becomes a no-op).
   */
  recovered: Map<number, AcceptedEntry>;
  recoveredThrough: number;
  inFlight: Map<number, InFlight>;
  /** The value bytes of inFlight. */
  inFlightBytes: number;
  /** Leader: the open ReadIndex round (leader-reads.ts), if any. */
  readCheck: ReadCheck | undefined;
  /** Heartbeat ticks since this node started leading. */
  ticks: number;
  queue: Value[];
  random: number;
  persistId: number;
  /** The lowest round left to use: raised when any machine of this node reserves a round. */
  minRound: number;
  /** No round is left below MAX_ROUND: this node can only follow. */
  exhausted: boolean;
}

/** Hands one effect to the statechart's enqueue: how the phase files emit. */
export type Emit = (effect: LeaderEffect) => void;
