import {
  type AcceptedEntry,
  type Ballot,
  ballot,
  compareBallots,
  isMajorityOf,
  MEMBERSHIP_WINDOW,
  type Membership,
  majorityImpossible,
  majorityOf,
  maxBallot,
  type Value,
  ZERO_BALLOT,
} from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import { nextRandom } from './backoff.js';
import {
  ACCEPTORS,
  type Effect,
  LEARNERS,
  type MessageEvent,
  type PersistedEvent,
  type RoundFloorEvent,
  type TimerEvent,
} from './effects.js';
import { addPromise, mergeReported, type PromiseRound, promiseRound } from './leader-promises.js';
import { NOOP } from './log-ops.js';
import type { PlantedBug } from './plants.js';
import { nextRound } from './rounds.js';

export interface LeaderTiming {
  readonly heartbeatMs: number;
  /** A follower that hears no leader for a random time in [min, max] starts an election. */
  readonly electionMinMs: number;
  readonly electionMaxMs: number;
  /** How long a candidate waits for a majority of promises. */
  readonly phaseTimeoutMs: number;
}

/** Default most value bytes in phase 2 at once (LeaderInput.maxInFlightBytes). */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/** An unanswered accept is sent again after this many heartbeat ticks (1: the next one). */
const RESEND_AFTER_TICKS = 2;

export const DEFAULT_LEADER_TIMING: LeaderTiming = {
  heartbeatMs: 50,
  electionMinMs: 150,
  electionMaxMs: 300,
  phaseTimeoutMs: 200,
};

export interface LeaderInput {
  readonly group: string;
  readonly nodeId: string;
  /**
   * The group's members over the log, as far as this node has delivered it (the host sends
   * updates with `progress`). A majority of membersAt(s) must accept slot s.
   */
  readonly membership: Membership;
  /** Above every round this node ever used (the host's persisted floor + 1). */
  readonly minRound: number;
  /** The first slot this node does not know chosen. */
  readonly firstUnchosen: number;
  readonly timing?: LeaderTiming;
  /** Most slots in phase 2 at once (pipelining). */
  readonly maxInFlight?: number;
  /**
   * Most value bytes in phase 2 at once (default MAX_IN_FLIGHT_BYTES); one slot may always
   * go. Large writes then queue here instead of in every socket between the nodes, where
   * heartbeats would wait behind them.
   */
  readonly maxInFlightBytes?: number;
  /** Most values waiting for a free slot; beyond it, proposals are refused as busy. */
  readonly maxQueued?: number;
  readonly seed: number;
  readonly plant?: PlantedBug;
}

/** Events the host sends besides messages, timers and persistence. */
export type LeaderEvent =
  | MessageEvent
  | TimerEvent
  | PersistedEvent
  | RoundFloorEvent
  /** Put this value (a batch of commands) in the log. */
  | { readonly type: 'propose'; readonly value: Value }
  /**
   * The host learned the log is chosen up to firstUnchosen - 1, and with it the membership
   * changes chosen there.
   */
  | {
      readonly type: 'progress';
      readonly firstUnchosen: number;
      readonly membership?: Membership;
    };

/** What the leader role adds to the common effects. */
export type LeaderEffect =
  | Effect
  /** Who leads, as far as this node knows (undefined: nobody known). */
  | { readonly type: 'leadership'; readonly leader: string | undefined; readonly ballot: Ballot }
  /** Values this node cannot put in the log (not the leader, deposed, or busy): the client retries. */
  | {
      readonly type: 'refused';
      readonly values: readonly Value[];
      readonly reason: 'not-leader' | 'busy';
      readonly leader: string | undefined;
    };

interface InFlight {
  readonly value: Value;
  /** The tick its accept was last sent at: it is sent again only once it is overdue. */
  sentAt: number;
  /** The members whose majority must accept this slot. */
  readonly members: readonly string[];
  readonly acks: Set<string>;
  readonly refusals: Set<string>;
}

