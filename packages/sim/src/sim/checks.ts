import type { GroupHost, HostObserver } from '@synod/host';
import { formatBallot, type Membership, type Value } from '@synod/protocol';
import { checkOperations } from '../linearizability/check.js';
import { kvModel } from '../linearizability/kv-model.js';
import type { SafetyChecker } from './checker.js';
import { describeMessage, describeValue, type TraceSink } from './trace.js';
import type { KvOperation } from './world.js';

/**
 * The linearizability search's budget, in steps rather than time so that a seed's verdict is
 * the same on any machine (about 8 s of search here). Pruning makes real histories need far less.
 */
const LINEARIZABILITY_MAX_STEPS = 20_000_000;

/** What the node itself does with its host's events, which the checker hears of too. */
export interface NodeReactions {
  /** Applies a delivered value to the node's state machine: the checker's `applied`. */
  apply(value: Value, slot: number): boolean;
  delivered(node: string, slot: number, value: Value): void;
  chosen(slot: number): void;
  sentAccept(node: string): void;
  /** This node started leading. */
  leads(): void;
}

/** The observer of one life of a node: every event goes to the safety checker and the trace. */
export function checkedObserver(
  checker: SafetyChecker,
  trace: TraceSink | undefined,
  on: NodeReactions,
): HostObserver {
  return {
    proposed: (n, i, v) => {
      trace?.(`${n} proposes ${String(i)} ${describeValue(v)}`);
      checker.proposed(n, i, v);
    },
    chosen: (n, i, v, b) => {
      trace?.(`${n} CHOSE ${String(i)} at ${formatBallot(b)} ${describeValue(v)}`);
      checker.chosen(n, i, v);
      if (typeof i === 'number') on.chosen(i);
    },
    learned: (n, i, v) => {
      trace?.(`${n} learned ${String(i)} ${describeValue(v)}`);
      checker.learned(n, i, v);
    },
    delivered: (n, s, v) => {
      trace?.(`${n} delivers ${s} ${describeValue(v)}`);
      checker.delivered(n, s, v, on.apply(v, s));
      on.delivered(n, s, v);
    },
    failed: (n, e) => checker.failed(n, e),
    ...(trace === undefined
      ? {}
      : {
          received: (n, m, local) =>
            trace(`${n} <- ${m.from}${local ? ' (local)' : ''} ${describeMessage(m)}`),
          timerFired: (n, machine, timer) => trace(`${n} timer ${machine} ${timer}`),
        }),
    acceptorAnswered: (n, m) => checker.acceptorAnswered(n, m),
    sentAccept: (n, i, b, v) => {
      checker.sentAccept(n, i, b, v);
      if (typeof i === 'number') on.sentAccept(n);
    },
    sentPrepare: (n, machine, b) => checker.sentPrepare(n, machine, b),
    leadership: (n, leader) => {
      if (leader === n) on.leads();
    },
  };
}

/** How the run's loop ended. */
export interface RunEnd {
  /** It stopped at the first violation, as asked: that violation is the answer. */
  readonly stoppedEarly: boolean;
  readonly steps: number;
  readonly stepBudget: number;
  readonly finalReadsDone: boolean;
}

/** A run that ran out of steps, or whose final reads never completed, did not make progress. */
export function checkRunEnded(checker: SafetyChecker, end: RunEnd): void {
  if (end.stoppedEarly) {
    // The violation is the answer: what was still running says nothing more.
  } else if (end.steps >= end.stepBudget)
    checker.violate(`liveness: the run did not settle within ${end.stepBudget} steps`);
  else if (!end.finalReadsDone)
    checker.violate('liveness: the final reads did not complete after the heal');
}

/**
 * The clients' history must be linearizable (split by key, Porcupine-style). `stoppedEarly`
 * is asked again after the search, since the liveness checks may have just added a violation.
 */
export function checkHistory(
  checker: SafetyChecker,
  history: readonly KvOperation[],
  stoppedEarly: () => boolean,
): 'linearizable' | 'not-linearizable' | 'unknown' {
  const linearizability = stoppedEarly()
    ? { verdict: 'unknown' as const }
    : checkOperations(kvModel, history, { maxSteps: LINEARIZABILITY_MAX_STEPS });
  if (linearizability.verdict === 'not-linearizable') {
    checker.violate(
      `linearizability: the history of key partition ${linearizability.partition} (${linearizability.operations} operations) is not linearizable`,
    );
  } else if (linearizability.verdict === 'unknown' && !stoppedEarly()) {
    // A history nobody could decide is not a pass: it may hide the violation the run is for.
    checker.violate(
      `linearizability: undecided within ${LINEARIZABILITY_MAX_STEPS} search steps (${history.length} operations)`,
    );
  }
  return linearizability.verdict;
}

/** What a run covered, for the batch's totals. */
export interface Coverage {
  /** Membership changes in the log, as the node that delivered most of them knows them. */
  readonly membershipChanges: number;
  readonly membershipShapes: MembershipShapes;
  /** Peer messages the nodes did not believe, by reason, over all their lives (PeerFilter). */
  readonly droppedPeerMessages: Readonly<Record<string, number>>;
}

/** Counted from the hosts still up and those of earlier lives (for what they dropped). */
export function coverage(live: readonly GroupHost[], gone: readonly GroupHost[]): Coverage {
  const known = live
    .map((host) => host.membership)
    .reduce<Membership | undefined>(
      (most, m) => (most === undefined || m.changes.length > most.changes.length ? m : most),
      undefined,
    );
  const droppedPeerMessages: Record<string, number> = {};
  for (const host of [...live, ...gone])
    for (const [reason, count] of Object.entries(host.droppedPeerMessages))
      droppedPeerMessages[reason] = (droppedPeerMessages[reason] ?? 0) + count;
  return {
    membershipChanges: known?.changes.length ?? 0,
    membershipShapes: membershipShapes(known),
    droppedPeerMessages,
  };
}

/** Kinds of membership change chosen in one run (counts), as the README promises to cover. */
export interface MembershipShapes {
  /** Changes to an even number of members (where a majority is more than half plus a half). */
  readonly even: number;
  readonly odd: number;
  /** Changes chosen within the window of the one before: the earlier is not in force yet. */
  readonly withinWindow: number;
  /** Changes in the slot right after another. */
  readonly adjacent: number;
}

function membershipShapes(membership: Membership | undefined): MembershipShapes {
  const changes = membership?.changes ?? [];
  let even = 0;
  let withinWindow = 0;
  let adjacent = 0;
  changes.forEach((change, i) => {
    if (change.members.length % 2 === 0) even++;
    const gap = i === 0 ? Number.POSITIVE_INFINITY : change.slot - changes[i - 1]!.slot;
    if (gap < membership!.window) withinWindow++;
    if (gap === 1) adjacent++;
  });
  return { even, odd: changes.length - even, withinWindow, adjacent };
}
