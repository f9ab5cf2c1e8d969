import type { StoreRecord } from '@synod/protocol';
import {
  type AcceptedEntry,
  type Ballot,
  compareBallots,
  type Instance,
  LIMITS,
  type Value,
  ZERO_BALLOT,
} from '@synod/protocol';

/** What an acceptor decided about one request: the records to make durable and its answer. */
export interface Verdict<Answer> {
  readonly records: readonly StoreRecord[];
  readonly answer: Answer;
}

export interface PromiseAnswer {
  readonly ok: boolean;
  readonly promised: Ballot;
  readonly accepted: readonly AcceptedEntry[];
  readonly more: boolean;
}

export interface AcceptAnswer {
  readonly ok: boolean;
  readonly promised: Ballot;
}

interface AcceptedValue {
  readonly ballot: Ballot;
  readonly value: Value;
}

const atLeast = (a: Ballot, b: Ballot): boolean => compareBallots(a, b) >= 0;

/**
 * An acceptor's state and seed 001's rules, as plain functions of it. The acceptor machine
 * owns one of these; the simulator's checkers read it. State changes at once, but answers
 * leave only after the records are durable (the machine holds them).
 *
 * A request with a ballot equal to the promised one is granted again: ballots are unique to
 * a proposer (round, nodeId), so an equal ballot is the same proposer's duplicate message.
 */
export class AcceptorState {
  readonly #promised = new Map<Instance, Ballot>();
  readonly #accepted = new Map<Instance, AcceptedValue>();
  /** A distinguished leader's promise for every slot at or above fromSlot. */
  #logPromise: { fromSlot: number; ballot: Ballot } | undefined;
  #highestAcceptedSlot = -1;

  /** Rebuilds the state from durable records, in the order they were written. */
  static recover(records: readonly StoreRecord[]): AcceptorState {
    const state = new AcceptorState();
    for (const record of records) state.#apply(record);
    return state;
  }

  /** The ballot an instance is protected by: its own promise or the leader-wide one. */
  promisedFor(instance: Instance): Ballot {
    const own = this.#promised.get(instance) ?? ZERO_BALLOT;
    const log = this.#logPromise;
    if (
      log !== undefined &&
      typeof instance === 'number' &&
      instance >= log.fromSlot &&
      compareBallots(log.ballot, own) > 0
    ) {
      return log.ballot;
    }
    return own;
  }

  acceptedFor(instance: Instance): AcceptedValue | undefined {
    return this.#accepted.get(instance);
  }

  get highestAcceptedSlot(): number {
    return this.#highestAcceptedSlot;
  }

  /** Phase 1b for one instance (seed 001, step 1a/1b). */
  prepare(ballot: Ballot, instance: Instance): Verdict<PromiseAnswer> {
    const promised = this.promisedFor(instance);
    if (!atLeast(ballot, promised))
      return { records: [], answer: { ok: false, promised, accepted: [], more: false } };
    const records: StoreRecord[] =
      compareBallots(ballot, promised) > 0 ? [{ kind: 'promise', instance, ballot }] : [];
    for (const record of records) this.#apply(record);
    const accepted = this.#accepted.get(instance);
    return {
      records,
      answer: {
        ok: true,
        promised: ballot,
        accepted: accepted === undefined ? [] : [{ instance, ...accepted }],
        more: false,
      },
    };
  }

  /** Phase 1b of a distinguished leader: one promise for every slot at or above fromSlot. */
  prepareLog(
    ballot: Ballot,
    fromSlot: number,
    maxEntries: number = LIMITS.maxEntries,
  ): Verdict<PromiseAnswer> {
    const higher = this.#highestPromiseFrom(fromSlot);
    if (!atLeast(ballot, higher))
      return { records: [], answer: { ok: false, promised: higher, accepted: [], more: false } };
    const log = this.#logPromise;
    const covered = log !== undefined && atLeast(log.ballot, ballot) && log.fromSlot <= fromSlot;
    // Widening an older leader-wide promise down to its lower fromSlot only promises more: safe.
    const records: StoreRecord[] = covered
      ? []
      : [
          {
            kind: 'promiseFrom',
            fromSlot: log === undefined ? fromSlot : Math.min(fromSlot, log.fromSlot),
            ballot,
          },
        ];
    for (const record of records) this.#apply(record);
    const slots = [...this.#accepted.keys()]
      .filter((i): i is number => typeof i === 'number' && i >= fromSlot)
      .sort((a, b) => a - b);
    const accepted = slots
      .slice(0, maxEntries)
      .map((slot) => ({ instance: slot, ...this.#accepted.get(slot)! }));
    return {
      records,
      answer: { ok: true, promised: ballot, accepted, more: slots.length > maxEntries },
    };
  }

  /** Phase 2b (seed 001, step 2). Accepting at a ballot also promises it. */
  accept(ballot: Ballot, instance: Instance, value: Value): Verdict<AcceptAnswer> {
    const promised = this.promisedFor(instance);
    if (!atLeast(ballot, promised)) return { records: [], answer: { ok: false, promised } };
    const current = this.#accepted.get(instance);
    const same =
      current !== undefined &&
      compareBallots(current.ballot, ballot) === 0 &&
      sameBytes(current.value, value);
    const records: StoreRecord[] = same ? [] : [{ kind: 'accept', instance, ballot, value }];
    for (const record of records) this.#apply(record);
    return { records, answer: { ok: true, promised: ballot } };
  }

  #highestPromiseFrom(fromSlot: number): Ballot {
    let highest = this.#logPromise?.ballot ?? ZERO_BALLOT;
    for (const [instance, ballot] of this.#promised) {
      if (
        typeof instance === 'number' &&
        instance >= fromSlot &&
        compareBallots(ballot, highest) > 0
      )
        highest = ballot;
    }
    return highest;
  }

  #apply(record: StoreRecord): void {
    switch (record.kind) {
      case 'promise':
        this.#raise(record.instance, record.ballot);
        break;
      case 'promiseFrom':
        if (
          this.#logPromise === undefined ||
          compareBallots(record.ballot, this.#logPromise.ballot) >= 0
        ) {
          this.#logPromise = { fromSlot: record.fromSlot, ballot: record.ballot };
        }
        break;
      case 'accept':
        this.#raise(record.instance, record.ballot);
        this.#accepted.set(record.instance, { ballot: record.ballot, value: record.value });
        if (typeof record.instance === 'number' && record.instance > this.#highestAcceptedSlot) {
          this.#highestAcceptedSlot = record.instance;
        }
        break;
      default:
        break;
    }
  }

  #raise(instance: Instance, ballot: Ballot): void {
    const current = this.#promised.get(instance);
    if (current === undefined || compareBallots(ballot, current) > 0)
      this.#promised.set(instance, ballot);
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
