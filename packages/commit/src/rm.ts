import { majorityOf } from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { COMMIT_RULES, type CommitRules } from './rules.js';
import { Tally } from './tally.js';
import {
  type CommitEffect,
  type CommitEvent,
  type CommitProtocol,
  type CommitRecord,
  type CommitEmit as Emit,
  instanceOf,
  type Outcome,
  resendTimer,
  rmBallot,
  type Vote,
  voteAccept,
} from './types.js';

export interface RmInput {
  readonly txid: string;
  readonly rm: string;
  /** Every RM of the transaction. */
  readonly rms: readonly string[];
  /** The vote this RM casts when asked (whether its part of the transaction can commit). */
  readonly vote: Vote;
  readonly protocol: CommitProtocol;
  /** 2F+1. */
  readonly acceptorCount: number;
  /** This RM's durable records, in write order (empty for a new one). */
  readonly recovered?: readonly CommitRecord[];
  readonly rules?: CommitRules;
  /** How long it waits before sending its last message again (default RESEND_MS). */
  readonly resendMs?: number;
}

/** Mutable, as the other machines' contexts: drive it as a live actor. */
export interface RmContext {
  readonly input: RmInput;
  readonly rules: CommitRules;
  /** Its vote, once durable. */
  voted: Vote | undefined;
  /** The outcome, once durable. */
  outcome: Outcome | undefined;
  persistId: number;
  /** What is waiting for which persist. */
  pending: Map<number, CommitRecord>;
  /** Faster Paxos Commit: every instance's phase 2b, as the acceptors send them. */
  readonly tally: Tally;
  /** Acceptors that answered its own phase 2a with ok (what the planted bug trusts). */
  readonly ownAccepted: Set<string>;
}

/**
 * A resource manager: asked to prepare, it makes its vote durable, then proposes it in its own
 * Paxos instance at ballot 0 (Paxos Commit) or sends it to the coordinator (2PC). It concludes
 * only on the global outcome: from the coordinator's phase 3, or, in Faster Paxos Commit,
 * from the acceptors' phase 2b of every instance. An RM that votes aborted may roll back at
 * once: no outcome but aborted can follow. Until it knows, it sends again and asks.
 */
export const rmMachine = setup({
  types: {
    input: {} as RmInput,
    context: {} as RmContext,
    events: {} as CommitEvent,
    emitted: {} as CommitEffect,
  },
  actions: {
    start: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(resendTimer(context.input));
      if (context.outcome !== undefined)
        enqueue.emit({ type: 'decided', outcome: context.outcome });
    }),
    handle: enqueueActions(({ context, event, enqueue }) => {
      const emit = enqueue.emit;
      const { txid, rm, protocol } = context.input;
      if (event.type === 'persisted') {
        const record = context.pending.get(event.id);
        context.pending.delete(event.id);
        if (record?.kind === 'vote') {
          context.voted = record.vote;
          sendVote(context, emit);
          if (record.vote === 'aborted') conclude(context, 'aborted', emit);
        } else if (record?.kind === 'outcome' && context.outcome === undefined) {
          context.outcome = record.outcome;
          emit({ type: 'decided', outcome: record.outcome });
        }
        return;
      }
      if (event.type === 'timer') {
        if (context.outcome !== undefined) return;
        if (context.voted !== undefined) sendVote(context, emit);
        emit({ type: 'send', to: { kind: 'coordinators' }, message: query(txid, rm) });
        emit(resendTimer(context.input));
        return;
      }
      const m = event.message;
      if (m.type === 'voteRequest' && m.txid === txid) {
        if (context.voted === undefined && ![...context.pending.values()].some(isVote))
          persist(context, { kind: 'vote', vote: context.input.vote }, emit);
        else if (context.voted !== undefined) sendVote(context, emit);
      } else if (m.type === 'outcome' && m.txid === txid) conclude(context, m.outcome, emit);
      else if (
        m.type === 'accepted' &&
        m.group === txid &&
        m.ok &&
        typeof m.instance === 'string'
      ) {
        if (m.value === undefined) {
          if (m.instance === instanceOf(txid, rm)) context.ownAccepted.add(m.from);
        } else if (protocol === 'faster-paxos-commit')
          context.tally.add(m.from, m.instance, m.ballot, m.value);
        const ownChosen =
          context.tally.chosen(rm) === 'prepared' ||
          context.ownAccepted.size >= majorityOf(context.input.acceptorCount);
        const outcome = context.rules.rmConcludes(
          ownChosen && context.voted === 'prepared',
          protocol === 'faster-paxos-commit' ? context.tally.outcome() : undefined,
        );
        if (outcome !== undefined) conclude(context, outcome, emit);
      }
    }),
  },
}).createMachine({
  id: 'rm',
  context: ({ input }) => {
    let voted: Vote | undefined;
    let outcome: Outcome | undefined;
    for (const record of input.recovered ?? []) {
      if (record.kind === 'vote') voted = record.vote;
      else outcome = record.outcome;
    }
    return {
      input,
      rules: input.rules ?? COMMIT_RULES,
      voted,
      outcome,
      persistId: 0,
      pending: new Map(),
      tally: new Tally(input.txid, input.rms, input.acceptorCount),
      ownAccepted: new Set(),
    };
  },
  entry: 'start',
  on: {
    message: { actions: 'handle' },
    persisted: { actions: 'handle' },
    timer: { actions: 'handle' },
  },
});

const isVote = (record: CommitRecord): boolean => record.kind === 'vote';

const query = (txid: string, rm: string) => ({ type: 'outcomeQuery', txid, from: rm }) as const;

function persist(context: RmContext, record: CommitRecord, emit: Emit): void {
  context.persistId += 1;
  context.pending.set(context.persistId, record);
  emit({ type: 'persist', id: context.persistId, record });
}

/** The durable vote, proposed at ballot 0 in its own instance, or sent to the 2PC coordinator. */
function sendVote(context: RmContext, emit: Emit): void {
  const { txid, rm, protocol } = context.input;
  const vote = context.voted!;
  if (protocol === '2pc') {
    emit({
      type: 'send',
      to: { kind: 'coordinators' },
      message: { type: 'vote', txid, from: rm, vote },
    });
    return;
  }
  emit(voteAccept(txid, rm, rmBallot(rm), rm, vote));
}

/** Makes the outcome durable (once), and then says it. */
function conclude(context: RmContext, outcome: Outcome, emit: Emit): void {
  if (context.outcome !== undefined) return;
  if ([...context.pending.values()].some((r) => r.kind === 'outcome')) return;
  persist(context, { kind: 'outcome', outcome }, emit);
}
