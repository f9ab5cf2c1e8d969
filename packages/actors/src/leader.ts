import { compareBallots, majorityImpossible, ZERO_BALLOT } from '@synod/protocol';
import { enqueueActions, setup } from 'xstate';
import {
  armElection,
  countPromise,
  followHeartbeat,
  forgetLeader,
  refuseProposal,
  reserveRound,
  sameBallot,
  sendPrepareLog,
} from './leader-candidate.js';
import {
  DEFAULT_LEADER_TIMING,
  type LeaderContext,
  type LeaderEffect,
  type LeaderEvent,
  type LeaderInput,
} from './leader-context.js';
import {
  acceptProposal,
  countAccepted,
  countWideningPromise,
  noteProgress,
  stepDown,
  takeOver,
  tick,
} from './leader-leading.js';
import { promiseRound } from './leader-promises.js';
import {
  abandonReadCheck,
  checkLeadership,
  countReadIndexAnswer,
  refuseLeadershipCheck,
} from './leader-reads.js';
import { PAXOS_RULES } from './rules.js';

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
    armElection: enqueueActions(({ context, enqueue }) => armElection(context, enqueue.emit)),
    followHeartbeat: enqueueActions(({ context, event, enqueue }) =>
      followHeartbeat(context, event, enqueue.emit),
    ),
    refuseProposal: enqueueActions(({ context, event, enqueue }) =>
      refuseProposal(context, event, enqueue.emit),
    ),
    noteProgress: enqueueActions(({ context, event, enqueue }) =>
      noteProgress(context, event, enqueue.emit),
    ),
    forgetLeader: enqueueActions(({ context, enqueue }) => forgetLeader(context, enqueue.emit)),
    reserveRound: enqueueActions(({ context, enqueue }) => reserveRound(context, enqueue.emit)),
    sendPrepareLog: enqueueActions(({ context, enqueue }) => sendPrepareLog(context, enqueue.emit)),
    countPromise: enqueueActions(({ context, event, enqueue }) =>
      countPromise(context, event, enqueue.emit),
    ),
    takeOver: enqueueActions(({ context, enqueue }) => takeOver(context, enqueue.emit)),
    countWideningPromise: enqueueActions(({ context, event, enqueue }) =>
      countWideningPromise(context, event, enqueue.emit),
    ),
    acceptProposal: enqueueActions(({ context, event, enqueue }) =>
      acceptProposal(context, event, enqueue.emit),
    ),
    countAccepted: enqueueActions(({ context, event, enqueue }) =>
      countAccepted(context, event, enqueue.emit),
    ),
    tick: enqueueActions(({ context, enqueue }) => tick(context, enqueue.emit)),
    stepDown: enqueueActions(({ context, enqueue }) => {
      abandonReadCheck(context, enqueue.emit);
      stepDown(context, enqueue.emit);
    }),
    checkLeadership: enqueueActions(({ context, event, enqueue }) =>
      checkLeadership(context, event, enqueue.emit),
    ),
    refuseLeadershipCheck: enqueueActions(({ context, event, enqueue }) =>
      refuseLeadershipCheck(context, event, enqueue.emit),
    ),
    countReadIndexAnswer: enqueueActions(({ context, event, enqueue }) =>
      countReadIndexAnswer(context, event, enqueue.emit),
    ),
  },
  guards: {
    isOurPersist: ({ context, event }) =>
      event.type === 'persisted' && event.id === context.persistId,
    isOurPromise: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'promise' &&
      event.message.instance === undefined &&
      sameBallot(event.message.ballot, context.ballot),
    isOurAccepted: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'accepted' &&
      event.message.value === undefined &&
      sameBallot(event.message.ballot, context.ballot),
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
      context.rules.isQuorum(
        new Set(context.phase1.promises.keys()),
        context.membership.membersAt(context.fromSlot),
      ),
    majorityLost: ({ context }) =>
      majorityImpossible(context.phase1.refusals, context.membership.membersAt(context.fromSlot)),
    deposed: ({ context }) => context.rules.deposes(context.highestSeen, context.ballot),
    isOurReadIndexAnswer: ({ context, event }) =>
      event.type === 'message' &&
      event.message.type === 'readIndexAnswer' &&
      sameBallot(event.message.ballot, context.ballot),
    isTimer: ({ event }, params: { timer: string }) =>
      event.type === 'timer' && event.timer === params.timer,
  },
}).createMachine({
  id: 'leader',
  context: ({ input }) => ({
    input,
    timing: input.timing ?? DEFAULT_LEADER_TIMING,
    rules: input.rules ?? PAXOS_RULES,
    membership: input.membership,
    ballot: ZERO_BALLOT,
    highestSeen: ZERO_BALLOT,
    leader: undefined,
    leaderBallot: ZERO_BALLOT,
    firstUnknownSlot: input.firstUnknownSlot,
    phase1: promiseRound(input.firstUnknownSlot),
    fromSlot: input.firstUnknownSlot,
    nextSlot: input.firstUnknownSlot,
    promisedFrom: new Map(),
    widening: undefined,
    recovered: new Map(),
    recoveredThrough: input.firstUnknownSlot - 1,
    readCheck: undefined,
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
    checkLeadership: { actions: 'refuseLeadershipCheck' },
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
        checkLeadership: { actions: 'checkLeadership' },
        message: [
          { guard: 'isOurAccepted', actions: 'countAccepted' },
          { guard: 'isOurReadIndexAnswer', actions: 'countReadIndexAnswer' },
          { guard: 'isOurPromise', actions: 'countWideningPromise' },
          { guard: 'isCurrentHeartbeat', target: 'follower', actions: 'followHeartbeat' },
        ],
        timer: { guard: { type: 'isTimer', params: { timer: 'heartbeat' } }, actions: 'tick' },
      },
      always: { guard: 'deposed', target: 'follower' },
    },
  },
});
