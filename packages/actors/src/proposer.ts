import {
  type AcceptedEntry,
  type Ballot,
  compareBallots,
  type Instance,
  majorityOf,
  majorityUnreachable,
  maxBallot,
  type Value,
  ZERO_BALLOT,
} from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { type BackoffSettings, backoffDelay, nextRandom } from './backoff.js';
import {
  ACCEPTORS,
  chosenEffects,
  type Effect,
  type MessageEvent,
  type PersistedEvent,
  type RoundFloorEvent,
  type TimerEvent,
} from './effects.js';
import { reserveNextRound } from './rounds.js';
import { PAXOS_RULES, type ProtocolRules } from './rules.js';

export interface ProposerTiming {
  /** How long a phase waits for a majority before retrying. */
  readonly phaseTimeoutMs: number;
  readonly backoff: BackoffSettings;
}

export const DEFAULT_PROPOSER_TIMING: ProposerTiming = {
  phaseTimeoutMs: 500,
  backoff: { minMs: 5, maxMs: 200 },
};

export interface ProposerInput {
  readonly group: string;
  readonly nodeId: string;
  readonly instance: Instance;
  readonly value: Value;
  readonly acceptorCount: number;
  /**
   * The acceptors whose majority decides (leader mode: the members that govern the slot).
   * Answers from others are ignored. Without it, any `acceptorCount` acceptors count.
   */
  readonly members?: readonly string[];
  /**
   * The lowest round this proposer may use. The host keeps rounds increasing across every
   * proposal of the node and, through the persisted `round` record, across restarts, so
   * this node never uses one ballot for two values.
   */
  readonly minRound: number;
  readonly timing?: ProposerTiming;
  /** Seeds the randomized backoff. */
  readonly seed: number;
  /** The protocol's rules (the simulator bends one to plant a bug); default PAXOS_RULES. */
  readonly rules?: ProtocolRules;
}

export interface ProposerOutput {
  readonly instance: Instance;
  readonly value: Value;
  /** Whether this proposer saw the value chosen itself (false: the host told it the outcome). */
  readonly byThisProposer: boolean;
}

/** The host knows the instance's chosen value already (its learner learned it). */
export interface KnownValueEvent {
  readonly type: 'known';
  readonly value: Value;
}

export type ProposerEvent =
  | MessageEvent
  | PersistedEvent
  | TimerEvent
  | KnownValueEvent
  | RoundFloorEvent;

/** Mutable per-attempt bookkeeping: one proposer lives for one paxos(k, v) call. */
export interface ProposerContext {
  readonly input: ProposerInput;
  readonly timing: ProposerTiming;
  readonly quorum: number;
  ballot: Ballot;
  highestSeen: Ballot;
  /** Promises by acceptor, with what each reported accepted for this instance. */
  promises: Map<string, AcceptedEntry | undefined>;
  acks: Set<string>;
  refusals: Set<string>;
  proposal: Value;
  outcome: Value | undefined;
  attempt: number;
  random: number;
  persistId: number;
  /** The lowest round left to use: raised when any machine of this node reserves a round. */
  minRound: number;
  /** No round is left below MAX_ROUND: the proposer waits for the value to be known. */
  exhausted: boolean;
}

const sameBallot = (a: Ballot, b: Ballot): boolean => compareBallots(a, b) === 0;

/** Seed 001, 1b: adopt the value accepted at the highest ballot among the responders, else ours. */
function valueToPropose(context: ProposerContext): Value {
  let best: AcceptedEntry | undefined;
  for (const entry of context.promises.values()) {
    if (
      entry !== undefined &&
      (best === undefined || compareBallots(entry.ballot, best.ballot) > 0)
    )
      best = entry;
  }
  return (context.input.rules ?? PAXOS_RULES).valueToPropose(context.input.value, best);
}

/**
 * Single-decree paxos(key, value) exactly as seed 001 describes. Phase 1 at a majority; if
 * a responder accepted a value, adopt the highest-ballot one; phase 2; on refusal or no
 * majority in time, back off (randomized, growing) and retry with round = highest seen + 1.
 * Every round is persisted before its prepare is sent (`reserving`), so a restarted node
 * never reuses a ballot. Ends in `chosen` with the value every caller for the key sees.
 */
