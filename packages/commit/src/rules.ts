import type { Outcome, Vote } from './types.js';

/**
 * The rules of the commit protocols that a planted bug bends (as @synod/actors' ProtocolRules
 * does for Paxos): the machines call these, production runs COMMIT_RULES, and the simulator's
 * commit mode proves it catches each rule broken (commitRulesFor).
 */
export interface CommitRules {
  /**
   * RM: what it may conclude, given whether its own instance chose `prepared` and the global
   * commit condition over every instance it knows of (undefined: not yet).
   */
  rmConcludes(ownChosenPrepared: boolean, outcome: Outcome | undefined): Outcome | undefined;
  /** Coordinator, phase 1 found no vote accepted in an RM's instance: the vote it proposes. */
  freeVote(): Vote;
}

export const COMMIT_RULES: CommitRules = {
  rmConcludes: (_own, outcome) => outcome,
  freeVote: () => 'aborted',
};

export type CommitPlant =
  /** An RM commits once its own vote is chosen, without the other RMs' votes. */
  | 'rm-commits-on-own-vote'
  /** A coordinator taking over proposes `prepared` for an RM it has not heard from. */
  | 'coordinator-proposes-prepared';

export const COMMIT_PLANTS: readonly CommitPlant[] = [
  'rm-commits-on-own-vote',
  'coordinator-proposes-prepared',
];

const BENT: Readonly<Record<CommitPlant, Partial<CommitRules>>> = {
  'rm-commits-on-own-vote': {
    rmConcludes: (own, outcome) => outcome ?? (own ? 'committed' : undefined),
  },
  'coordinator-proposes-prepared': { freeVote: () => 'prepared' },
};

export function commitRulesFor(plant: CommitPlant | undefined): CommitRules {
  return plant === undefined ? COMMIT_RULES : { ...COMMIT_RULES, ...BENT[plant] };
}
