import { type Ballot, ballot, MAX_ROUND } from '@synod/protocol';
import type { Effect } from './effects.js';

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

/** What a machine that reserves rounds (the leader, a proposer) keeps about them. */
export interface RoundReserver {
  readonly input: { readonly nodeId: string };
  minRound: number;
  highestSeen: Ballot;
  ballot: Ballot;
  persistId: number;
  exhausted: boolean;
}

/**
 * Takes the next round as the reserver's ballot and returns the record that must be durable
 * before the ballot is used; undefined, with `exhausted` set, once no round is left.
 */
export function reserveNextRound(reserver: RoundReserver): Effect | undefined {
  const round = nextRound(reserver.minRound, reserver.highestSeen, reserver.ballot);
  if (round === undefined) {
    reserver.exhausted = true;
    return undefined;
  }
  reserver.ballot = ballot(round, reserver.input.nodeId);
  reserver.persistId += 1;
  return { type: 'persist', id: reserver.persistId, records: [{ kind: 'round', round }] };
}
