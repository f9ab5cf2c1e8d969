import { sameBytes } from '@synod/actors';
import {
  type Ballot,
  MAX_ROUND,
  type Membership,
  type PeerMessage,
  type Value,
} from '@synod/protocol';

/**
 * How far above the highest round a node has seen a peer's ballot may be. Rounds grow by one
 * per election attempt: a node cut off from its group and campaigning every half second needs
 * 68 years to get this far ahead, while one forged message with round 2^48 can no longer
 * promise every acceptor away for good (MAX_ROUND bounds the round itself).
 */
export const MAX_ROUND_STEP = 2 ** 32;

/** Why a peer message was not believed. */
export type DropReason =
  /** The sender is in no member set that decides an undelivered slot, nor among the latest members. */
  | 'not-a-member'
  /** A ballot beyond MAX_ROUND_STEP above the highest round seen. */
  | 'ballot-out-of-bounds'
  /** A proposal, decision, heartbeat or ReadIndex check at a ballot that is not the sender's own. */
  | 'not-its-ballot'
  /**
   * A decide from a node this one does not follow as leader at that ballot, for a value its own
   * acceptor did not accept at that ballot: the slot is fetched from peers' logs instead.
   */
  | 'unverified-decide';

export const DROP_REASONS: readonly DropReason[] = [
  'not-a-member',
  'ballot-out-of-bounds',
  'not-its-ballot',
  'unverified-decide',
];

/** What the filter needs to know about its node. */
export interface PeerFilterView {
  readonly nodeId: string;
  /** The members as far as this node has delivered the log. */
  membership(): Membership;
  /** The first slot this node has not delivered. */
  firstUnknownSlot(): number;
  /** Leader mode: the leader this node follows and its ballot; undefined without a leader. */
  followedLeader(): { readonly id: string; readonly ballot: Ballot } | undefined;
  /** What this node's own acceptor accepted in a slot, if anything. */
  ownAccepted(slot: number): { readonly ballot: Ballot; readonly value: Value } | undefined;
  /** Whether this node runs a distinguished leader (decides are checked against it). */
  readonly leaderMode: boolean;
}

/**
 * The checks a peer message passes before any machine sees it: only members speak for the
 * group (anyone may ask what is chosen: asksOnly), each proposer only at its own ballots, no ballot absurdly far ahead, and a decide is
 * believed from the leader this node follows or when its own acceptor holds the same vote.
 * Without NATS authentication a sender can still claim a member's id: these checks stop
 * non-members, stale and removed nodes, and nonsense, not an impostor (see the README's
 * threat model). Pure: no I/O.
 */
export class PeerFilter {
  readonly #view: PeerFilterView;
  /** The highest ballot round believed so far (this node's own rounds included). */
  #highestRound: number;
  /** Members speaking for undelivered slots, recomputed when the membership or delivery moves. */
  #speakers: { membership: Membership; from: number; ids: ReadonlySet<string> } | undefined;
  readonly dropped: Record<DropReason, number> = {
    'not-a-member': 0,
    'ballot-out-of-bounds': 0,
    'not-its-ballot': 0,
    'unverified-decide': 0,
  };

  constructor(view: PeerFilterView, highestRound: number) {
    this.#view = view;
    this.#highestRound = highestRound;
  }

  /** The highest ballot round believed so far. */
  get highestRound(): number {
    return this.#highestRound;
  }

  /** This node reserved or saw a round by other means (its own elections, its acceptor). */
  sawRound(round: number): void {
    if (round > this.#highestRound) this.#highestRound = round;
  }

  /** Undefined when the message may go on to the machines; otherwise why not (counted). */
  check(message: PeerMessage): DropReason | undefined {
    const reason = this.#reason(message);
    if (reason !== undefined) this.dropped[reason]++;
    else for (const round of rounds(message)) this.sawRound(round);
    return reason;
  }

  #reason(m: PeerMessage): DropReason | undefined {
    if (m.from !== this.#view.nodeId && !asksOnly(m) && !this.speaks(m.from, instanceOf(m)))
      return 'not-a-member';
    const limit = Math.min(MAX_ROUND, this.#highestRound + MAX_ROUND_STEP);
    for (const round of rounds(m)) if (round > limit) return 'ballot-out-of-bounds';
    if (ownsBallot(m) && m.ballot.nodeId !== m.from) return 'not-its-ballot';
    if (m.type === 'decide' && this.#view.leaderMode && typeof m.instance === 'number') {
      const leader = this.#view.followedLeader();
      const fromLeader =
        leader !== undefined &&
        leader.id === m.from &&
        leader.ballot.round === m.ballot.round &&
        leader.ballot.nodeId === m.ballot.nodeId;
      if (!fromLeader && !this.#ownVote(m.instance, m.ballot, m.value)) return 'unverified-decide';
    }
    return undefined;
  }

  /**
   * Whether `node` speaks for the group about `instance` as far as this node knows: a member of
   * the latest members or of any member set deciding an undelivered slot, and for a
   * paxos(key, value) register also a founding member (registers are theirs, whatever changes).
   */
  speaks(node: string, instance?: number | string): boolean {
    const membership = this.#view.membership();
    if (typeof instance === 'string' && membership.genesis.includes(node)) return true;
    const from = this.#view.firstUnknownSlot();
    const cached = this.#speakers;
    if (cached === undefined || cached.membership !== membership || cached.from !== from) {
      const ids = new Set<string>(membership.latest);
      for (const config of membership.configsFrom(from)) for (const id of config) ids.add(id);
      this.#speakers = { membership, from, ids };
    }
    return this.#speakers!.ids.has(node);
  }

  #ownVote(slot: number, ballot: Ballot, value: Value): boolean {
    const own = this.#view.ownAccepted(slot);
    return (
      own !== undefined &&
      own.ballot.round === ballot.round &&
      own.ballot.nodeId === ballot.nodeId &&
      sameBytes(own.value, value)
    );
  }
}

/**
 * Requests for what this node knows chosen or accepted: answering them changes nothing here,
 * and a node must catch up and read before it is a member (a joining node) or after it is
 * no longer one (a removed node serving a read). Who may read is NATS's to decide.
 */
function asksOnly(m: PeerMessage): boolean {
  return m.type === 'catchupRequest' || m.type === 'highestAcceptedQuery';
}

/** The messages whose ballot is the sender's own proposal number. */
function ownsBallot(
  m: PeerMessage,
): m is Extract<
  PeerMessage,
  { type: 'prepare' | 'prepareLog' | 'accept' | 'decide' | 'heartbeat' | 'readIndexCheck' }
> {
  return (
    m.type === 'prepare' ||
    m.type === 'prepareLog' ||
    m.type === 'accept' ||
    m.type === 'decide' ||
    m.type === 'heartbeat' ||
    m.type === 'readIndexCheck'
  );
}

function rounds(m: PeerMessage): number[] {
  switch (m.type) {
    case 'prepare':
    case 'prepareLog':
    case 'accept':
    case 'decide':
    case 'heartbeat':
    case 'readIndexCheck':
      return [m.ballot.round];
    case 'promise':
    case 'accepted':
    case 'readIndexAnswer':
      return [m.ballot.round, m.promised.round];
    default:
      return [];
  }
}

function instanceOf(m: PeerMessage): number | string | undefined {
  return 'instance' in m ? m.instance : undefined;
}
