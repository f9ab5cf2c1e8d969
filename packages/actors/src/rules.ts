import {
  type AcceptedEntry,
  type Ballot,
  compareBallots,
  isMajorityOf,
  type Value,
} from '@synod/protocol';
import { sameBytes } from './bytes.js';

/** One ballot's votes for one instance, as a learner counts them. */
export interface Votes {
  readonly value: Value;
  readonly voters: Set<string>;
}

/**
 * The rules of the protocol that a planted bug bends, as one injected strategy. Machines and
 * the host call these instead of branching on a bug's name: production code runs PAXOS_RULES,
 * and the simulator hands in `rulesFor(plant)` (plants.ts) to prove that its checkers catch
 * each rule broken. Every rule here is one the simulator has a planted bug for; a rule no
 * plant bends stays plain code in its machine.
 */
export interface ProtocolRules {
  /** Whether `voters` include a majority of `members` (who decide a slot). */
  isQuorum(voters: ReadonlySet<string>, members: readonly string[]): boolean;
  /**
   * Leader: whether a slot may start, given whether a majority of the members that decide it
   * promised the leader's ballot.
   */
  slotPrepared(voters: ReadonlySet<string>, members: readonly string[]): boolean;
  /** Leader: whether `slot` lies within the membership window of the first unchosen slot. */
  withinWindow(slot: number, firstUnknownSlot: number, window: number): boolean;
  /** Leader: of one promiser's phase 1 report, the entries a new leader re-proposes. */
  reported(entries: readonly AcceptedEntry[]): readonly AcceptedEntry[];
  /** Leader: whether an acceptor's answer to an accept counts towards choosing the slot. */
  countsAsAck(ok: boolean): boolean;
  /** Leader: whether a ballot seen from another node deposes this leader's own. */
  deposes(seen: Ballot, own: Ballot): boolean;
  /**
   * Leader, ReadIndex: whether the acceptors that answered a check (none promised a higher
   * ballot) include a majority of every member set of the undelivered slots.
   */
  confirmsLeadership(
    answered: ReadonlySet<string>,
    configs: readonly (readonly string[])[],
  ): boolean;
  /**
   * Leader, ReadIndex: whether a leader may serve reads without a log slot, given whether it
   * is settled (has delivered what its phase 1 found, and holds the promises of a majority of
   * every member set of its undelivered slots).
   */
  servesReads(settled: boolean): boolean;
  /** Proposer, phase 1b: the value to propose, given the highest accepted one reported. */
  valueToPropose(own: Value, highestAccepted: AcceptedEntry | undefined): Value;
  /** Acceptor: whether its answers wait while records they depend on are not yet durable. */
  holdsAnswers(notYetDurable: boolean): boolean;
  /**
   * Acceptor: the slot through which requests are refused as compacted, after a compaction
   * record through `through` (refusing them is what keeps compacted slots decided).
   */
  compactionFloor(floor: number, through: number): number;
  /** Learner: the key votes are tallied under, given the vote's ballot (one tally per ballot). */
  voteKey(ballot: string): string;
  /**
   * Learner: the tally after a vote for `value` is added to `votes`, or undefined when the
   * one ballot carries two values (a broken invariant).
   */
  addVote(votes: Votes, value: Value): Votes | undefined;
  /** Host: what a peer message's check found wrong with it (undefined: believe it). */
  peerVerdict<Reason>(verdict: () => Reason | undefined): Reason | undefined;
  /** Host: tells the node's other machines of a round one of them reserved. */
  shareRound(tellMachines: () => void): void;
}

/** The protocol as it is meant to run. */
export const PAXOS_RULES: ProtocolRules = {
  isQuorum: isMajorityOf,
  slotPrepared: isMajorityOf,
  withinWindow: (slot, firstUnknownSlot, window) => slot < firstUnknownSlot + window,
  reported: (entries) => entries,
  countsAsAck: (ok) => ok,
  deposes: (seen, own) => compareBallots(seen, own) > 0,
  confirmsLeadership: (answered, configs) =>
    configs.every((members) => isMajorityOf(answered, members)),
  servesReads: (settled) => settled,
  valueToPropose: (own, highestAccepted) => highestAccepted?.value ?? own,
  holdsAnswers: (notYetDurable) => notYetDurable,
  compactionFloor: (_floor, through) => through,
  voteKey: (ballot) => ballot,
  addVote: (votes, value) => (sameBytes(votes.value, value) ? votes : undefined),
  peerVerdict: (verdict) => verdict(),
  shareRound: (tellMachines) => tellMachines(),
};