/** Mutable, like the other machines' contexts: drive it as a live actor. */
export interface LeaderContext {
  readonly input: LeaderInput;
  readonly timing: LeaderTiming;
  membership: Membership;
  ballot: Ballot;
  highestSeen: Ballot;
  leader: string | undefined;
  leaderBallot: Ballot;
  firstUnchosen: number;
  /** Candidate: the answers to its prepareLog (from fromSlot). */
  phase1: PromiseRound;
  /** Leader: where phase 1 started, the next free slot, and the slots in phase 2. */
  fromSlot: number;
  nextSlot: number;
  /**
   * Leader: every acceptor known to have promised this ballot, with the first slot its
   * promise covers (its report from there on is in `recovered`). Slot s starts only once
   * these include a majority of the members that decide s: the promises of phase 1 came from
   * the members of its time, and a membership change chosen since needs its own.
   */
  promisedFrom: Map<string, number>;
  /** Leader: a prepareLog at this ballot, asking members that have not promised it yet. */
  widening: PromiseRound | undefined;
  /**
   * Leader: the value accepted at the highest ballot that any promiser reported, for each
   * slot not yet started through recoveredThrough; re-proposed as the membership window lets
   * slots start (a slot nobody reported becomes a no-op).
   */
  recovered: Map<number, AcceptedEntry>;
  recoveredThrough: number;
  inFlight: Map<number, InFlight>;
  /** The value bytes of inFlight. */
  inFlightBytes: number;
  /** Heartbeat ticks since this node started leading. */
  ticks: number;
  queue: Value[];
  random: number;
  persistId: number;
  /** The lowest round left to use: raised when any machine of this node reserves a round. */
  minRound: number;
  /** No round is left below MAX_ROUND: this node can only follow. */
  exhausted: boolean;
}

const same = (a: Ballot, b: Ballot): boolean => compareBallots(a, b) === 0;

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

/**
 * Seed 003's distinguished proposer. A follower that misses the leader's heartbeats starts an
 * election: it persists a new round, then runs phase 1 once for every slot at or above its
 * first unchosen slot (prepareLog). With a majority of promises it re-proposes, in each slot,
 * the value accepted at the highest ballot, fills holes with no-ops, and then runs only phase 2
 * for new values, many slots at once, until an acceptor reports a higher ballot.
 */
