import type { LeaderEffect, PersistedEvent, ProposalDoneEvent, TimerEvent } from '@synod/actors';
import type { ActorRef, EventObject, Snapshot } from 'xstate';

/**
 * What the host knows of an actor it runs: it emits effects (`Emitted`: the common ones, or
 * the leader's), which the host executes. Events go to an actor only through a typed
 * reference to it (tell) or through its Feedback.
 */
export type HostedActor<Emitted extends EventObject = LeaderEffect> = ActorRef<
  Snapshot<unknown>,
  never,
  Emitted
>;

/** The events the host sends back for an actor's effects: persisted, timer fired, proposal done. */
export type HostFeedback = PersistedEvent | TimerEvent | ProposalDoneEvent;

/**
 * Hands an actor the feedback for the effects it emits. Written where the actor is made,
 * with its own type, so each `tell` there is checked against the events that actor takes.
 */
export type Feedback = (event: HostFeedback) => void;

/** An actor that takes events of type E, as far as `tell` needs it. */
interface Tellable<E extends EventObject> {
  getSnapshot(): { readonly status: string };
  send(event: E): void;
}

/**
 * Sends only to a running actor: an operation may finish before a late answer for it, and a
 * machine stopped by an invariant it caught must not be told (XState would warn on every
 * message, and a broken run would flood its output).
 */
export function tell<E extends EventObject>(actor: Tellable<E>, event: E): void {
  if (actor.getSnapshot().status === 'active') actor.send(event);
}
