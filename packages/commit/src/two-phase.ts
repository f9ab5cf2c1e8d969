import { enqueueActions, setup } from 'xstate';
import {
  askToPrepare,
  type CommitEffect,
  type CommitEvent,
  type CommitRecord,
  type CommitEmit as Emit,
  type Outcome,
  resendTimer,
  tellOutcome,
  type Vote,
} from './types.js';

export interface TwoPhaseInput {
  readonly txid: string;
  readonly nodeId: string;
  readonly rms: readonly string[];
  /** Without every vote by then, the coordinator aborts. */
  readonly voteTimeoutMs: number;
  /** Its durable records (the outcome, once logged). */
  readonly recovered?: readonly CommitRecord[];
  /** How long it waits before asking again (default RESEND_MS). */
  readonly resendMs?: number;
}

export interface TwoPhaseContext {
  readonly input: TwoPhaseInput;
  readonly votes: Map<string, Vote>;
  outcome: Outcome | undefined;
  /** The outcome being logged. */
  logging: Outcome | undefined;
}

/**
 * Two-phase commit's transaction manager, the baseline Paxos Commit is measured against: it
 * asks the RMs to prepare, logs the outcome once every vote is in (or aborts at the timeout),
 * then tells the RMs. An RM that voted prepared can do nothing but wait for it: while this
 * coordinator is down, such an RM is blocked. A coordinator restarted without a logged
 * outcome aborts (it never told anyone to commit).
 */
export const twoPhaseCoordinatorMachine = setup({
  types: {
    input: {} as TwoPhaseInput,
    context: {} as TwoPhaseContext,
    events: {} as CommitEvent,
    emitted: {} as CommitEffect,
  },
  actions: {
    start: enqueueActions(({ context, enqueue }) => {
      const { txid, nodeId } = context.input;
      if (context.outcome !== undefined) {
        enqueue.emit({ type: 'decided', outcome: context.outcome });
        return;
      }
      if ((context.input.recovered ?? []).length === 0 && context.votes.size === 0)
        enqueue.emit(askToPrepare(txid, nodeId));
      enqueue.emit({ type: 'setTimer', timer: 'votes', delayMs: context.input.voteTimeoutMs });
      enqueue.emit(resendTimer(context.input));
    }),
    handle: enqueueActions(({ context, event, enqueue }) => {
      const emit = enqueue.emit;
      const { txid, nodeId, rms } = context.input;
      if (event.type === 'persisted') {
        if (context.logging === undefined || context.outcome !== undefined) return;
        context.outcome = context.logging;
        emit({ type: 'decided', outcome: context.outcome });
        emit(outcomeTo({ kind: 'rms' }, context));
        return;
      }
      if (event.type === 'timer') {
        if (context.outcome !== undefined) return;
        if (event.timer === 'votes') log(context, 'aborted', emit);
        else if (event.timer === 'resend') {
          emit(askToPrepare(txid, nodeId));
          emit(resendTimer(context.input));
        }
        return;
      }
      const m = event.message;
      if (m.type === 'vote' && m.txid === txid && rms.includes(m.from)) {
        context.votes.set(m.from, m.vote);
        if (m.vote === 'aborted') log(context, 'aborted', emit);
        else if (rms.every((rm) => context.votes.get(rm) === 'prepared'))
          log(context, 'committed', emit);
        if (context.outcome !== undefined) emit(outcomeTo({ kind: 'node', id: m.from }, context));
      } else if (m.type === 'outcomeQuery' && m.txid === txid && context.outcome !== undefined)
        emit(outcomeTo({ kind: 'node', id: m.from }, context));
    }),
  },
}).createMachine({
  id: 'twoPhaseCoordinator',
  context: ({ input }) => {
    const logged = (input.recovered ?? []).find((r) => r.kind === 'outcome');
    return {
      input,
      votes: new Map(),
      outcome: logged?.kind === 'outcome' ? logged.outcome : undefined,
      logging: undefined,
    };
  },
  entry: 'start',
  on: {
    message: { actions: 'handle' },
    persisted: { actions: 'handle' },
    timer: { actions: 'handle' },
  },
});

function outcomeTo(
  to: { kind: 'rms' } | { kind: 'node'; id: string },
  context: TwoPhaseContext,
): CommitEffect {
  return tellOutcome(to, context.input.txid, context.input.nodeId, context.outcome!);
}

function log(context: TwoPhaseContext, outcome: Outcome, emit: Emit): void {
  if (context.logging !== undefined) return;
  context.logging = outcome;
  emit({ type: 'persist', id: 1, record: { kind: 'outcome', outcome } });
}
