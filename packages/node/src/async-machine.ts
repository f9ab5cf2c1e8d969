import type { Admission, ClientWrite, Command, PlainData } from '@synod/protocol';

export type { Admission } from '@synod/protocol';

/** What one write did on an asynchronous machine. */
export type WriteResult =
  | { readonly ok: true; readonly result: PlainData }
  | { readonly ok: false; readonly message: string; readonly sqlState?: string };

/**
 * A state machine that lives outside the node's memory, in a database: applying is
 * asynchronous, and the machine keeps its own record of the last slot it applied (so after a
 * crash the node replays the log from its compaction point and the machine skips what it
 * has). It must
 * apply each slot exactly once and in order, and give every replica the same results.
 * `@synod/pg-applier`'s SQL machine is one.
 */
export interface AsyncStateMachine {
  readonly name: string;
  /** The last slot applied, durably (-1: none). */
  appliedThrough(): Promise<number>;
  /**
   * Checks a write before it enters the log, on the node that takes it: undefined lets it
   * in as it is, `refused` says why not, `command` lets in this command instead (what the
   * replicas need to apply it alike, computed here once: e.g. a table's definition).
   */
  admit(command: Command): Admission | undefined | Promise<Admission | undefined>;
  /**
   * Applies consecutive slots (those at or below appliedThrough() are skipped); returns each
   * applied slot's write results. Rejects when the machine cannot apply at all (a lost
   * database connection): nothing of the call is applied, and the node tries again.
   */
  apply(
    entries: readonly { readonly slot: number; readonly writes: readonly ClientWrite[] }[],
  ): Promise<Map<number, WriteResult[]>>;
  /** Answers a read from the machine's current state. Rejects with a message for a bad one. */
  read(command: Command): Promise<PlainData>;
  /**
   * The machine's state through its applied slot, for a peer behind this node's compacted
   * log. A machine without it never lets the node compact (every peer replays the log).
   */
  snapshot?(): Promise<{ throughSlot: number; bytes: Uint8Array }>;
  /**
   * Makes the machine a peer's snapshot; changes nothing if it has applied past it, unless
   * `replace` (a repair of a machine whose own record of its position is not to be believed).
   */
  install?(
    snapshot: { readonly throughSlot: number; readonly bytes: Uint8Array },
    options?: { readonly replace?: boolean },
  ): Promise<void>;
  /**
   * Set by the node: the machine calls it when it applied a `{"op":"verify"}` write, with the
   * slot and the digest of its state there, equal on every replica that is in step. A
   * machine without verify writes never calls it.
   */
  verified?: ((slot: number, digest: string) => void) | undefined;
  /**
   * Set by the node: puts a write of the machine's own in the log and resolves once this
   * node applied it (rejects with the refusal or the failure). The SQL machine stages a
   * table's rows so when they are more than one entry carries.
   */
  logWrite?: ((command: Command, clientId: string, seq: number) => Promise<void>) | undefined;
  /**
   * The commit node's reads of the machine's transactions across groups (`txn_open`,
   * `txn_decided`), answered at once from what it has applied; undefined for other reads. A
   * machine without it takes no part in transactions across groups.
   */
  readTransactions?(command: Command): PlainData | undefined;
  /** Whether the node's own write `command` must have its slot to itself (SQL's PREPARE). */
  aloneInSlot?(command: Command): boolean;
  /** Equal on replicas that applied the same slots. May be slow (status asks for it). */
  digest(): Promise<string>;
  close(): Promise<void>;
}
