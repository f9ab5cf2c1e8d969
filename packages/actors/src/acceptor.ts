import type { PeerMessage, StoreRecord } from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { AcceptorState } from './acceptor-state.js';
import { type Effect, LEARNERS, type MessageEvent, type PersistedEvent } from './effects.js';
import { PAXOS_RULES, type ProtocolRules } from './rules.js';

export interface AcceptorInput {
  readonly group: string;
  readonly nodeId: string;
  /** Durable records found at start, in write order (empty for a new acceptor). */
  readonly recovered?: readonly StoreRecord[];
  /** The protocol's rules (the simulator bends one to plant a bug); default PAXOS_RULES. */
  readonly rules?: ProtocolRules;
  /**
   * Send learners a copy of every acceptance, with its value (default true): how learners
   * learn without a leader (pg_paxos). With a distinguished leader, learners learn from its
   * decide messages and catch-up instead, which saves every node three decodes of each value.
   */
  readonly copyToLearners?: boolean;
}

/**
 * Mutable on purpose: the acceptor's maps grow with the log, and copying them on every
 * event would make each step O(log size). Drive this machine as a live actor (the node and
 * the simulator do), not through the pure transition() function.
 */
export interface AcceptorContext {
  readonly group: string;
  readonly nodeId: string;
  readonly state: AcceptorState;
  readonly rules: ProtocolRules;
  readonly copyToLearners: boolean;
  /** Id of the last persist effect emitted. */
  lastPersistId: number;
  /** Id of the last persist effect the host reported durable. */
  durableId: number;
  /** Answers waiting for their records (and every record before them) to be durable. */
  readonly held: { readonly waitFor: number; readonly effects: readonly Effect[] }[];
}

/** The host compacted its state machine's snapshot through this slot (see AcceptorState.compact). */
export interface CompactEvent {
  readonly type: 'compact';
  readonly throughSlot: number;
}

export type AcceptorEvent = MessageEvent | PersistedEvent | CompactEvent;

/** Decides one request: the records it makes durable and the messages it sends once they are. */
function decide(
  context: AcceptorContext,
  event: MessageEvent,
): { records: readonly StoreRecord[]; sends: Effect[] } {
  const m = event.message;
  const envelope = { group: context.group, from: context.nodeId };
  const reply = (message: PeerMessage): Effect[] =>
    event.replyTo === undefined
      ? []
      : [{ type: 'send', to: { kind: 'reply', to: event.replyTo }, message }];
  switch (m.type) {
    case 'prepare': {
      const { records, answer } = context.state.prepare(m.ballot, m.instance);
      return {
        records,
        sends: reply({
          type: 'promise',
          ...envelope,
          ballot: m.ballot,
          instance: m.instance,
          ...answer,
        }),
      };
    }
    case 'prepareLog': {
      const { records, answer } = context.state.prepareLog(m.ballot, m.fromSlot);
      return {
        records,
        sends: reply({ type: 'promise', ...envelope, ballot: m.ballot, ...answer }),
      };
    }
    case 'accept': {
      const { records, answer } = context.state.accept(m.ballot, m.instance, m.value);
      const accepted = {
        type: 'accepted',
        ...envelope,
        ballot: m.ballot,
        instance: m.instance,
        ...answer,
      } as const;
      const sends = reply(accepted);
      // Learners hear of every acceptance, with its value, so they can learn without the proposer.
      if (answer.ok && context.copyToLearners)
        sends.push({ type: 'send', to: LEARNERS, message: { ...accepted, value: m.value } });
      return { records, sends };
    }
    case 'highestAcceptedQuery':
      return {
        records: [],
        sends: reply({
          type: 'highestAcceptedAnswer',
          ...envelope,
          requestId: m.requestId,
          slot: context.state.highestAcceptedSlot,
        }),
      };
    case 'readIndexCheck':
      return {
        records: [],
        sends: reply({
          type: 'readIndexAnswer',
          ...envelope,
          ballot: m.ballot,
          requestId: m.requestId,
          promised: context.state.highestSlotBallot,
        }),
      };
    default:
      return { records: [], sends: [] };
  }
}

/**
 * The acceptor of one group on one node (seed 001). It promises a ballot at least as high as
 * any it promised, accepts at a ballot at least as high as its promise, and reports what it
 * accepted. No answer leaves before every record it emitted so far is durable: `syncing`
 * is the state in which answers wait for the host's `persisted` event.
 */
export const acceptorMachine = setup({
  types: {
    input: {} as AcceptorInput,
    context: {} as AcceptorContext,
    events: {} as AcceptorEvent,
    emitted: {} as Effect,
  },
  actions: {
    handleMessage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'message' || event.message.group !== context.group) return;
      const { records, sends } = decide(context, event);
      if (records.length > 0) {
        context.lastPersistId += 1;
        enqueue.emit({ type: 'persist', id: context.lastPersistId, records });
      }
      const mustWait = context.rules.holdsAnswers(context.lastPersistId > context.durableId);
      if (mustWait) context.held.push({ waitFor: context.lastPersistId, effects: sends });
      else for (const effect of sends) enqueue.emit(effect);
    }),
    compact: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'compact') return;
      const records = context.state.compact(event.throughSlot);
      if (records.length === 0) return;
      context.lastPersistId += 1;
      enqueue.emit({ type: 'persist', id: context.lastPersistId, records });
    }),
    releaseDurable: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'persisted') return;
      context.durableId = Math.max(context.durableId, event.id);
      while (context.held.length > 0 && context.held[0]!.waitFor <= context.durableId) {
        for (const effect of context.held.shift()!.effects) enqueue.emit(effect);
      }
    }),
  },
  guards: {
    allDurable: ({ context }) => context.durableId >= context.lastPersistId,
    somethingPending: ({ context }) => context.durableId < context.lastPersistId,
  },
}).createMachine({
  id: 'acceptor',
  context: ({ input }) => ({
    group: input.group,
    nodeId: input.nodeId,
    state: AcceptorState.recover(input.recovered ?? [], input.rules ?? PAXOS_RULES),
    rules: input.rules ?? PAXOS_RULES,
    copyToLearners: input.copyToLearners ?? true,
    lastPersistId: 0,
    durableId: 0,
    held: [],
  }),
  initial: 'ready',
  on: {
    message: { actions: 'handleMessage' },
    persisted: { actions: 'releaseDurable' },
    compact: { actions: 'compact' },
  },
  states: {
    ready: { always: { guard: 'somethingPending', target: 'syncing' } },
    syncing: { always: { guard: 'allDurable', target: 'ready' } },
  },
});
