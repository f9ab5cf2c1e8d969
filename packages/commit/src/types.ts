import type { Ballot, PeerMessage } from '@synod/protocol';

/*
 * The vocabulary of a transaction's commit across resource managers (RMs): Gray and Lamport's
 * Paxos Commit, its Faster variant, and two-phase commit to compare them with. One Paxos
 * instance per RM decides that RM's vote; its key is `<txid>/<rm>`, an instance string of the
 * ordinary acceptor (@synod/actors), which needs nothing new to serve it.
 */

/** What an RM says of the transaction: it can commit (and holds its changes), or it cannot. */
export type Vote = 'prepared' | 'aborted';
export type Outcome = 'committed' | 'aborted';

/** How the outcome is reached. */
export type CommitProtocol =
  /** Paxos Commit: acceptors' phase 2b to the coordinator, which tells the RMs (phase 3). */
  | 'paxos-commit'
  /** Faster Paxos Commit: acceptors' phase 2b straight to the RMs as well; no phase 3. */
  | 'faster-paxos-commit'
  /** Two-phase commit: votes to the coordinator, which logs the outcome; it blocks without it. */
  | '2pc';

/** The Paxos instance that decides `rm`'s vote in transaction `txid`. */
export const instanceOf = (txid: string, rm: string): string => `${txid}/${rm}`;

/**
 * Ballot 0 of an RM's own instance: round 0 with the RM's id, which no coordinator uses
 * (their rounds start at 1). An RM's phase 2a needs no phase 1: no lower ballot exists.
 */
export const rmBallot = (rm: string): Ballot => ({ round: 0, nodeId: rm });

const PREPARED = Uint8Array.of(1);
const ABORTED = Uint8Array.of(0);

export const encodeVote = (vote: Vote): Uint8Array => (vote === 'prepared' ? PREPARED : ABORTED);

/** Undefined for bytes that are no vote: an instance value is checked before it is believed. */
export function decodeVote(bytes: Uint8Array): Vote | undefined {
  if (bytes.length !== 1) return undefined;
  return bytes[0] === 1 ? 'prepared' : bytes[0] === 0 ? 'aborted' : undefined;
}

/** What the commit protocols add to the acceptors' messages (prepare, promise, accept, accepted). */
export type CommitRequest =
  /** Coordinator to RMs: prepare, and vote (the paper's "prepare" message). */
  | { readonly type: 'voteRequest'; readonly txid: string; readonly from: string }
  /** Coordinator to RMs: the outcome (phase 3). */
  | {
      readonly type: 'outcome';
      readonly txid: string;
      readonly from: string;
      readonly outcome: Outcome;
    }
  /** RM to coordinators: what was decided? (an RM that missed the outcome asks again). */
  | { readonly type: 'outcomeQuery'; readonly txid: string; readonly from: string }
  /** Two-phase commit: an RM's vote, straight to the coordinator. */
  | { readonly type: 'vote'; readonly txid: string; readonly from: string; readonly vote: Vote };

export type CommitMessage = PeerMessage | CommitRequest;

/** Where a commit machine's message goes; the host maps roles to nodes. */
export type CommitAddress =
  | { readonly kind: 'acceptors' }
  | { readonly kind: 'coordinators' }
  | { readonly kind: 'rms' }
  | { readonly kind: 'node'; readonly id: string };

/** What an RM or a two-phase coordinator keeps on disk. */
export type CommitRecord =
  | { readonly kind: 'vote'; readonly vote: Vote }
  | { readonly kind: 'outcome'; readonly outcome: Outcome };

export type CommitEffect =
  | { readonly type: 'send'; readonly to: CommitAddress; readonly message: CommitMessage }
  /** Make `record` durable, then send `{ type: 'persisted', id }`. */
  | { readonly type: 'persist'; readonly id: number; readonly record: CommitRecord }
  | { readonly type: 'setTimer'; readonly timer: string; readonly delayMs: number }
  | { readonly type: 'cancelTimer'; readonly timer: string }
  /** This machine knows the outcome (an RM: durably; it then commits or rolls back). */
  | { readonly type: 'decided'; readonly outcome: Outcome };

export type CommitEvent =
  | { readonly type: 'message'; readonly message: CommitMessage }
  | { readonly type: 'persisted'; readonly id: number }
  | { readonly type: 'timer'; readonly timer: string };

/** A phase 2a for `rm`'s instance: its vote at `ballot` (ballot 0 for the RM's own). */
export function voteAccept(txid: string, from: string, ballot: Ballot, rm: string, vote: Vote) {
  return {
    type: 'send',
    to: { kind: 'acceptors' },
    message: {
      type: 'accept',
      group: txid,
      from,
      ballot,
      instance: instanceOf(txid, rm),
      value: encodeVote(vote),
    },
  } as const satisfies CommitEffect;
}

/** Hands one effect to a machine's enqueue: how the commit machines' helpers emit. */
export type CommitEmit = (effect: CommitEffect) => void;

/** A coordinator tells the outcome to every RM (phase 3) or to one that asked. */
export function tellOutcome(
  to: { readonly kind: 'rms' } | { readonly kind: 'node'; readonly id: string },
  txid: string,
  from: string,
  outcome: Outcome,
) {
  return {
    type: 'send',
    to,
    message: { type: 'outcome', txid, from, outcome },
  } as const satisfies CommitEffect;
}

/** A coordinator asks every RM to prepare and vote. */
export function askToPrepare(txid: string, from: string) {
  return {
    type: 'send',
    to: { kind: 'rms' },
    message: { type: 'voteRequest', txid, from },
  } as const satisfies CommitEffect;
}

/**
 * How often a machine that still waits sends its last message again (NATS is at-most-once):
 * the simulator's default, whose delays are a few milliseconds. The runtime waits longer
 * (CommitNode), so that a transaction slowed by a busy machine is not sent again and again.
 */
export const RESEND_MS = 40;

/** Sends its last message again after the machine's own interval (RESEND_MS by default). */
export function resendTimer(input: { readonly resendMs?: number | undefined }) {
  return {
    type: 'setTimer',
    timer: 'resend',
    delayMs: input.resendMs ?? RESEND_MS,
  } as const satisfies CommitEffect;
}
