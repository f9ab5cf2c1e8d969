import { compareBallots, maxBallot } from '@synod/protocol';
import { nextRandom } from './backoff.js';
import { ACCEPTORS } from './effects.js';
import type { Emit, LeaderContext, LeaderEffect, LeaderEvent } from './leader-context.js';
import { addPromise, promiseRound } from './leader-promises.js';
import { reserveNextRound } from './rounds.js';

/*
 * What a follower and a candidate do: wait for the leader's heartbeats, and when they stop,
 * reserve a round and run phase 1 for every slot from the first unchosen one (prepareLog).
 */

export const sameBallot = (a: LeaderContext['ballot'], b: LeaderContext['ballot']): boolean =>
  compareBallots(a, b) === 0;

function randomElectionDelay(context: LeaderContext): number {
  const { value, state } = nextRandom(context.random);
  context.random = state;
  const { electionMinMs, electionMaxMs } = context.timing;
  const delay = electionMinMs + value * (electionMaxMs - electionMinMs);
  // A node that is not a member as far as it knows (joining, removed, or behind on the log)
  // waits longer, so the members elect one of their own; it still campaigns in the end, since
  // only it may know that nobody else will (every member may think itself removed).
  return context.membership.latest.includes(context.input.nodeId) ? delay : delay * 3;
}

export function armElection(context: LeaderContext, emit: Emit): void {
  emit({ type: 'setTimer', timer: 'election', delayMs: randomElectionDelay(context) });
}

/** The statechart's guard let only a heartbeat message through. */
export function followHeartbeat(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'message' || event.message.type !== 'heartbeat') return;
  const m = event.message;
  context.highestSeen = maxBallot(context.highestSeen, m.ballot);
  if (context.leader !== m.from || !sameBallot(context.leaderBallot, m.ballot)) {
    context.leader = m.from;
    context.leaderBallot = m.ballot;
    emit({ type: 'leadership', leader: m.from, ballot: m.ballot });
  }
  armElection(context, emit);
}

export function refuseProposal(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'propose') return;
  emit({ type: 'refused', values: [event.value], reason: 'not-leader', leader: context.leader });
}

/** The leader went silent for a whole election timeout: stop sending clients its way. */
export function forgetLeader(context: LeaderContext, emit: Emit): void {
  if (context.leader === undefined) return;
  context.leader = undefined;
  emit({ type: 'leadership', leader: undefined, ballot: context.leaderBallot });
}

export function reserveRound(context: LeaderContext, emit: Emit): void {
  const persist = reserveNextRound(context);
  if (persist === undefined) return;
  emit({ type: 'cancelTimer', timer: 'election' });
  emit(persist);
}

export function sendPrepareLog(context: LeaderContext, emit: Emit): void {
  context.fromSlot = context.firstUnknownSlot;
  context.phase1 = promiseRound(context.fromSlot);
  emit(prepareLogFrom(context, context.fromSlot));
  emit({ type: 'setTimer', timer: 'phase', delayMs: context.timing.phaseTimeoutMs });
}

export function countPromise(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'message' || event.message.type !== 'promise') return;
  const outcome = addPromise(context.phase1, event.message);
  if (outcome.kind === 'refused')
    context.highestSeen = maxBallot(context.highestSeen, event.message.promised);
  // A long answer comes in pages: each page answers a prepareLog from where the last ended.
  else if (outcome.kind === 'next') emit(prepareLogFrom(context, outcome.from));
}

/** Phase 1a for every slot from `fromSlot`, at this candidate's ballot. */
export function prepareLogFrom(context: LeaderContext, fromSlot: number): LeaderEffect {
  const { group, nodeId } = context.input;
  return {
    type: 'send',
    to: ACCEPTORS,
    message: { type: 'prepareLog', group, from: nodeId, ballot: context.ballot, fromSlot },
  };
}
