import type { AnyActorRef } from 'xstate';
import type { Effect } from '../src/index.js';

/** Collects every effect an actor emits. */
export function record(actor: AnyActorRef): Effect[] {
  const effects: Effect[] = [];
  actor.on('*', (effect: Effect) => void effects.push(effect));
  return effects;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
