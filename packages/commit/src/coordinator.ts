import { type Ballot, compareBallots, majorityOf, type PromiseReply } from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { COMMIT_RULES, type CommitRules } from './rules.js';
import { Tally } from './tally.js';
import {
  askToPrepare,
  type CommitEffect,
  type CommitEvent,
  decodeVote,
  type CommitEmit as Emit,
  instanceOf,
  type Outcome,
  resendTimer,
  tellOutcome,
  type Vote,
  voteAccept,
} from './types.js';

export interface CoordinatorInput {
  readonly txid: string;
  readonly nodeId: string;
  readonly rms: readonly string[];
  /** 2F+1. */
  readonly acceptorCount: number;
  /**
   * The first coordinator asks the RMs to prepare; one taking over (another node, or this one
   * restarted: it keeps nothing on disk) starts with phase 1 for every RM it has not heard.
   */
  readonly initial: boolean;
  /** Without every instance chosen by then, run phase 1 for the undecided ones (and again). */
  readonly phaseTimeoutMs: number;
  /**
   * Phase 3: tell every RM the outcome once known (default). Faster Paxos Commit's RMs learn it
   * from the acceptors' phase 2b, so its coordinator only answers RMs that ask.
   */
  readonly announces?: boolean;
  /** Rounds below this are not used (a restarted coordinator starts above its old ones). */
  readonly minRound?: number;
  /**
   * Rounds above this are not used: a host that gives each life of its coordinators a range of
   * rounds keeps two lives from ever sharing a ballot. A coordinator that would need a higher
   * one stops taking over (one with a higher range decides; the RMs keep asking).
   */
  readonly maxRound?: number;
  readonly rules?: CommitRules;
  /** How long it waits before sending its last message again (default RESEND_MS). */
  readonly resendMs?: number;
}

interface Phase1 {
  readonly ballot: Ballot;
  /** Acceptors that promised, with the highest-ballot vote each had accepted, if any. */
  readonly promises: Map<string, { ballot: Ballot; vote: Vote } | undefined>;
  proposed: boolean;
}

export interface CoordinatorContext {
  readonly input: CoordinatorInput;
  readonly rules: CommitRules;
  readonly tally: Tally;
  outcome: Outcome | undefined;
  round: number;
  /** Phase 1 of the instances this coordinator is deciding itself, by RM. */
  readonly phase1: Map<string, Phase1>;
}

/**
 * Paxos Commit's leader (the transaction manager). The RMs' phase 2a at ballot 0 needs no
 * leader; it gathers the acceptors' phase 2b and, once every instance chose, tells the RMs
 * (phase 3). An instance still undecided after phaseTimeoutMs gets this coordinator's own
 * ballot: phase 1 at a majority of acceptors; a vote accepted there is proposed again (forced),
 * none found is `aborted` (free). Any number of coordinators may run at once: safety rests on
 * the instances' Paxos, not on a single leader. It keeps nothing on disk.
 */
