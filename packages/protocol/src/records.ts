import type { Ballot } from './ballot.js';
import type { Instance, Value } from './messages.js';

/**
 * What a node makes durable before it answers (ARCHITECTURE.md: persistence comes before the reply).
 * Pure vocabulary shared by the machines that emit records and the stores that keep them.
 */
export type StoreRecord =
  /** An acceptor promised `ballot` for one instance. */
  | { readonly kind: 'promise'; readonly instance: Instance; readonly ballot: Ballot }
  /** An acceptor promised `ballot` for every slot at or above `fromSlot` (a leader's phase 1). */
  | { readonly kind: 'promiseFrom'; readonly fromSlot: number; readonly ballot: Ballot }
  /** An acceptor accepted `value` at `ballot`. */
  | {
      readonly kind: 'accept';
      readonly instance: Instance;
      readonly ballot: Ballot;
      readonly value: Value;
    }
  /** A value known chosen, kept so a restarted node need not learn it again. */
  | { readonly kind: 'chosen'; readonly instance: Instance; readonly value: Value }
  /** A proposer of this node used `round`: after a restart it starts above it, so no ballot carries two values. */
  | { readonly kind: 'round'; readonly round: number }
  /**
   * Every slot at or below `throughSlot` is chosen and captured in a durable snapshot of the
   * state machine: the acceptor forgets them and refuses any request that reaches them.
   */
  | { readonly kind: 'compact'; readonly throughSlot: number };

export type StoreRecordKind = StoreRecord['kind'];
