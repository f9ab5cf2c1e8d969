import type { AnyActorRef } from 'xstate';

/**
 * Sends only to a running actor: an operation may finish before a late answer for it, and a
 * machine stopped by an invariant it caught must not be told (XState would warn on every
 * message, and a broken run would flood its output).
 */
export function tell(
  actor: AnyActorRef,
  event: { readonly type: string; readonly [field: string]: unknown },
): void {
  if (actor.getSnapshot().status === 'active') actor.send(event);
}
