import { compareBallots, isMajorityOf, maxBallot } from '@synod/protocol';
import { ACCEPTORS } from './effects.js';
import type { Emit, LeaderContext, LeaderEvent, LeadershipRefusal } from './leader-context.js';
import { promisersOf } from './leader-leading.js';

/*
 * Linearizable reads without a log slot: Raft's ReadIndex (Ongaro's thesis, section 6.4),
 * in Paxos terms. No clock is trusted: a leader confirms it still leads by asking the
 * acceptors, after the read arrived, whether any of them promised a higher ballot.
 *
 * Why a confirmed read sees every write acknowledged before it began. Let f be the leader's
 * first undelivered slot when the check starts (readIndex = f - 1), b its ballot, and w such
 * a write, chosen in slot s at ballot c.
 * - c > b: a majority of the members deciding s promised c before w was acknowledged. A
 *   majority of every member set of the undelivered slots answered "nothing above b" after
 *   the check began, so when s >= f and its members are known here, the two majorities
 *   share an acceptor that would have said otherwise. When its members are not known here,
 *   the first change this node does not know was chosen in a slot >= f whose members it
 *   does know, at a ballot above b (the case below rules out lower ones): the same argument
 *   applies to that slot.
 * - c < b: the leader is settled (settled() below): a majority of the members of every
 *   undelivered slot promised b for every slot from f on. One of them accepted s at c before
 *   that promise (after it, c would be refused) and reported it, so s is at most
 *   recoveredThrough, which settled places below f: w is delivered here.
 * - c = b: only this leader proposes at b, and it acknowledges a write once applied here.
 * So s < f in every case, and the read is served once this node applied through f - 1.
 */

/**
 * Starts a ReadIndex round, or says at once why this leader cannot run one. The same id again
 * asks the acceptors again (NATS may have lost a check or its answers), keeping what was
 * answered: every answer to this id came after the round began.
 */
export function checkLeadership(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'checkLeadership') return;
  const open = context.readCheck;
  if (open?.id === event.id) {
    sendCheck(context, open.id, emit);
    return;
  }
  if (!context.rules.servesReads(settled(context))) {
    refuse(event.id, 'unsettled', context, emit);
    return;
  }
  const check = {
    id: event.id,
    readIndex: context.firstUnknownSlot - 1,
    configs: context.membership.configsFrom(context.firstUnknownSlot),
    answered: new Set<string>(),
  };
  context.readCheck = check;
  sendCheck(context, check.id, emit);
  confirmIfAnswered(context, emit);
}

function sendCheck(context: LeaderContext, requestId: number, emit: Emit): void {
  const { group, nodeId } = context.input;
  emit({
    type: 'send',
    to: ACCEPTORS,
    message: { type: 'readIndexCheck', group, from: nodeId, ballot: context.ballot, requestId },
  });
}

/** A follower or candidate: no read is served on its word. */
export function refuseLeadershipCheck(
  context: LeaderContext,
  event: LeaderEvent,
  emit: Emit,
): void {
  if (event.type === 'checkLeadership') refuse(event.id, 'not-leader', context, emit);
}

/** One acceptor's answer to the open round. */
export function countReadIndexAnswer(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  const check = context.readCheck;
  if (event.type !== 'message' || event.message.type !== 'readIndexAnswer' || check === undefined)
    return;
  const m = event.message;
  if (m.requestId !== check.id) return;
  if (compareBallots(m.promised, context.ballot) > 0) {
    // The leader machine's `deposed` guard steps down on this too.
    context.highestSeen = maxBallot(context.highestSeen, m.promised);
    context.readCheck = undefined;
    // Who leads now is not known here: not this node, whatever it still believed.
    emit({ type: 'leadershipChecked', id: check.id, refused: 'deposed', leader: undefined });
    return;
  }
  check.answered.add(m.from);
  confirmIfAnswered(context, emit);
}

/** Stepping down: the open round's reads are not this node's to serve. */
export function abandonReadCheck(context: LeaderContext, emit: Emit): void {
  const check = context.readCheck;
  if (check === undefined) return;
  context.readCheck = undefined;
  refuse(check.id, 'not-leader', context, emit);
}

function confirmIfAnswered(context: LeaderContext, emit: Emit): void {
  const check = context.readCheck;
  if (check === undefined || !context.rules.confirmsLeadership(check.answered, check.configs))
    return;
  context.readCheck = undefined;
  emit({ type: 'leadershipChecked', id: check.id, readIndex: check.readIndex });
}

/**
 * Whether the leader misses nothing a read must wait for: no slot phase 1 reported is still
 * undelivered here, and a majority of every member set deciding an undelivered slot promised
 * its ballot (a membership change chosen since phase 1 may need more promises). Unsettled,
 * like a new Raft leader before it commits an entry of its term, it serves reads through the
 * log instead (simulator: reads at takeover catch a leader that does not wait).
 */
function settled(context: LeaderContext): boolean {
  const first = context.firstUnknownSlot;
  if (context.recoveredThrough >= first) return false;
  const promisers = promisersOf(context, first);
  return context.membership.configsFrom(first).every((members) => isMajorityOf(promisers, members));
}

function refuse(id: number, refused: LeadershipRefusal, context: LeaderContext, emit: Emit): void {
  emit({ type: 'leadershipChecked', id, refused, leader: context.leader });
}
