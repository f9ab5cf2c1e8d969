import { assertNodeId } from './names.js';

/**
 * A proposal number. Ballots are totally ordered: by round, then by node id, so two
 * proposers never share a ballot (seed 001: "or equal with lower node id").
 */
export interface Ballot {
  readonly round: number;
  readonly nodeId: string;
}

/** The ballot below every real one: round 0 with the empty node id, which no node may have. */
export const ZERO_BALLOT: Ballot = Object.freeze({ round: 0, nodeId: '' });

/**
 * The highest round a ballot may have: a round per millisecond for 8,900 years, and far below
 * 2^53, so round + 1 is always exact. Decoding refuses a ballot above it: one forged round
 * near 2^53 once made every acceptor promise a ballot no proposer could ever top.
 */
export const MAX_ROUND = 2 ** 48;

export function ballot(round: number, nodeId: string): Ballot {
  if (!Number.isSafeInteger(round) || round < 0 || round > MAX_ROUND) {
    throw new RangeError(`ballot round must be an integer from 0 to 2^48, got ${round}`);
  }
  return { round, nodeId: assertNodeId(nodeId) };
}

/** Negative when a < b, zero when equal, positive when a > b. Node ids compare by code unit. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.nodeId === b.nodeId) return 0;
  return a.nodeId < b.nodeId ? -1 : 1;
}

export function ballotEquals(a: Ballot, b: Ballot): boolean {
  return a.round === b.round && a.nodeId === b.nodeId;
}

export function isHigherBallot(a: Ballot, than: Ballot): boolean {
  return compareBallots(a, than) > 0;
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b;
}

/** The ballot a proposer retries with after seeing `highestSeen`: round + 1 (seed 001). */
export function nextBallot(highestSeen: Ballot, nodeId: string): Ballot {
  if (highestSeen.round >= MAX_ROUND) throw new RangeError('ballot round space exhausted');
  return ballot(highestSeen.round + 1, nodeId);
}

export function formatBallot(b: Ballot): string {
  return `${b.round}.${b.nodeId === '' ? '-' : b.nodeId}`;
}