export const leaderMachine = setup({
  types: {
    input: {} as LeaderInput,
    context: {} as LeaderContext,
    events: {} as LeaderEvent,
    emitted: {} as LeaderEffect,
  },
  actions: {
    armElection: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'setTimer', timer: 'election', delayMs: randomElectionDelay(context) });
    }),
    followHeartbeat: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'message' || event.message.type !== 'heartbeat') return;
      const m = event.message;
      context.highestSeen = maxBallot(context.highestSeen, m.ballot);
      if (context.leader !== m.from || !same(context.leaderBallot, m.ballot)) {
        context.leader = m.from;
        context.leaderBallot = m.ballot;
        enqueue.emit({ type: 'leadership', leader: m.from, ballot: m.ballot });
      }
      enqueue.emit({ type: 'setTimer', timer: 'election', delayMs: randomElectionDelay(context) });
    }),
    refuseProposal: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'propose') return;
      enqueue.emit({
        type: 'refused',
        values: [event.value],
        reason: 'not-leader',
        leader: context.leader,
      });
    }),
    noteProgress: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'progress') return;
      context.firstUnchosen = Math.max(context.firstUnchosen, event.firstUnchosen);
      if (event.membership !== undefined) context.membership = event.membership;
      // A slot in flight that this node learned chosen by other means (the acceptors' copies
      // to learners, catch-up, a snapshot) needs no more acks, and an acceptor that compacted
      // it will never send one. Its value is normally what was chosen there (the host answers
      // the submitter on delivery); if this leader was deposed unawares it may not be, so the
      // value is handed back as refused, and the client's retry (same clientId, seq) settles it.
      const dropped: Value[] = [];
      for (const [slot, { value }] of context.inFlight) {
        if (slot < context.firstUnchosen) {
          context.inFlight.delete(slot);
          context.inFlightBytes -= value.length;
          if (value.length > 0) dropped.push(value);
        }
      }
      if (dropped.length > 0)
        enqueue.emit({
          type: 'refused',
          values: dropped,
          reason: 'not-leader',
          leader: context.leader,
        });
      if (context.leader === context.input.nodeId) startSlots(context, (e) => enqueue.emit(e));
    }),
    forgetLeader: enqueueActions(({ context, enqueue }) => {
      // The leader went silent for a whole election timeout: stop sending clients its way.
      if (context.leader === undefined) return;
      context.leader = undefined;
      enqueue.emit({ type: 'leadership', leader: undefined, ballot: context.leaderBallot });
    }),
    reserveRound: enqueueActions(({ context, enqueue }) => {
      const round = nextRound(context.minRound, context.highestSeen, context.ballot);
      if (round === undefined) {
        context.exhausted = true;
        return;
      }
      context.ballot = ballot(round, context.input.nodeId);
      context.persistId += 1;
      enqueue.emit({ type: 'cancelTimer', timer: 'election' });
      enqueue.emit({ type: 'persist', id: context.persistId, records: [{ kind: 'round', round }] });
    }),
    sendPrepareLog: enqueueActions(({ context, enqueue }) => {
      context.fromSlot = context.firstUnchosen;
      context.phase1 = promiseRound(context.fromSlot);
      enqueue.emit(prepareLogFrom(context, context.fromSlot));
      enqueue.emit({ type: 'setTimer', timer: 'phase', delayMs: context.timing.phaseTimeoutMs });
    }),
    countPromise: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'message' || event.message.type !== 'promise') return;
      const outcome = addPromise(context.phase1, event.message);
      if (outcome.kind === 'refused')
        context.highestSeen = maxBallot(context.highestSeen, event.message.promised);
      // A long answer comes in pages: each page answers a prepareLog from where the last ended.
      else if (outcome.kind === 'next') enqueue.emit(prepareLogFrom(context, outcome.from));
    }),
    takeOver: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      context.recovered = new Map();
      context.recoveredThrough = context.fromSlot - 1;
      context.promisedFrom = new Map();
      context.widening = undefined;
      for (const [acceptor, entries] of context.phase1.promises) {
        context.promisedFrom.set(acceptor, context.fromSlot);
        if (context.input.plant !== 'skip-repropose') recover(context, entries, context.fromSlot);
      }
      context.inFlight = new Map();
      context.inFlightBytes = 0;
      context.ticks = 0;
      context.queue = [];
      context.leader = context.input.nodeId;
      context.leaderBallot = context.ballot;
      context.nextSlot = context.fromSlot;
      startSlots(context, (e) => enqueue.emit(e));
      enqueue.emit({ type: 'leadership', leader: context.input.nodeId, ballot: context.ballot });
      sendHeartbeat(context, (e) => enqueue.emit(e));
    }),
    countWideningPromise: enqueueActions(({ context, event, enqueue }) => {
      const round = context.widening;
      if (round === undefined || event.type !== 'message' || event.message.type !== 'promise')
        return;
      const m = event.message;
      const outcome = addPromise(round, m);
      if (outcome.kind === 'refused')
        context.highestSeen = maxBallot(context.highestSeen, m.promised);
      else if (outcome.kind === 'next') enqueue.emit(prepareLogFrom(context, outcome.from));
      else if (outcome.kind === 'complete') {
        // Slots already started were decided by members that had promised: only later ones
        // take this report into account.
        const from = Math.max(round.fromSlot, context.nextSlot);
        recover(context, outcome.entries, from);
        const known = context.promisedFrom.get(m.from);
        if (known === undefined || known > from) context.promisedFrom.set(m.from, from);
        startSlots(context, (e) => enqueue.emit(e));
      }
    }),
    acceptProposal: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'propose') return;
      if (context.queue.length < (context.input.maxQueued ?? 10_000)) {
        context.queue.push(event.value);
        startSlots(context, (e) => enqueue.emit(e));
      } else
        enqueue.emit({
          type: 'refused',
          values: [event.value],
          reason: 'busy',
          leader: context.input.nodeId,
        });
    }),
    countAccepted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'message' || event.message.type !== 'accepted') return;
      const m = event.message;
      if (typeof m.instance !== 'number') return;
      const slot = context.inFlight.get(m.instance);
      if (slot === undefined) return;
      // The planted bug counts refusals as acknowledgements: a deposed leader keeps committing.
      if (m.ok || context.input.plant === 'deposed-keeps-committing') slot.acks.add(m.from);
      else {
        slot.refusals.add(m.from);
        context.highestSeen = maxBallot(context.highestSeen, m.promised);
      }
      if (!hasQuorum(context, slot.acks, slot.members)) return;
      context.inFlight.delete(m.instance);
      context.inFlightBytes -= slot.value.length;
      const { group, nodeId } = context.input;
      enqueue.emit({
        type: 'chosen',
        instance: m.instance,
        ballot: context.ballot,
        value: slot.value,
      });
      enqueue.emit({
        type: 'send',
        to: LEARNERS,
        message: {
          type: 'decide',
          group,
          from: nodeId,
          instance: m.instance,
          ballot: context.ballot,
          value: slot.value,
        },
      });
      startSlots(context, (e) => enqueue.emit(e));
    }),
    tick: enqueueActions(({ context, enqueue }) => {
      context.ticks += 1;
      sendHeartbeat(context, (e) => enqueue.emit(e));
      // A widening prepareLog still short of the members it needs is asked again, like accepts.
      if (
        context.widening?.fromSlot === context.nextSlot &&
        !preparedFor(context, context.nextSlot)
      )
        enqueue.emit(prepareLogFrom(context, context.nextSlot));
      // NATS is at-most-once: accepts still short of a majority are sent again, once overdue
      // (a beat after the one they were sent in). Sending every one each beat multiplied a
      // burst of large writes in every socket, and heartbeats waited behind the copies.
      const { group, nodeId } = context.input;
      for (const [slot, entry] of context.inFlight) {
        if (context.ticks - entry.sentAt < RESEND_AFTER_TICKS) continue;
        entry.sentAt = context.ticks;
        const value = entry.value;
        enqueue.emit({
          type: 'send',
          to: ACCEPTORS,
          message: {
            type: 'accept',
            group,
            from: nodeId,
            ballot: context.ballot,
            instance: slot,
            value,
          },
        });
      }
    }),
    stepDown: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'cancelTimer', timer: 'heartbeat' });
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      const orphans = [
        ...[...context.inFlight.values()].map((s) => s.value),
        ...context.queue,
      ].filter((v) => v.length > 0);
      context.inFlight = new Map();
      context.inFlightBytes = 0;
      context.queue = [];
      context.recovered = new Map();
      context.promisedFrom = new Map();
      context.widening = undefined;
      if (context.leader === context.input.nodeId) {
        context.leader = undefined;
        enqueue.emit({ type: 'leadership', leader: undefined, ballot: context.highestSeen });
      }
      // Values in flight may still be chosen by a later leader; clients retry them with the
      // same (clientId, seq), and the state machine applies each once.
      if (orphans.length > 0)
        enqueue.emit({ type: 'refused', values: orphans, reason: 'not-leader', leader: undefined });
    }),
  },
  guards: {
    isOurPersist: ({ context, event }) =>
      event.type === 'persisted' && event.id === context.persistId,
    isOurPromise: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'promise' &&
      event.message.instance === undefined &&
      same(event.message.ballot, context.ballot),
    isOurAccepted: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'accepted' &&
      event.message.value === undefined &&
      same(event.message.ballot, context.ballot),
    isCurrentHeartbeat: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'heartbeat' &&
      event.message.from !== context.input.nodeId &&
      compareBallots(event.message.ballot, context.leaderBallot) >= 0 &&
      compareBallots(event.message.ballot, context.ballot) >= 0,
    // A follower follows any leader at or above the one it knows, even below a ballot of its
    // own failed election: ignoring it would only make this node depose a healthy leader.
    isLeaderHeartbeat: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'heartbeat' &&
      event.message.from !== context.input.nodeId &&
      compareBallots(event.message.ballot, context.leaderBallot) >= 0,
    // The members of the first unknown slot; slots that later members decide wait for their
    // promises too (preparedFor), which a leader asks for when it gets there.
    promisedByMajority: ({ context }) =>
      hasQuorum(
        context,
        new Set(context.phase1.promises.keys()),
        context.membership.membersAt(context.fromSlot),
      ),
    majorityLost: ({ context }) =>
      majorityImpossible(context.phase1.refusals, context.membership.membersAt(context.fromSlot)),
    deposed: ({ context }) =>
      context.input.plant !== 'deposed-keeps-committing' &&
      compareBallots(context.highestSeen, context.ballot) > 0,
    isTimer: ({ event }, params: { timer: string }) =>
      event.type === 'timer' && event.timer === params.timer,
  },
}).createMachine({
  id: 'leader',
  context: ({ input }) => ({
    input,
    timing: input.timing ?? DEFAULT_LEADER_TIMING,
    membership: input.membership,
    ballot: ZERO_BALLOT,
    highestSeen: ZERO_BALLOT,
    leader: undefined,
    leaderBallot: ZERO_BALLOT,
    firstUnchosen: input.firstUnchosen,
    phase1: promiseRound(input.firstUnchosen),
    fromSlot: input.firstUnchosen,
    nextSlot: input.firstUnchosen,
    promisedFrom: new Map(),
    widening: undefined,
    recovered: new Map(),
    recoveredThrough: input.firstUnchosen - 1,
    inFlight: new Map(),
    inFlightBytes: 0,
    ticks: 0,
    queue: [],
    random: input.seed | 0,
    persistId: 0,
    minRound: input.minRound,
    exhausted: false,
  }),
  on: {
    progress: { actions: 'noteProgress' },
    roundFloor: {
      actions: ({ context, event }) => {
        context.minRound = Math.max(context.minRound, event.round + 1);
      },
    },
  },
  initial: 'follower',
  states: {
    follower: {
      entry: 'armElection',
      on: {
        message: { guard: 'isLeaderHeartbeat', actions: 'followHeartbeat' },
        timer: {
          guard: { type: 'isTimer', params: { timer: 'election' } },
          target: 'candidate',
          actions: 'forgetLeader',
        },
        propose: { actions: 'refuseProposal' },
      },
    },
    candidate: {
      initial: 'reserving',
      on: {
        message: { guard: 'isCurrentHeartbeat', target: 'follower', actions: 'followHeartbeat' },
        propose: { actions: 'refuseProposal' },
      },
      states: {
        reserving: {
          entry: 'reserveRound',
          on: { persisted: { guard: 'isOurPersist', target: 'preparing' } },
          always: { guard: ({ context }) => context.exhausted, target: '#leader.follower' },
        },
        preparing: {
          entry: 'sendPrepareLog',
          on: {
            message: [
              { guard: 'isOurPromise', actions: 'countPromise' },
              {
                guard: 'isCurrentHeartbeat',
                target: '#leader.follower',
                actions: 'followHeartbeat',
              },
            ],
            timer: {
              guard: { type: 'isTimer', params: { timer: 'phase' } },
              target: '#leader.follower',
            },
          },
          always: [
            { guard: 'promisedByMajority', target: '#leader.leading' },
            { guard: 'majorityLost', target: '#leader.follower' },
          ],
        },
      },
    },
    leading: {
      entry: 'takeOver',
      exit: 'stepDown',
      on: {
        propose: { actions: 'acceptProposal' },
        message: [
          { guard: 'isOurAccepted', actions: 'countAccepted' },
          { guard: 'isOurPromise', actions: 'countWideningPromise' },
          { guard: 'isCurrentHeartbeat', target: 'follower', actions: 'followHeartbeat' },
        ],
        timer: { guard: { type: 'isTimer', params: { timer: 'heartbeat' } }, actions: 'tick' },
      },
      always: { guard: 'deposed', target: 'follower' },
    },
  },
});

