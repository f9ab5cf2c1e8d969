import { isMajorityOf, majorityOf, type Value } from '@synod/protocol';
import { assign, enqueueActions, setup } from 'xstate';
import { sameBytes } from './acceptor-state.js';
import { ACCEPTORS, type Effect, type MessageEvent, type TimerEvent } from './effects.js';

/** The no-op a reader proposes for a slot it cannot learn (pg_paxos's paxos(i, '')). */
export const NOOP: Value = new Uint8Array(0);

export function isNoop(value: Value): boolean {
  return value.length === 0;
}

/** The host ran paxos(slot, value) (or knew its outcome): `value` is the slot's chosen value. */
export interface ProposalDoneEvent {
  readonly type: 'proposalDone';
  readonly instance: number;
  readonly value: Value;
}

export interface AppendInput {
  /** Must be unique (carry a request id): the writer recognises its value by its bytes. */
  readonly value: Value;
  /** The first slot this node does not know chosen. */
  readonly firstUnknownSlot: number;
}

/**
 * pg_paxos's append: `while (paxos(i, v) != v) i++`. Proposes at the first slot not known
 * chosen and moves on until its own value is chosen; the output is that slot.
 */
export const appendMachine = setup({
  types: {
    input: {} as AppendInput,
    context: {} as { value: Value; slot: number },
    events: {} as ProposalDoneEvent,
    emitted: {} as Effect,
    output: {} as { slot: number },
  },
  actions: {
    propose: enqueueActions(({ context, enqueue }) =>
      enqueue.emit({ type: 'propose', instance: context.slot, value: context.value }),
    ),
    nextSlot: assign({ slot: ({ context }) => context.slot + 1 }),
  },
  guards: {
    ours: ({ context, event }) =>
      event.instance === context.slot && sameBytes(event.value, context.value),
    other: ({ context, event }) =>
      event.instance === context.slot && !sameBytes(event.value, context.value),
  },
}).createMachine({
  id: 'append',
  context: ({ input }) => ({ value: input.value, slot: input.firstUnknownSlot }),
  initial: 'proposing',
  states: {
    proposing: {
      entry: 'propose',
      on: {
        proposalDone: [
          { guard: 'ours', target: 'appended' },
          { guard: 'other', target: 'proposing', reenter: true, actions: 'nextSlot' },
        ],
      },
    },
    appended: { type: 'final' },
  },
  output: ({ context }) => ({ slot: context.slot }),
});

export interface CatchUpInput {
  readonly group: string;
  readonly nodeId: string;
  readonly acceptorCount: number;
  /**
   * Leader mode: every member set that governs a slot this node has not delivered. A majority
   * of each must answer (others' answers are ignored); replaces `acceptorCount`.
   */
  readonly quorums?: readonly (readonly string[])[];
  /** Slots at or below this are already delivered on this node. */
  readonly deliveredThrough: number;
  /** Unique among this node's reads: answers to other reads' queries must not count. */
  readonly requestId: number;
  readonly queryTimeoutMs?: number;
}

interface CatchUpContext {
  readonly input: CatchUpInput;
  readonly answers: Map<string, number>;
  target: number;
  outstanding: Set<number>;
}

/**
 * pg_paxos's consistent read: ask a majority for their highest accepted slot
 * (paxos_max_group_round), then make sure every slot up to it is known, proposing the
 * no-op for any this node has not learned (it adopts an accepted value where there is one).
 * Output: the slot the read may be served at. Any write acknowledged before the read began
 * was accepted by a majority, which intersects the majority asked.
 */
export const catchUpMachine = setup({
  types: {
    input: {} as CatchUpInput,
    context: {} as CatchUpContext,
    events: {} as MessageEvent | TimerEvent | ProposalDoneEvent,
    emitted: {} as Effect,
    output: {} as { through: number },
  },
  actions: {
    query: enqueueActions(({ context, enqueue }) => {
      const { group, nodeId } = context.input;
      enqueue.emit({
        type: 'send',
        to: ACCEPTORS,
        message: {
          type: 'highestAcceptedQuery',
          group,
          from: nodeId,
          requestId: context.input.requestId,
        },
      });
      enqueue.emit({
        type: 'setTimer',
        timer: 'query',
        delayMs: context.input.queryTimeoutMs ?? 500,
      });
    }),
    record: ({ context, event }) => {
      if (
        event.type === 'message' &&
        event.message.type === 'highestAcceptedAnswer' &&
        event.message.requestId === context.input.requestId
      ) {
        // Only the member sets asked say what may have been chosen: a write acknowledged before
        // the read was accepted by a majority of its slot's members, which meets the majority
        // asked. An acceptor outside them (this node, removed) may hold a value nobody chose in
        // a slot it cannot propose in: waiting for that slot would never end.
        const quorums = context.input.quorums;
        if (quorums !== undefined && !quorums.some((m) => m.includes(event.message.from))) return;
        context.answers.set(event.message.from, event.message.slot);
      }
    },
    proposeMissing: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'cancelTimer', timer: 'query' });
      context.target = Math.max(context.input.deliveredThrough, ...context.answers.values());
      for (let slot = context.input.deliveredThrough + 1; slot <= context.target; slot++) {
        context.outstanding.add(slot);
        enqueue.emit({ type: 'propose', instance: slot, value: NOOP });
      }
    }),
    settle: ({ context, event }) => {
      if (event.type === 'proposalDone') context.outstanding.delete(event.instance);
    },
  },
  guards: {
    majorityAnswered: ({ context }) => {
      const { quorums, acceptorCount } = context.input;
      if (quorums === undefined) return context.answers.size >= majorityOf(acceptorCount);
      const answered = new Set(context.answers.keys());
      return quorums.every((members) => isMajorityOf(answered, members));
    },
    allKnown: ({ context }) => context.outstanding.size === 0,
    isQueryTimer: ({ event }) => event.type === 'timer' && event.timer === 'query',
  },
}).createMachine({
  id: 'catchUp',
  context: ({ input }) => ({
    input,
    answers: new Map(),
    target: input.deliveredThrough,
    outstanding: new Set(),
  }),
  initial: 'querying',
  states: {
    querying: {
      entry: 'query',
      on: {
        message: { actions: 'record' },
        timer: { guard: 'isQueryTimer', target: 'querying', reenter: true },
      },
      always: { guard: 'majorityAnswered', target: 'filling' },
    },
    filling: {
      entry: 'proposeMissing',
      on: { proposalDone: { actions: 'settle' } },
      always: { guard: 'allKnown', target: 'done' },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ through: context.target }),
});
