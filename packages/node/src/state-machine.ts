import type { ClientWrite, Command, PlainData } from '@synod/protocol';
import { Packr } from 'msgpackr';

/** Why a command could not be applied; the same on every replica, so replicas stay identical. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/**
 * A deterministic state machine the node applies committed commands to, in log order. Given
 * the same commands it must reach the same state on every replica: no clock, no randomness,
 * no I/O. A bad command throws CommandError (recorded as that write's result).
 */
export interface StateMachine {
  apply(command: Command): PlainData;
  read(command: Command): PlainData;
  /** Equal on replicas that applied the same commands; cheap to compute (status asks often). */
  digest(): string;
  /** The whole state as plain data (strings, numbers, arrays, maps), for snapshots. */
  exportState(): unknown;
}

/** A kind of state machine: how to make a new one and how to rebuild one from a snapshot. */
export interface StateMachineKind {
  readonly name: string;
  create(): StateMachine;
  /** Throws TypeError when `state` is not what exportState() of this kind returns. */
  import(state: unknown): StateMachine;
}

/** Snapshot encoding: plain arrays and maps, no records or structured clones. */
const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });

interface SnapshotDoc {
  readonly v: 1;
  readonly machine: string;
  readonly state: unknown;
  /** clientId, seq, and the result: the value, or an error's message. */
  readonly clients: [string, number, { ok: PlainData } | { error: string }][];
}

/**
 * A state machine with client sessions: it remembers the last (seq, result) of every client,
 * so a retried write is applied once and the retry gets the first result, whatever the
 * machine. Snapshots carry both.
 */
export class ReplicatedState {
  readonly kind: StateMachineKind;
  readonly #machine: StateMachine;
  readonly #lastByClient = new Map<string, { seq: number; result: PlainData | CommandError }>();

  constructor(kind: StateMachineKind, machine: StateMachine = kind.create()) {
    this.kind = kind;
    this.#machine = machine;
  }

  /** Applies one committed write; returns its result (or the first result of a retry). */
  applyWrite(write: ClientWrite): PlainData | CommandError {
    const last = this.#lastByClient.get(write.clientId);
    if (last !== undefined && write.seq <= last.seq) {
      return write.seq === last.seq
        ? last.result
        : new CommandError(
            `seq ${write.seq} of ${write.clientId} is older than its last write (${last.seq})`,
          );
    }
    let result: PlainData | CommandError;
    try {
      result = this.#machine.apply(write.command);
    } catch (error) {
      result = error instanceof CommandError ? error : new CommandError(String(error));
    }
    this.#lastByClient.set(write.clientId, { seq: write.seq, result });
    return result;
  }

  read(command: Command): PlainData {
    return this.#machine.read(command);
  }

  digest(): string {
    return this.#machine.digest();
  }

  /** The whole state (the machine's and every client's last result), for restore(). */
  snapshot(): Uint8Array {
    const doc: SnapshotDoc = {
      v: 1,
      machine: this.kind.name,
      state: this.#machine.exportState(),
      clients: [...this.#lastByClient].map(([clientId, { seq, result }]) => [
        clientId,
        seq,
        result instanceof CommandError ? { error: result.message } : { ok: result },
      ]),
    };
    // A copy: pack() returns a view into msgpackr's shared buffer, and snapshots are kept.
    return new Uint8Array(packr.pack(doc));
  }

  /** Rebuilds a state from snapshot() bytes of the same kind of machine; throws otherwise. */
  static restore(kind: StateMachineKind, bytes: Uint8Array): ReplicatedState {
    const doc = packr.unpack(bytes) as Partial<SnapshotDoc> | null;
    if (doc?.v !== 1 || typeof doc.machine !== 'string' || !Array.isArray(doc.clients))
      throw new TypeError('not a synod state snapshot');
    if (doc.machine !== kind.name)
      throw new TypeError(
        `the snapshot is of a ${doc.machine} state machine, this node runs ${kind.name}; every node of a group must run the same machine`,
      );
    const state = new ReplicatedState(kind, kind.import(doc.state));
    for (const [clientId, seq, result] of doc.clients) {
      state.#lastByClient.set(clientId, {
        seq,
        result: 'error' in result ? new CommandError(result.error) : result.ok,
      });
    }
    return state;
  }
}

export function stringArg(command: Command, name: string): string {
  const value = command[name];
  if (typeof value !== 'string') throw new CommandError(`${command.op} needs a string "${name}"`);
  return value;
}
