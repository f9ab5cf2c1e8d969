import { type AcceptedEntry, MEMBERSHIP_WINDOW, maxBallot, type Value } from '@synod/protocol';
import { ACCEPTORS, chosenEffects, LEARNERS } from './effects.js';
import { prepareLogFrom } from './leader-candidate.js';
import {
  type Emit,
  type LeaderContext,
  type LeaderEvent,
  MAX_IN_FLIGHT_BYTES,
} from './leader-context.js';
import { addPromise, mergeReported, promiseRound } from './leader-promises.js';
import { NOOP } from './log-ops.js';

/*
 * What a leader does once a majority promised its ballot: re-propose what phase 1 reported,
 * then run phase 2 only, many slots at once, within the membership window; and what it hands
 * back when it steps down.
 */

/** An unanswered accept is sent again after this many heartbeat ticks (1: the next one). */
const RESEND_AFTER_TICKS = 2;

export function takeOver(context: LeaderContext, emit: Emit): void {
  emit({ type: 'cancelTimer', timer: 'phase' });
  context.recovered = new Map();
  context.recoveredThrough = context.fromSlot - 1;
  context.promisedFrom = new Map();
  context.widening = undefined;
  for (const [acceptor, entries] of context.phase1.promises) {
    context.promisedFrom.set(acceptor, context.fromSlot);
    recover(context, context.rules.reported(entries), context.fromSlot);
  }
  context.inFlight = new Map();
  context.inFlightBytes = 0;
  context.ticks = 0;
  context.queue = [];
  context.leader = context.input.nodeId;
  context.leaderBallot = context.ballot;
  context.nextSlot = context.fromSlot;
  startSlots(context, emit);
  emit({ type: 'leadership', leader: context.input.nodeId, ballot: context.ballot });
  sendHeartbeat(context, emit);
}

export function noteProgress(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'progress') return;
  context.firstUnknownSlot = Math.max(context.firstUnknownSlot, event.firstUnknownSlot);
  if (event.membership !== undefined) context.membership = event.membership;
  // A slot in flight that this node learned chosen by other means (the acceptors' copies
  // to learners, catch-up, a snapshot) needs no more acks, and an acceptor that compacted
  // it will never send one. Its value is normally what was chosen there (the host answers
  // the submitter on delivery); if this leader was deposed unawares it may not be, so the
  // value is handed back as refused, and the client's retry (same clientId, seq) settles it.
  const dropped: Value[] = [];
  for (const [slot, { value }] of context.inFlight) {
    if (slot < context.firstUnknownSlot) {
      context.inFlight.delete(slot);
      context.inFlightBytes -= value.length;
      if (value.length > 0) dropped.push(value);
    }
  }
  if (dropped.length > 0)
    emit({ type: 'refused', values: dropped, reason: 'not-leader', leader: context.leader });
  if (context.leader === context.input.nodeId) startSlots(context, emit);
}

export function countWideningPromise(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  const round = context.widening;
  if (round === undefined || event.type !== 'message' || event.message.type !== 'promise') return;
  const m = event.message;
  const outcome = addPromise(round, m);
  if (outcome.kind === 'refused') context.highestSeen = maxBallot(context.highestSeen, m.promised);
  else if (outcome.kind === 'next') emit(prepareLogFrom(context, outcome.from));
  else if (outcome.kind === 'complete') {
    // Slots already started were decided by members that had promised: only later ones
    // take this report into account.
    const from = Math.max(round.fromSlot, context.nextSlot);
    recover(context, outcome.entries, from);
    const known = context.promisedFrom.get(m.from);
    if (known === undefined || known > from) context.promisedFrom.set(m.from, from);
    startSlots(context, emit);
  }
}

export function acceptProposal(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'propose') return;
  if (context.queue.length < (context.input.maxQueued ?? 10_000)) {
    context.queue.push(event.value);
    startSlots(context, emit);
  } else
    emit({ type: 'refused', values: [event.value], reason: 'busy', leader: context.input.nodeId });
}

export function countAccepted(context: LeaderContext, event: LeaderEvent, emit: Emit): void {
  if (event.type !== 'message' || event.message.type !== 'accepted') return;
  const m = event.message;
  if (typeof m.instance !== 'number') return;
  const slot = context.inFlight.get(m.instance);
  if (slot === undefined) return;
  if (context.rules.countsAsAck(m.ok)) slot.acks.add(m.from);
  else {
    slot.refusals.add(m.from);
    context.highestSeen = maxBallot(context.highestSeen, m.promised);
  }
  if (!context.rules.isQuorum(slot.acks, slot.members)) return;
  context.inFlight.delete(m.instance);
  context.inFlightBytes -= slot.value.length;
  for (const effect of chosenEffects(context.input, m.instance, context.ballot, slot.value))
    emit(effect);
  startSlots(context, emit);
}

export function tick(context: LeaderContext, emit: Emit): void {
  context.ticks += 1;
  sendHeartbeat(context, emit);
  // A widening prepareLog still short of the members it needs is asked again, like accepts.
  if (context.widening?.fromSlot === context.nextSlot && !preparedFor(context, context.nextSlot))
    emit(prepareLogFrom(context, context.nextSlot));
  // NATS is at-most-once: accepts still short of a majority are sent again, once overdue
  // (a beat after the one they were sent in). Sending every one each beat multiplied a
  // burst of large writes in every socket, and heartbeats waited behind the copies.
  for (const [slot, entry] of context.inFlight) {
    if (context.ticks - entry.sentAt < RESEND_AFTER_TICKS) continue;
    entry.sentAt = context.ticks;
    sendAccept(context, slot, entry.value, emit);
  }
}