export const proposerMachine = setup({
  types: {
    input: {} as ProposerInput,
    context: {} as ProposerContext,
    events: {} as ProposerEvent,
    emitted: {} as Effect,
    output: {} as ProposerOutput,
  },
  actions: {
    raiseFloor: ({ context, event }) => {
      if (event.type === 'roundFloor')
        context.minRound = Math.max(context.minRound, event.round + 1);
    },
    reserveRound: enqueueActions(({ context, enqueue }) => {
      const persist = reserveNextRound(context);
      if (persist !== undefined) enqueue.emit(persist);
    }),
    sendPrepare: enqueueActions(({ context, enqueue }) => {
      context.promises = new Map();
      context.refusals = new Set();
      const { group, nodeId, instance } = context.input;
      enqueue.emit({
        type: 'send',
        to: ACCEPTORS,
        message: { type: 'prepare', group, from: nodeId, ballot: context.ballot, instance },
      });
      enqueue.emit({ type: 'setTimer', timer: 'phase', delayMs: context.timing.phaseTimeoutMs });
    }),
    sendAccept: enqueueActions(({ context, enqueue }) => {
      context.acks = new Set();
      context.refusals = new Set();
      context.proposal = valueToPropose(context);
      const { group, nodeId, instance } = context.input;
      const message = {
        type: 'accept',
        group,
        from: nodeId,
        ballot: context.ballot,
        instance,
        value: context.proposal,
      } as const;
      enqueue.emit({ type: 'send', to: ACCEPTORS, message });
      enqueue.emit({ type: 'setTimer', timer: 'phase', delayMs: context.timing.phaseTimeoutMs });
    }),
    countPromise: ({ context, event }) => {
      if (event.type !== 'message' || event.message.type !== 'promise') return;
      const m = event.message;
      if (!counts(context, m.from)) return;
      if (m.ok)
        context.promises.set(
          m.from,
          m.accepted.find((e) => e.instance === context.input.instance),
        );
      else refuse(context, m.from, m.promised);
    },
    countAccepted: ({ context, event }) => {
      if (event.type !== 'message' || event.message.type !== 'accepted') return;
      const m = event.message;
      if (!counts(context, m.from)) return;
      if (m.ok) context.acks.add(m.from);
      else refuse(context, m.from, m.promised);
    },
    startBackoff: enqueueActions(({ context, enqueue }) => {
      const { value, state } = nextRandom(context.random);
      context.random = state;
      context.attempt += 1;
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      enqueue.emit({
        type: 'setTimer',
        timer: 'backoff',
        delayMs: backoffDelay(context.timing.backoff, context.attempt, value),
      });
    }),
    announceChosen: enqueueActions(({ context, enqueue }) => {
      context.outcome = context.proposal;
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      const { instance } = context.input;
      for (const effect of chosenEffects(context.input, instance, context.ballot, context.proposal))
        enqueue.emit(effect);
    }),
    adoptKnown: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'known') return;
      context.outcome = event.value;
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      enqueue.emit({ type: 'cancelTimer', timer: 'backoff' });
    }),
  },
  guards: {
    isOurPersist: ({ context, event }) =>
      event.type === 'persisted' && event.id === context.persistId,
    isOurPromise: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'promise' &&
      event.message.instance === context.input.instance &&
      sameBallot(event.message.ballot, context.ballot),
    isOurAccepted: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'accepted' &&
      event.message.value === undefined &&
      event.message.instance === context.input.instance &&
      sameBallot(event.message.ballot, context.ballot),
    promisedByMajority: ({ context }) => context.promises.size >= context.quorum,
    acceptedByMajority: ({ context }) => context.acks.size >= context.quorum,
    majorityLost: ({ context }) =>
      majorityUnreachable(context.refusals.size, acceptors(context.input)),
    isPhaseTimer: ({ event }) => event.type === 'timer' && event.timer === 'phase',
    isBackoffTimer: ({ event }) => event.type === 'timer' && event.timer === 'backoff',
  },
}).createMachine({
  id: 'proposer',
  context: ({ input }) => ({
    input,
    timing: input.timing ?? DEFAULT_PROPOSER_TIMING,
    quorum: majorityOf(acceptors(input)),
    ballot: ZERO_BALLOT,
    highestSeen: ZERO_BALLOT,
    promises: new Map(),
    acks: new Set(),
    refusals: new Set(),
    proposal: input.value,
    outcome: undefined,
    attempt: 0,
    random: input.seed | 0,
    persistId: 0,
    minRound: input.minRound,
    exhausted: false,
  }),
  initial: 'reserving',
  on: {
    known: { target: '.known', actions: 'adoptKnown' },
    roundFloor: { actions: 'raiseFloor' },
  },
  states: {
    reserving: {
      entry: 'reserveRound',
      on: { persisted: { guard: 'isOurPersist', target: 'preparing' } },
      always: { guard: ({ context }) => context.exhausted, target: 'exhausted' },
    },
    // Every round is used up (only forged ballots get there): it can only learn the value.
    exhausted: {},
    preparing: {
      entry: 'sendPrepare',
      on: {
        message: {
          guard: 'isOurPromise',
          actions: 'countPromise',
        },
        timer: { guard: 'isPhaseTimer', target: 'backoff' },
      },
      always: [
        { guard: 'promisedByMajority', target: 'accepting' },
        { guard: 'majorityLost', target: 'backoff' },
      ],
    },
    accepting: {
      entry: 'sendAccept',
      on: {
        message: { guard: 'isOurAccepted', actions: 'countAccepted' },
        timer: { guard: 'isPhaseTimer', target: 'backoff' },
      },
      always: [
        { guard: 'acceptedByMajority', target: 'chosen' },
        { guard: 'majorityLost', target: 'backoff' },
      ],
    },
    backoff: {
      entry: 'startBackoff',
      on: { timer: { guard: 'isBackoffTimer', target: 'reserving' } },
    },
    chosen: { type: 'final', entry: 'announceChosen' },
    known: { type: 'final' },
  },
  output: ({ context }) => ({
    instance: context.input.instance,
    value: context.outcome ?? context.proposal,
    byThisProposer: context.outcome !== undefined && context.acks.size >= context.quorum,
  }),
});

function acceptors(input: ProposerInput): number {
  return input.members?.length ?? input.acceptorCount;
}

function counts(context: ProposerContext, from: string): boolean {
  return context.input.members === undefined || context.input.members.includes(from);
}

function refuse(context: ProposerContext, from: string, promised: Ballot): void {
  context.refusals.add(from);
  context.highestSeen = maxBallot(context.highestSeen, promised);
}