export const coordinatorMachine = setup({
  types: {
    input: {} as CoordinatorInput,
    context: {} as CoordinatorContext,
    events: {} as CommitEvent,
    emitted: {} as CommitEffect,
  },
  actions: {
    start: enqueueActions(({ context, enqueue }) => {
      const { txid, nodeId, initial } = context.input;
      if (initial) enqueue.emit(askToPrepare(txid, nodeId));
      enqueue.emit({ type: 'setTimer', timer: 'phase', delayMs: context.input.phaseTimeoutMs });
      enqueue.emit(resendTimer(context.input));
    }),
    handle: enqueueActions(({ context, event, enqueue }) => {
      const emit = enqueue.emit;
      const { txid, nodeId } = context.input;
      if (event.type === 'timer') {
        if (event.timer === 'phase') {
          if (context.outcome === undefined) takeOver(context, emit);
          emit({ type: 'setTimer', timer: 'phase', delayMs: context.input.phaseTimeoutMs });
        } else if (event.timer === 'resend' && context.outcome === undefined) {
          // RMs that have not been heard from may have missed the request to prepare.
          if (context.input.initial) emit(askToPrepare(txid, nodeId));
          emit(resendTimer(context.input));
        }
        return;
      }
      if (event.type !== 'message') return;
      const m = event.message;
      if (m.type === 'accepted' && m.group === txid && m.ok && m.value !== undefined) {
        if (typeof m.instance !== 'string') return;
        context.tally.add(m.from, m.instance, m.ballot, m.value);
        const outcome = context.tally.outcome();
        if (outcome !== undefined && context.outcome === undefined) {
          context.outcome = outcome;
          emit({ type: 'decided', outcome });
          emit({ type: 'cancelTimer', timer: 'phase' });
          if (context.input.announces !== false) announce(context, { kind: 'rms' }, emit);
        }
      } else if (m.type === 'outcomeQuery' && m.txid === txid && context.outcome !== undefined)
        announce(context, { kind: 'node', id: m.from }, emit);
      else if (m.type === 'promise' && m.group === txid && typeof m.instance === 'string')
        countPromise(context, m, emit);
    }),
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => ({
    input,
    rules: input.rules ?? COMMIT_RULES,
    tally: new Tally(input.txid, input.rms, input.acceptorCount),
    outcome: undefined,
    round: Math.max(1, input.minRound ?? 1),
    phase1: new Map(),
  }),
  entry: 'start',
  on: {
    message: { actions: 'handle' },
    timer: { actions: 'handle' },
  },
});

function announce(
  context: CoordinatorContext,
  to: { kind: 'rms' } | { kind: 'node'; id: string },
  emit: Emit,
): void {
  const { txid, nodeId } = context.input;
  emit(tellOutcome(to, txid, nodeId, context.outcome!));
}

/** Phase 1, at a fresh ballot of this coordinator's, for every instance not yet chosen. */
function takeOver(context: CoordinatorContext, emit: Emit): void {
  const { txid, nodeId, maxRound } = context.input;
  if (maxRound !== undefined && context.round > maxRound) return;
  const ballot: Ballot = { round: context.round++, nodeId };
  for (const rm of context.tally.undecided()) {
    context.phase1.set(rm, { ballot, promises: new Map(), proposed: false });
    emit({
      type: 'send',
      to: { kind: 'acceptors' },
      message: {
        type: 'prepare',
        group: txid,
        from: nodeId,
        ballot,
        instance: instanceOf(txid, rm),
      },
    });
  }
}

function countPromise(context: CoordinatorContext, m: PromiseReply, emit: Emit): void {
  const { txid, nodeId, rms, acceptorCount } = context.input;
  const rm = rms.find((r) => instanceOf(txid, r) === m.instance);
  const phase = rm === undefined ? undefined : context.phase1.get(rm);
  if (rm === undefined || phase === undefined || compareBallots(m.ballot, phase.ballot) !== 0)
    return;
  if (!m.ok) {
    // A higher ballot holds there: the next round starts above it.
    context.round = Math.max(context.round, m.promised.round + 1);
    return;
  }
  const reported = m.accepted.find((e) => e.instance === m.instance);
  const reportedVote = reported === undefined ? undefined : decodeVote(reported.value);
  phase.promises.set(
    m.from,
    reported === undefined || reportedVote === undefined
      ? undefined
      : { ballot: reported.ballot, vote: reportedVote },
  );
  if (phase.proposed || phase.promises.size < majorityOf(acceptorCount)) return;
  phase.proposed = true;
  let forced: { ballot: Ballot; vote: Vote } | undefined;
  for (const accepted of phase.promises.values())
    if (
      accepted !== undefined &&
      (forced === undefined || compareBallots(accepted.ballot, forced.ballot) > 0)
    )
      forced = accepted;
  const vote = forced?.vote ?? context.rules.freeVote();
  emit(voteAccept(txid, nodeId, phase.ballot, rm, vote));
}