/** Phase 1a for every slot from `fromSlot`, at this candidate's ballot. */
function prepareLogFrom(context: LeaderContext, fromSlot: number): LeaderEffect {
  const { group, nodeId } = context.input;
  return {
    type: 'send',
    to: ACCEPTORS,
    message: { type: 'prepareLog', group, from: nodeId, ballot: context.ballot, fromSlot },
  };
}

/**
 * Starts slots while the pipeline and the membership window allow: recovered values first (a
 * hole is a no-op), then queued client values. Slot s starts only once every slot up to
 * s - window is known chosen, so the members that must accept it are known, and only once a
 * majority of those members promised this ballot (preparedFor); until then the leader asks
 * them (widen) and starts nothing after s.
 */
function startSlots(context: LeaderContext, emit: (effect: LeaderEffect) => void): void {
  skipChosenSlots(context);
  const maxInFlight = context.input.maxInFlight ?? MEMBERSHIP_WINDOW;
  const maxBytes = context.input.maxInFlightBytes ?? MAX_IN_FLIGHT_BYTES;
  while (
    context.inFlight.size < maxInFlight &&
    (context.inFlightBytes < maxBytes || context.inFlight.size === 0) &&
    (context.nextSlot < context.firstUnchosen + context.membership.window ||
      context.input.plant === 'no-membership-window')
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
    startSlot(context, slot, value, emit);
  }
}