export function stepDown(context: LeaderContext, emit: Emit): void {
  emit({ type: 'cancelTimer', timer: 'heartbeat' });
  emit({ type: 'cancelTimer', timer: 'phase' });
  const orphans = [...[...context.inFlight.values()].map((s) => s.value), ...context.queue].filter(
    (v) => v.length > 0,
  );
  context.inFlight = new Map();
  context.inFlightBytes = 0;
  context.queue = [];
  context.recovered = new Map();
  context.promisedFrom = new Map();
  context.widening = undefined;
  if (context.leader === context.input.nodeId) {
    context.leader = undefined;
    emit({ type: 'leadership', leader: undefined, ballot: context.highestSeen });
  }
  // Values in flight may still be chosen by a later leader; clients retry them with the
  // same (clientId, seq), and the state machine applies each once.
  if (orphans.length > 0)
    emit({ type: 'refused', values: orphans, reason: 'not-leader', leader: undefined });
}

/**
 * Starts slots while the pipeline and the membership window allow: recovered values first (a
 * hole is a no-op), then queued client values. Slot s starts only once every slot up to
 * s - window is known chosen, so the members that must accept it are known, and only once a
 * majority of those members promised this ballot (preparedFor); until then the leader asks
 * them (widen) and starts nothing after s.
 */
function startSlots(context: LeaderContext, emit: Emit): void {
  skipChosenSlots(context);
  const maxInFlight = context.input.maxInFlight ?? MEMBERSHIP_WINDOW;
  const maxBytes = context.input.maxInFlightBytes ?? MAX_IN_FLIGHT_BYTES;
  while (
    context.inFlight.size < maxInFlight &&
    (context.inFlightBytes < maxBytes || context.inFlight.size === 0) &&
    context.rules.withinWindow(
      context.nextSlot,
      context.firstUnknownSlot,
      context.membership.window,
    )
  ) {
    const slot = context.nextSlot;
    if (!preparedFor(context, slot)) {
      widen(context, slot, emit);
      return;
    }
    const value =
      slot <= context.recoveredThrough
        ? (context.recovered.get(slot)?.value ?? NOOP)
        : context.queue.shift();
    if (value === undefined) return;
    context.recovered.delete(slot);
    context.nextSlot++;
    context.inFlightBytes += value.length;
    context.inFlight.set(slot, {
      value,
      sentAt: context.ticks,
      members: context.membership.membersAt(slot),
      acks: new Set(),
      refusals: new Set(),
    });
    sendAccept(context, slot, value, emit);
  }
}

/**
 * Slots this node learned chosen some other way (a snapshot, catch-up) before this leader
 * started them need no proposal.
 */
function skipChosenSlots(context: LeaderContext): void {
  if (context.nextSlot >= context.firstUnknownSlot) return;
  for (const slot of context.recovered.keys())
    if (slot < context.firstUnknownSlot) context.recovered.delete(slot);
  context.nextSlot = context.firstUnknownSlot;
}

/**
 * Whether a majority of the members that decide `slot` promised this leader's ballot for it.
 * Phase 1 only asked the members of its first slot; without this, a leader whose log chose a
 * membership change would go on to phase 2 at a ballot the new members never promised, and a
 * lower ballot they did promise could choose another value in the same slot.
 */
function preparedFor(context: LeaderContext, slot: number): boolean {
  return context.rules.slotPrepared(promisersOf(context, slot), context.membership.membersAt(slot));
}

/** The acceptors whose promise of this leader's ballot covers `slot`. */
export function promisersOf(context: LeaderContext, slot: number): Set<string> {
  const promisers = new Set<string>();
  for (const [acceptor, from] of context.promisedFrom) if (from <= slot) promisers.add(acceptor);
  return promisers;
}

/** Asks every acceptor to promise this ballot from `slot` on (once; tick asks again). */
function widen(context: LeaderContext, slot: number, emit: Emit): void {
  if (context.widening?.fromSlot === slot) return;
  context.widening = promiseRound(slot);
  emit(prepareLogFrom(context, slot));
}

/** Takes one promiser's report, from `fromSlot` on, into what the leader re-proposes. */
function recover(
  context: LeaderContext,
  entries: readonly AcceptedEntry[],
  fromSlot: number,
): void {
  mergeReported(context.recovered, entries, fromSlot);
  for (const entry of entries)
    if (typeof entry.instance === 'number' && entry.instance >= fromSlot)
      context.recoveredThrough = Math.max(context.recoveredThrough, entry.instance);
}

function sendAccept(context: LeaderContext, slot: number, value: Value, emit: Emit): void {
  const { group, nodeId } = context.input;
  emit({
    type: 'send',
    to: ACCEPTORS,
    message: { type: 'accept', group, from: nodeId, ballot: context.ballot, instance: slot, value },
  });
}

function sendHeartbeat(context: LeaderContext, emit: Emit): void {
  const { group, nodeId } = context.input;
  emit({
    type: 'send',
    to: LEARNERS,
    message: {
      type: 'heartbeat',
      group,
      from: nodeId,
      ballot: context.ballot,
      commitIndex: context.firstUnknownSlot - 1,
    },
  });
  emit({ type: 'setTimer', timer: 'heartbeat', delayMs: context.timing.heartbeatMs });
}
