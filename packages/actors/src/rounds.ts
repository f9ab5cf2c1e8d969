import { type Ballot, MAX_ROUND } from '@synod/protocol';

/**
 * The round a proposer reserves next: above every round this node used (minRound), above
 * every ballot it has seen, and above its own last one. Undefined once that would pass
 * MAX_ROUND: the machine then stops trying rather than reuse a ballot (one ballot must never
 * carry two values) or throw.
 */
export function nextRound(minRound: number, highestSeen: Ballot, own: Ballot): number | undefined {
  const round = Math.max(minRound, highestSeen.round + 1, own.round + 1);
  return round > MAX_ROUND ? undefined : round;
}
