import {
  type AcceptedEntry,
  type Ballot,
  ballot,
  compareBallots,
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
import { majority, quorumImpossible } from './quorum.js';

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
  readonly acceptorCount: number;
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
  /** The host learned the log is chosen up to firstUnchosen - 1. */
  | { readonly type: 'progress'; readonly firstUnchosen: number };

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
  readonly acks: Set<string>;
  readonly refusals: Set<string>;
}

/** Mutable, like the other machines' contexts: drive it as a live actor. */
export interface LeaderContext {
  readonly input: LeaderInput;
  readonly timing: LeaderTiming;
  readonly quorum: number;
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
  /** Leader: where phase 1 started, the next free slot, and the slots in phase 2. */
  fromSlot: number;
  nextSlot: number;
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
  return electionMinMs + value * (electionMaxMs - electionMinMs);
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
      const maxInFlight = context.input.maxInFlight ?? 64;
      while (context.queue.length > 0 && context.inFlight.size < maxInFlight) {
        startSlot(context, context.nextSlot++, context.queue.shift()!, (e) => enqueue.emit(e));
      }
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
      const reported = new Map<number, AcceptedEntry>();
      if (context.input.plant !== 'skip-repropose') {
        for (const entries of context.promises.values()) {
          for (const entry of entries) {
            if (typeof entry.instance !== 'number' || entry.instance < context.fromSlot) continue;
            const best = reported.get(entry.instance);
            if (best === undefined || compareBallots(entry.ballot, best.ballot) > 0)
              reported.set(entry.instance, entry);
          }
        }
      }
      const last = Math.max(context.fromSlot - 1, ...reported.keys());
      context.inFlight = new Map();
      context.queue = [];
      context.leader = context.input.nodeId;
      context.leaderBallot = context.ballot;
      for (let slot = context.fromSlot; slot <= last; slot++) {
        startSlot(context, slot, reported.get(slot)?.value ?? NOOP, (e) => enqueue.emit(e));
      }
      context.nextSlot = last + 1;
      enqueue.emit({ type: 'leadership', leader: context.input.nodeId, ballot: context.ballot });
      sendHeartbeat(context, (e) => enqueue.emit(e));
    }),
    acceptProposal: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'propose') return;
      const maxInFlight = context.input.maxInFlight ?? 64;
      if (context.inFlight.size < maxInFlight)
        startSlot(context, context.nextSlot++, event.value, (e) => enqueue.emit(e));
      else if (context.queue.length < (context.input.maxQueued ?? 10_000))
        context.queue.push(event.value);
      else
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
      if (slot.acks.size < context.quorum) return;
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
      const maxInFlight = context.input.maxInFlight ?? 64;
      while (context.queue.length > 0 && context.inFlight.size < maxInFlight) {
        startSlot(context, context.nextSlot++, context.queue.shift()!, (e) => enqueue.emit(e));
      }
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
    promisedByMajority: ({ context }) => context.promises.size >= context.quorum,
    majorityLost: ({ context }) =>
      quorumImpossible(context.refusals.size, context.input.acceptorCount),
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
    quorum: majority(input.acceptorCount),
    ballot: ZERO_BALLOT,
    highestSeen: ZERO_BALLOT,
    leader: undefined,
    leaderBallot: ZERO_BALLOT,
    firstUnchosen: input.firstUnchosen,
    promises: new Map(),
    pages: new Map(),
    refusals: new Set(),
    fromSlot: input.firstUnchosen,
    nextSlot: input.firstUnchosen,
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

function startSlot(
  context: LeaderContext,
  slot: number,
  value: Value,
  emit: (effect: LeaderEffect) => void,
): void {
  context.inFlight.set(slot, { value, acks: new Set(), refusals: new Set() });
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
