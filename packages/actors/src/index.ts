export {
  type AcceptorContext,
  type AcceptorEvent,
  type AcceptorInput,
  acceptorMachine,
} from './acceptor.js';
export {
  type AcceptAnswer,
  AcceptorState,
  type PromiseAnswer,
  sameBytes,
  type Verdict,
} from './acceptor-state.js';
export { type BackoffSettings, backoffDelay, nextRandom } from './backoff.js';
export {
  ACCEPTORS,
  type Address,
  type Effect,
  type EffectType,
  LEARNERS,
  type MessageEvent,
  type PersistedEvent,
  type TimerEvent,
} from './effects.js';
export { leaderMachine } from './leader.js';
export {
  DEFAULT_LEADER_TIMING,
  type LeaderContext,
  type LeaderEffect,
  type LeaderEvent,
  type LeaderInput,
  type LeadershipRefusal,
  type LeaderTiming,
} from './leader-context.js';
export {
  InvariantViolation,
  type KnownEvent,
  type LearnerContext,
  type LearnerEvent,
  type LearnerInput,
  learnerMachine,
} from './learner.js';
export {
  type AppendInput,
  appendMachine,
  type CatchUpInput,
  catchUpMachine,
  isNoop,
  NOOP,
  type ProposalDoneEvent,
} from './log-ops.js';
export { LEADER_PLANTED_BUGS, PLANTED_BUGS, type PlantedBug, rulesFor } from './plants.js';
export {
  DEFAULT_PROPOSER_TIMING,
  type KnownValueEvent,
  type ProposerEvent,
  type ProposerInput,
  type ProposerOutput,
  type ProposerTiming,
  proposerMachine,
} from './proposer.js';
export { PAXOS_RULES, type ProtocolRules, type Votes } from './rules.js';
