import {
  type AcceptedEntry,
  type Ballot,
  ballot,
  compareBallots,
  isMajorityOf,
  isMembershipValue,
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
import { NOOP } from './log-ops.js';
import type { PlantedBug } from './plants.js';

export interface LeaderTiming {
  readonly heartbeatMs: number;
  /** A follower that hears no leader for a random time in [min, max] starts an election. */
  readonly electionMinMs: number;
  readonly electionMaxMs: number;
  /** How long a candidate waits for a majority of promises. */
  readonly phaseTimeoutMs: number;
}

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
  /** Candidate: promises by acceptor (complete: every page received). */
  promises: Map<string, readonly AcceptedEntry[]>;
  /** Candidate: promises still arriving in pages, by acceptor: what came, and where the next page starts. */
  pages: Map<string, { entries: AcceptedEntry[]; next: number }>;
  refusals: Set<string>;
  /** Candidate: the last answer of phase1Configs and what it was computed from. */
  phase1Memo:
    | {
        readonly promises: Map<string, readonly AcceptedEntry[]>;
        readonly size: number;
        readonly membership: Membership;
        readonly firstUnchosen: number;
        readonly fromSlot: number;
        readonly configs: (readonly string[])[];
      }
    | undefined;
  /** Leader: where phase 1 started, the next free slot, and the slots in phase 2. */
  fromSlot: number;
  nextSlot: number;
  /**
   * Leader: what phase 1 found in each slot through recoveredThrough, re-proposed as the
   * membership window lets slots start (a hole becomes a no-op).
   */
  recovered: Map<number, Value>;
  recoveredThrough: number;
  inFlight: Map<number, InFlight>;
  queue: Value[];
  random: number;
  persistId: number;
  /** The lowest round left to use: raised when any machine of this node reserves a round. */
  minRound: number;
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
      const round = Math.max(
        context.minRound,
        context.highestSeen.round + 1,
        context.ballot.round + 1,
      );
      context.ballot = ballot(round, context.input.nodeId);
      context.persistId += 1;
      enqueue.emit({ type: 'cancelTimer', timer: 'election' });
      enqueue.emit({ type: 'persist', id: context.persistId, records: [{ kind: 'round', round }] });
    }),
    sendPrepareLog: enqueueActions(({ context, enqueue }) => {
      context.promises = new Map();
      context.pages = new Map();
      context.refusals = new Set();
      context.fromSlot = context.firstUnchosen;
      enqueue.emit(prepareLogFrom(context, context.fromSlot));
      enqueue.emit({ type: 'setTimer', timer: 'phase', delayMs: context.timing.phaseTimeoutMs });
    }),
    countPromise: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'message' || event.message.type !== 'promise') return;
      const m = event.message;
      if (!m.ok) {
        context.pages.delete(m.from);
        context.refusals.add(m.from);
        context.highestSeen = maxBallot(context.highestSeen, m.promised);
        return;
      }
      if (context.promises.has(m.from)) return;
      // A long answer comes in pages: each page answers a prepareLog from where the last ended.
      const from = m.fromSlot ?? context.fromSlot;
      const partial = context.pages.get(m.from);
      let entries: AcceptedEntry[];
      if (partial === undefined && from === context.fromSlot) entries = [...m.accepted];
      else if (partial !== undefined && from === partial.next)
        entries = partial.entries.concat(m.accepted);
      else return; // a duplicate, or a page meant for another acceptor's answer
      const last = m.accepted.at(-1)?.instance;
      if (!m.more || typeof last !== 'number') {
        context.pages.delete(m.from);
        context.promises.set(m.from, entries);
        return;
      }
      context.pages.set(m.from, { entries, next: last + 1 });
      enqueue.emit(prepareLogFrom(context, last + 1));
    }),
    takeOver: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'cancelTimer', timer: 'phase' });
      const reported =
        context.input.plant === 'skip-repropose'
          ? new Map<number, AcceptedEntry>()
          : bestReported(context);
      context.recovered = new Map([...reported].map(([slot, entry]) => [slot, entry.value]));
      context.recoveredThrough = Math.max(context.fromSlot - 1, ...reported.keys());
      context.inFlight = new Map();
      context.queue = [];
      context.leader = context.input.nodeId;
      context.leaderBallot = context.ballot;
      context.nextSlot = context.fromSlot;
      startSlots(context, (e) => enqueue.emit(e));
      enqueue.emit({ type: 'leadership', leader: context.input.nodeId, ballot: context.ballot });
      sendHeartbeat(context, (e) => enqueue.emit(e));
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
      sendHeartbeat(context, (e) => enqueue.emit(e));
      // NATS is at-most-once: accepts still short of a majority are sent again each beat.
      const { group, nodeId } = context.input;
      for (const [slot, { value }] of context.inFlight) {
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
      context.queue = [];
      context.recovered = new Map();
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
    promisedByMajority: ({ context }) => {
      const promisers = new Set(context.promises.keys());
      return phase1Configs(context).every((members) => hasQuorum(context, promisers, members));
    },
    majorityLost: ({ context }) =>
      phase1Configs(context).some((members) => majorityImpossible(context.refusals, members)),
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
    promises: new Map(),
    pages: new Map(),
    refusals: new Set(),
    phase1Memo: undefined,
    fromSlot: input.firstUnchosen,
    nextSlot: input.firstUnchosen,
    recovered: new Map(),
    recoveredThrough: input.firstUnchosen - 1,
    inFlight: new Map(),
    queue: [],
    random: input.seed | 0,
    persistId: 0,
    minRound: input.minRound,
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
 * s - window is known chosen, so the members that must accept it are known.
 */
function startSlots(context: LeaderContext, emit: (effect: LeaderEffect) => void): void {
  const maxInFlight = context.input.maxInFlight ?? MEMBERSHIP_WINDOW;
  while (
    context.inFlight.size < maxInFlight &&
    (context.nextSlot < context.firstUnchosen + context.membership.window ||
      context.input.plant === 'no-membership-window')
  ) {
    const slot = context.nextSlot;
    const value =
      slot <= context.recoveredThrough
        ? (context.recovered.get(slot) ?? NOOP)
        : context.queue.shift();
    if (value === undefined) return;
    context.recovered.delete(slot);
    context.nextSlot++;
    startSlot(context, slot, value, emit);
  }
}

/** The highest-ballot value each complete promise reported, by slot from fromSlot on. */
function bestReported(context: LeaderContext): Map<number, AcceptedEntry> {
  const reported = new Map<number, AcceptedEntry>();
  for (const entries of context.promises.values()) {
    for (const entry of entries) {
      if (typeof entry.instance !== 'number' || entry.instance < context.fromSlot) continue;
      const best = reported.get(entry.instance);
      if (best === undefined || compareBallots(entry.ballot, best.ballot) > 0)
        reported.set(entry.instance, entry);
    }
  }
  return reported;
}

/**
 * Every member set whose majority phase 1 needs. Slots this node has not delivered may hold
 * membership changes: where the promises so far report one (the value this leader will
 * re-propose there), the slots it governs need a majority of its members too. Any slot where
 * a value may be chosen has a chosen prefix up to the window before it, which the
 * majorities gathered so far report truly, so the set computed for it is the one that chose.
 */
function phase1Configs(context: LeaderContext): (readonly string[])[] {
  // The guards ask after every event while preparing; the answer changes only with these.
  const { promises, membership, firstUnchosen, fromSlot } = context;
  const memo = context.phase1Memo;
  if (
    memo !== undefined &&
    memo.promises === promises &&
    memo.size === promises.size &&
    memo.membership === membership &&
    memo.firstUnchosen === firstUnchosen &&
    memo.fromSlot === fromSlot
  )
    return memo.configs;
  let reportedMembership = membership;
  if (context.input.plant !== 'ignore-membership') {
    const changes = [...bestReported(context)]
      .filter(([slot, entry]) => slot >= firstUnchosen && isMembershipValue(entry.value))
      .sort(([a], [b]) => a - b);
    for (const [slot, entry] of changes)
      reportedMembership = reportedMembership.after(slot, entry.value);
  }
  const configs =
    context.input.plant === 'phase1-first-members'
      ? [membership.membersAt(fromSlot)]
      : reportedMembership.configsFrom(fromSlot);
  context.phase1Memo = {
    promises,
    size: promises.size,
    membership,
    firstUnchosen,
    fromSlot,
    configs,
  };
  return configs;
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
  context.inFlight.set(slot, {
    value,
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
