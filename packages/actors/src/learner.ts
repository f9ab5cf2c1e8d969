import { formatBallot, type Instance, majorityOf, type Value } from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { sameBytes } from './acceptor-state.js';
import type { Effect, MessageEvent } from './effects.js';
import { PAXOS_RULES, type ProtocolRules, type Votes } from './rules.js';

export interface LearnerInput {
  readonly group: string;
  readonly nodeId: string;
  readonly acceptorCount: number;
  /** The first log slot not yet delivered (a restarted node resumes from its applied slot + 1). */
  readonly nextSlot?: number;
  /**
   * Whether acceptors' votes (accepted copies) count towards learning (default true). A
   * distinguished leader's acceptors send none: with it off, votes that arrive are ignored.
   */
  readonly learnFromVotes?: boolean;
  /** The protocol's rules (the simulator bends one to plant a bug); default PAXOS_RULES. */
  readonly rules?: ProtocolRules;
}

/** Votes for one instance, by ballot: a value is learned when one ballot gathers a majority. */
type Tally = Map<string, Votes>;

/** Mutable for O(1) steps, like the acceptor's; drive it as a live actor. */
export interface LearnerContext {
  readonly group: string;
  readonly quorum: number;
  readonly learnFromVotes: boolean;
  readonly rules: ProtocolRules;
  readonly tallies: Map<Instance, Tally>;
  readonly learned: Map<Instance, Value>;
  /** Learned slots waiting for the ones before them. */
  readonly waiting: Map<number, Value>;
  nextSlot: number;
}

/** The host tells a learner what it knows chosen from elsewhere (its own proposer, catch-up). */
export interface KnownEvent {
  readonly type: 'known';
  readonly instance: Instance;
  readonly value: Value;
}

/**
 * The host installed a snapshot of the state machine through `nextSlot - 1`: those slots
 * will never be delivered here; delivery resumes at `nextSlot`.
 */
export interface SkipEvent {
  readonly type: 'skip';
  readonly nextSlot: number;
}

export type LearnerEvent = MessageEvent | KnownEvent | SkipEvent;

/** A broken invariant: the node must stop rather than apply a second value for one slot. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

function learn(
  context: LearnerContext,
  instance: Instance,
  value: Value,
  emit: (effect: Effect) => void,
): void {
  const known = context.learned.get(instance);
  if (known !== undefined) {
    if (!sameBytes(known, value)) {
      throw new InvariantViolation(
        `learner ${context.group}: instance ${String(instance)} learned two different values`,
      );
    }
    return;
  }
  context.tallies.delete(instance);
  if (typeof instance === 'number' && instance < context.nextSlot) return; // delivered before a restart
  context.learned.set(instance, value);
  emit({ type: 'learned', instance, value });
  if (typeof instance !== 'number') return;
  context.waiting.set(instance, value);
  deliverReady(context, emit);
}

function deliverReady(context: LearnerContext, emit: (effect: Effect) => void): void {
  for (
    let next = context.waiting.get(context.nextSlot);
    next !== undefined;
    next = context.waiting.get(context.nextSlot)
  ) {
    context.waiting.delete(context.nextSlot);
    emit({ type: 'deliver', slot: context.nextSlot, value: next });
    // Delivered slots need no memory here: the state machine has them, and catch-up reads the store.
    context.learned.delete(context.nextSlot);
    context.nextSlot += 1;
  }
}

/**
 * The learner of one group on one node. It learns a value when a majority of acceptors
 * accepted it at one ballot, or from a decide message, and delivers log slots strictly in
 * order, each exactly once (`deliver`); register keys are reported as `learned`.
 */
export const learnerMachine = setup({
  types: {
    input: {} as LearnerInput,
    context: {} as LearnerContext,
    events: {} as LearnerEvent,
    emitted: {} as Effect,
  },
  actions: {
    handle: enqueueActions(({ context, event, enqueue }) => {
      const emit = (effect: Effect): void => enqueue.emit(effect);
      if (event.type === 'skip') {
        if (event.nextSlot <= context.nextSlot) return;
        context.nextSlot = event.nextSlot;
        for (const map of [context.waiting, context.learned, context.tallies] as Map<
          Instance,
          unknown
        >[]) {
          for (const key of map.keys())
            if (typeof key === 'number' && key < event.nextSlot) map.delete(key);
        }
        deliverReady(context, emit);
        return;
      }
      if (event.type === 'known') {
        learn(context, event.instance, event.value, emit);
        return;
      }
      const m = event.message;
      if (m.group !== context.group) return;
      if (m.type === 'decide') {
        learn(context, m.instance, m.value, emit);
        return;
      }
      if (m.type !== 'accepted' || !m.ok || m.value === undefined || !context.learnFromVotes)
        return;
      if (
        context.learned.has(m.instance) ||
        (typeof m.instance === 'number' && m.instance < context.nextSlot)
      )
        return;
      const tally: Tally = context.tallies.get(m.instance) ?? new Map();
      context.tallies.set(m.instance, tally);
      const key = context.rules.voteKey(formatBallot(m.ballot));
      const votes = tally.get(key) ?? { value: m.value, voters: new Set<string>() };
      const counted = context.rules.addVote(votes, m.value);
      if (counted === undefined) {
        // One ballot carries one value (a node never reuses a ballot): counting these votes
        // together could learn a value no majority accepted.
        throw new InvariantViolation(
          `learner ${context.group}: instance ${String(m.instance)} has two values accepted at ballot ${key}`,
        );
      }
      counted.voters.add(m.from);
      tally.set(key, counted);
      if (counted.voters.size >= context.quorum) learn(context, m.instance, counted.value, emit);
    }),
  },
}).createMachine({
  id: 'learner',
  context: ({ input }) => ({
    group: input.group,
    quorum: majorityOf(input.acceptorCount),
    learnFromVotes: input.learnFromVotes ?? true,
    rules: input.rules ?? PAXOS_RULES,
    tallies: new Map(),
    learned: new Map(),
    waiting: new Map(),
    nextSlot: input.nextSlot ?? 0,
  }),
  initial: 'learning',
  states: {
    learning: {
      on: {
        message: { actions: 'handle' },
        known: { actions: 'handle' },
        skip: { actions: 'handle' },
      },
    },
  },
});
