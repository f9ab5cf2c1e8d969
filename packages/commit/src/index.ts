export {
  type CoordinatorContext,
  type CoordinatorInput,
  coordinatorMachine,
} from './coordinator.js';
export { PAPER } from './paper.js';
export { type RmContext, type RmInput, rmMachine } from './rm.js';
export {
  COMMIT_PLANTS,
  COMMIT_RULES,
  type CommitPlant,
  type CommitRules,
  commitRulesFor,
} from './rules.js';
export { Tally } from './tally.js';
export {
  type TwoPhaseContext,
  type TwoPhaseInput,
  twoPhaseCoordinatorMachine,
} from './two-phase.js';
export {
  type CommitAddress,
  type CommitEffect,
  type CommitEvent,
  type CommitMessage,
  type CommitProtocol,
  type CommitRecord,
  type CommitRequest,
  decodeVote,
  encodeVote,
  instanceOf,
  type Outcome,
  RESEND_MS,
  rmBallot,
  type Vote,
} from './types.js';
