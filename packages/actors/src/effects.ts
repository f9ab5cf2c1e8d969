import type { Ballot, Instance, PeerMessage, StoreRecord, Value } from '@synod/protocol';

/**
 * Where a message goes. Machines name roles, not subjects: the node runtime maps these to
 * NATS subjects, the simulator to simulated links.
 */
export type Address =
  | { readonly kind: 'acceptors' }
  | { readonly kind: 'learners' }
  /** The reply address a request came with (a NATS reply subject, or a node id in the simulator). */
  | { readonly kind: 'reply'; readonly to: string };

export const ACCEPTORS: Address = Object.freeze({ kind: 'acceptors' });
export const LEARNERS: Address = Object.freeze({ kind: 'learners' });

/**
 * What a machine asks its host to do. Machines never touch a socket, a file or a clock
 * (ARCHITECTURE.md): they emit these, and the host executes them and feeds the outcome back as
 * events (`persisted`, `timer`, `message`).
 */
export type Effect =
  | { readonly type: 'send'; readonly to: Address; readonly message: PeerMessage }
  /** Make these records durable, then send `{ type: 'persisted', id }`. Ids increase; completions come in order. */
  | { readonly type: 'persist'; readonly id: number; readonly records: readonly StoreRecord[] }
  /** (Re)start a named timer; when it fires, send `{ type: 'timer', timer }`. */
  | { readonly type: 'setTimer'; readonly timer: string; readonly delayMs: number }
  | { readonly type: 'cancelTimer'; readonly timer: string }
  /** A proposer saw a majority accept `value` at `ballot`: it is chosen. */
  | {
      readonly type: 'chosen';
      readonly instance: Instance;
      readonly ballot: Ballot;
      readonly value: Value;
    }
  /** A learner learned the chosen value of an instance (each instance once). */
  | { readonly type: 'learned'; readonly instance: Instance; readonly value: Value }
  /** A learner hands over log slots strictly in order, each exactly once. */
  | { readonly type: 'deliver'; readonly slot: number; readonly value: Value }
  /** A log operation needs paxos(instance, value) run; the host answers with `proposalDone`. */
  | { readonly type: 'propose'; readonly instance: number; readonly value: Value };

export type EffectType = Effect['type'];

/** Events every host sends. Each machine also accepts its own. */
export interface MessageEvent {
  readonly type: 'message';
  readonly message: PeerMessage;
  /** Where a reply should go, when the sender wants one. */
  readonly replyTo?: string;
}

export interface PersistedEvent {
  readonly type: 'persisted';
  readonly id: number;
}

export interface TimerEvent {
  readonly type: 'timer';
  readonly timer: string;
}

/**
 * The host tells every machine of the node that reserves rounds (the leader, each proposer)
 * the highest round any of them reserved: two machines of one node must never share a
 * ballot, or one ballot could carry two values.
 */
export interface RoundFloorEvent {
  readonly type: 'roundFloor';
  readonly round: number;
}

/**
 * A value this machine saw a majority accept: tell the host (`chosen`), and every learner
 * (a decide, which carries the value so no learner has to ask for it).
 */
export function chosenEffects(
  who: { readonly group: string; readonly nodeId: string },
  instance: Instance,
  ballot: Ballot,
  value: Value,
): readonly Effect[] {
  const { group, nodeId } = who;
  return [
    { type: 'chosen', instance, ballot, value },
    {
      type: 'send',
      to: LEARNERS,
      message: { type: 'decide', group, from: nodeId, instance, ballot, value },
    },
  ];
}
