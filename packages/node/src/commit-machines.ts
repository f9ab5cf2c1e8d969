import {
  type CommitRules,
  coordinatorMachine,
  type Outcome,
  rmMachine,
  twoPhaseCoordinatorMachine,
  type Vote,
} from '@synod/commit';
import type { ClientResponse } from '@synod/protocol';
import { type AnyActorRef, createActor } from 'xstate';
import type { TxnMeta, TxnPart } from './kv-transactions.js';

/*
 * The commit machines a CommitNode runs, as it makes them: their timings on real processes
 * (the simulator's are shorter) and what each is told of its transaction.
 */

/** How long a coordinator waits for every RM's vote before it takes their instances over. */
export const FIRST_PHASE_MS = 500;
/** A coordinator started by an RM's question takes over sooner: the RMs already voted. */
export const TAKEOVER_PHASE_MS = 150;
/**
 * Resends of a coordinator's and an RM's last message: well above a transaction's usual 5-30 ms
 * on a loaded machine, so messages are sent again for a loss, not for a slow machine.
 */
export const RESEND_MS = 200;
/**
 * A decided coordinator stays a while to answer RMs that missed the outcome; one that asks later
 * meets a coordinator taking over, whose phase 1 finds the same outcome.
 */
export const LINGER_MS = 2_000;
/** How often a leader looks for transactions its group voted on and has no RM for. */
export const RECOVER_MS = 500;
/**
 * Coordinator rounds. Every coordinator of this node while it leads the coordinating group at
 * leadership round L uses rounds in [L·2^16 + 1, (L+1)·2^16 − 1] and never above (maxRound):
 * a later leadership of this node has a higher L, so no two lives of a coordinator share a
 * ballot. Within one leadership, two coordinators of one transaction follow each other (the
 * second starts once the first decided and left), and a second that meets the first's
 * ballot finds every instance chosen in any majority's promises, so it proposes the same
 * values. A leader's round is above every earlier leader's: it never needs a round past its
 * range, except against a forged ballot, and then it stops rather than collide.
 */
export const ROUNDS_PER_LEADERSHIP = 2 ** 16;

export interface Running {
  readonly role: 'coordinator' | 'rm';
  readonly meta: TxnMeta;
  /** The RM's group, for an RM. */
  readonly rm?: string;
  readonly actor: AnyActorRef;
  readonly timers: Map<string, NodeJS.Timeout>;
  /** Clients waiting for a coordinator's outcome. */
  readonly waiting: ((response: ClientResponse) => void)[];
  /** A coordinator's writes per RM group (the first coordinator of a transaction only). */
  readonly writes?: ReadonlyMap<string, readonly TxnPart[]>;
}

/** Paxos Commit's (or Faster's) coordinator: the first of a transaction, or one taking over. */
export function paxosCoordinator(
  meta: TxnMeta,
  nodeId: string,
  initial: boolean,
  rounds: { readonly min: number; readonly max: number },
  rules: CommitRules | undefined,
): AnyActorRef {
  return createActor(coordinatorMachine, {
    input: {
      txid: meta.txid,
      nodeId,
      rms: meta.rms,
      acceptorCount: meta.acceptors.length,
      initial,
      phaseTimeoutMs: initial ? FIRST_PHASE_MS : TAKEOVER_PHASE_MS,
      announces: meta.protocol !== 'faster-paxos-commit',
      minRound: rounds.min,
      maxRound: rounds.max,
      resendMs: RESEND_MS,
      ...(rules === undefined ? {} : { rules }),
    },
  });
}

/** Two-phase commit's coordinator, with the outcome its group's log holds for it, if any. */
export function twoPhaseCoordinator(
  meta: TxnMeta,
  nodeId: string,
  logged: Outcome | undefined,
): AnyActorRef {
  return createActor(twoPhaseCoordinatorMachine, {
    input: {
      txid: meta.txid,
      nodeId,
      rms: meta.rms,
      voteTimeoutMs: FIRST_PHASE_MS,
      resendMs: RESEND_MS,
      recovered: logged === undefined ? [] : [{ kind: 'outcome', outcome: logged }],
    },
  });
}

/**
 * The RM of group `rm` with its group's vote: `logged` when found in the group's state
 * (recovery); otherwise the machine asks for its vote to be logged, which it already is.
 */
export function resourceManager(
  meta: TxnMeta,
  rm: string,
  vote: Vote,
  logged: boolean,
  rules: CommitRules | undefined,
): AnyActorRef {
  return createActor(rmMachine, {
    input: {
      txid: meta.txid,
      rm,
      rms: meta.rms,
      vote,
      protocol: meta.protocol,
      acceptorCount: meta.acceptors.length,
      recovered: logged ? [{ kind: 'vote', vote }] : [],
      resendMs: RESEND_MS,
      ...(rules === undefined ? {} : { rules }),
    },
  });
}