/**
 * Slots this node learned chosen some other way (a snapshot, catch-up) before this leader
 * started them need no proposal.
 */
function skipChosenSlots(context: LeaderContext): void {
  if (context.nextSlot >= context.firstUnchosen) return;
  for (const slot of context.recovered.keys())
    if (slot < context.firstUnchosen) context.recovered.delete(slot);
  context.nextSlot = context.firstUnchosen;
}

/**
 * Whether a majority of the members that decide `slot` promised this leader's ballot for it.
 * Phase 1 only asked the members of its first slot; without this, a leader whose log chose a
 * membership change would go on to phase 2 at a ballot the new members never promised, and a
 * lower ballot they did promise could choose another value in the same slot.
 */
function preparedFor(context: LeaderContext, slot: number): boolean {
  if (context.input.plant === 'unprepared-members') return true;
  const promisers = new Set<string>();
  for (const [acceptor, from] of context.promisedFrom) if (from <= slot) promisers.add(acceptor);
  return hasQuorum(context, promisers, context.membership.membersAt(slot));
}

/** Asks every acceptor to promise this ballot from `slot` on (once; tick asks again). */
function widen(context: LeaderContext, slot: number, emit: (effect: LeaderEffect) => void): void {
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

/**
 * A majority of `members` among `voters`. The planted bug counts any acceptor: a majority
 * of the right size, whoever is in it.
 */
function hasQuorum(
  context: LeaderContext,
  voters: ReadonlySet<string>,
  members: readonly string[],
): boolean {
  if (context.input.plant === 'ignore-membership') return voters.size >= majorityOf(members.length);
  return isMajorityOf(voters, members);
}

function startSlot(
  context: LeaderContext,
  slot: number,
  value: Value,
  emit: (effect: LeaderEffect) => void,
): void {
  context.inFlightBytes += value.length;
  context.inFlight.set(slot, {
    value,
    sentAt: context.ticks,
    members: context.membership.membersAt(slot),
    acks: new Set(),
    refusals: new Set(),
  });
  const { group, nodeId } = context.input;
  emit({
    type: 'send',
    to: ACCEPTORS,
    message: { type: 'accept', group, from: nodeId, ballot: context.ballot, instance: slot, value },
  });
}

function sendHeartbeat(context: LeaderContext, emit: (effect: LeaderEffect) => void): void {
  const { group, nodeId } = context.input;
  emit({
    type: 'send',
    to: LEARNERS,
    message: {
      type: 'heartbeat',
      group,
      from: nodeId,
      ballot: context.ballot,
      commitIndex: context.firstUnchosen - 1,
    },
  });
  emit({ type: 'setTimer', timer: 'heartbeat', delayMs: context.timing.heartbeatMs });
}
