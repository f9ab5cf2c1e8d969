import { majorityOf } from '@synod/protocol';
import { PAXOS_RULES, type ProtocolRules } from './rules.js';

/**
 * Known bugs that can be built into the machines, so the simulator can prove it catches them
 * (`npm run sim -- --plant BUG`). Each is the protocol's rules with one rule bent (rulesFor):
 * the machines and the host only ever call their rules, and production code runs PAXOS_RULES.
 */
export type PlantedBug =
  | 'reply-before-persist'
  | 'ignore-accepted'
  | 'mixed-ballot-quorum'
  // Leader mode (issue 4): a new leader that does not re-propose values reported in phase 1,
  // and a deposed leader that keeps counting refusals as acceptances.
  | 'skip-repropose'
  | 'deposed-keeps-committing'
  // Compaction that only deletes: the acceptor forgets compacted slots without refusing
  // later requests for them, so they look undecided.
  | 'compaction-forgets-slots'
  // The host does not tell the node's machines each round one of them reserves, so the
  // leader and a no-op or register proposer of one node can pick the same ballot.
  | 'no-round-floor'
  // Quorums of the right size from any acceptors, members or not: a group whose membership
  // changed can choose two values in one slot.
  | 'ignore-membership'
  // A leader starts slots that members who never promised its ballot decide (the members of a
  // change chosen after its phase 1): a lower ballot those members did promise can choose
  // another value in the same slot (simulator seed 931669 in leader mode).
  | 'unprepared-members'
  // A leader pipelines past the membership window: it starts slots whose members it cannot
  // know yet, and a quorum of the old members can choose what the new ones never see.
  | 'no-membership-window'
  // The host believes every well-formed peer message: a sender that is no member can decide
  // values, promise acceptors away with a huge ballot, or break a learner with forged votes.
  | 'trust-any-peer'
  // A client is answered when its write is chosen instead of applied: a slot below may still
  // be open, and the client's next write chosen there overtakes the acknowledged one, which
  // is then skipped as stale (simulator seed 211814180 in leader mode). Built into the
  // simulator's clients, which stand for the node runtime's answer path.
  | 'ack-when-chosen'
  // A leader serves linearizable reads on its own word, without asking the acceptors whether
  // it still leads (what a lease does when clocks drift): a deposed leader cut off from the
  // group answers reads from a state that misses acknowledged writes.
  | 'deposed-leader-reads'
  // A new leader serves reads without a log slot before it delivered the slots its phase 1
  // found: a write the old leader acknowledged there is missing from the read.
  | 'unsettled-leader-reads';

export const PLANTED_BUGS: readonly PlantedBug[] = [
  'reply-before-persist',
  'ignore-accepted',
  'mixed-ballot-quorum',
  'trust-any-peer',
];

/** The bugs specific to the distinguished-leader mode. */
export const LEADER_PLANTED_BUGS: readonly PlantedBug[] = [
  'skip-repropose',
  'deposed-keeps-committing',
  'compaction-forgets-slots',
  'no-round-floor',
  'ignore-membership',
  'unprepared-members',
  'no-membership-window',
  'ack-when-chosen',
  'deposed-leader-reads',
  'unsettled-leader-reads',
];

/** A quorum of the right size from any acceptors, members or not. */
const anyMajoritySize = (voters: ReadonlySet<string>, members: readonly string[]): boolean =>
  voters.size >= majorityOf(members.length);

/** Each planted bug as the one rule it bends. */
const BENT_RULES: Readonly<Record<PlantedBug, Partial<ProtocolRules>>> = {
  'reply-before-persist': { holdsAnswers: () => false },
  'ignore-accepted': { valueToPropose: (own) => own },
  'mixed-ballot-quorum': {
    voteKey: () => 'any',
    addVote: (votes, value) => ({ value, voters: votes.voters }),
  },
  'skip-repropose': { reported: () => [] },
  'deposed-keeps-committing': { countsAsAck: () => true, deposes: () => false },
  'compaction-forgets-slots': { compactionFloor: (floor) => floor },
  'no-round-floor': { shareRound: () => undefined },
  'ignore-membership': { isQuorum: anyMajoritySize, slotPrepared: anyMajoritySize },
  'unprepared-members': { slotPrepared: () => true },
  'no-membership-window': { withinWindow: () => true },
  'trust-any-peer': { peerVerdict: () => undefined },
  // Built into the simulator's clients (they stand for the node's answer path): no rule here.
  'ack-when-chosen': {},
  'deposed-leader-reads': { confirmsLeadership: () => true },
  'unsettled-leader-reads': { servesReads: () => true },
};

/** The protocol's rules with `plant` built in (none: the rules as they are meant to run). */
export function rulesFor(plant: PlantedBug | undefined): ProtocolRules {
  return plant === undefined ? PAXOS_RULES : { ...PAXOS_RULES, ...BENT_RULES[plant] };
}
