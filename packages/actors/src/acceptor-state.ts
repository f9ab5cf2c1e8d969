import type { StoreRecord } from '@synod/protocol';
import {
  type AcceptedEntry,
  type Ballot,
  compareBallots,
  type Instance,
  LIMITS,
  maxBallot,
  type Value,
  ZERO_BALLOT,
} from '@synod/protocol';
import { sameBytes } from './bytes.js';
import { PAXOS_RULES, type ProtocolRules } from './rules.js';

export { sameBytes } from './bytes.js';

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
  /** Refused because these slots were compacted away here (see StoreRecord 'compact'). */
  readonly compactedThrough?: number;
  /** A prepareLog answer echoes where it starts, so a leader can tell its pages apart. */
  readonly fromSlot?: number;
}

/**
 * Most value bytes in one prepareLog answer: with the envelope it must fit in one message
 * (1 MiB by default). Beyond it the answer says `more` and the leader asks for the next page.
 */
export const PROMISE_PAGE_BYTES = 512 * 1024;

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
  /** The highest ballot promised (or accepted) for any log slot, ever: ReadIndex answers it. */
  #highestSlotBallot: Ballot = ZERO_BALLOT;
  /** Slots at or below are chosen, captured in this node's snapshot, and forgotten here. */
  #compactedThrough = -1;
  #rules: Pick<ProtocolRules, 'compactionFloor'> = PAXOS_RULES;

  /** Rebuilds the state from durable records, in the order they were written. */
  static recover(
    records: readonly StoreRecord[],
    rules: Pick<ProtocolRules, 'compactionFloor'> = PAXOS_RULES,
  ): AcceptorState {
    const state = new AcceptorState();
    state.#rules = rules;
    for (const record of records) state.#apply(record);
    return state;
  }

  get compactedThrough(): number {
    return this.#compactedThrough;
  }

  /** Whether a log slot was compacted away: no request may touch it any more. */
  #compacted(instance: Instance): boolean {
    return typeof instance === 'number' && instance <= this.#compactedThrough;
  }

  /**
   * Forgets every slot at or below `throughSlot`. Only for slots known chosen and captured in a
   * durable snapshot of the state machine: from now on any phase 1 that reaches them is
   * refused (with `compactedThrough`), so no quorum can form that lacks this acceptor's
   * acceptances there, and the slots can never be decided again.
   */
  compact(throughSlot: number): readonly StoreRecord[] {
    if (throughSlot <= this.#compactedThrough) return [];
    const record: StoreRecord = { kind: 'compact', throughSlot };
    this.#apply(record);
    return [record];
  }

  /**
   * The fewest records that recover this state: what a rewritten store file holds. The
   * compaction mark comes first, so recovery forgets nothing it should keep.
   */
  liveRecords(): StoreRecord[] {
    const records: StoreRecord[] = [];
    if (this.#compactedThrough >= 0)
      records.push({ kind: 'compact', throughSlot: this.#compactedThrough });
    if (this.#logPromise !== undefined) records.push({ kind: 'promiseFrom', ...this.#logPromise });
    for (const [instance, ballot] of this.#promised) {
      const accepted = this.#accepted.get(instance);
      if (accepted === undefined || compareBallots(ballot, accepted.ballot) > 0)
        records.push({ kind: 'promise', instance, ballot });
    }
    for (const [instance, { ballot, value }] of this.#accepted)
      records.push({ kind: 'accept', instance, ballot, value });
    return records;
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

  /**
   * The highest ballot this acceptor promised or accepted for any log slot, compacted ones
   * included: what it answers a leader's ReadIndex check. Higher than the leader's ballot
   * means another proposer may have taken the log over (registers, keyed by string, are
   * left out: their ballots say nothing about who leads the log).
   */
  get highestSlotBallot(): Ballot {
    return this.#highestSlotBallot;
  }

  /** Phase 1b for one instance (seed 001, step 1a/1b). */
  prepare(ballot: Ballot, instance: Instance): Verdict<PromiseAnswer> {
    const promised = this.promisedFor(instance);
    if (this.#compacted(instance)) return { records: [], answer: this.#refuseCompacted(promised) };
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
    maxBytes: number = PROMISE_PAGE_BYTES,
  ): Verdict<PromiseAnswer> {
    const higher = this.#highestPromiseFrom(fromSlot);
    if (fromSlot <= this.#compactedThrough)
      return { records: [], answer: this.#refuseCompacted(higher) };
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
    const accepted: AcceptedEntry[] = [];
    let bytes = 0;
    for (const slot of slots) {
      const entry = this.#accepted.get(slot)!;
      if (accepted.length >= maxEntries) break;
      // Always at least one entry per page, so paging makes progress.
      if (accepted.length > 0 && bytes + entry.value.length > maxBytes) break;
      bytes += entry.value.length;
      accepted.push({ instance: slot, ...entry });
    }
    return {
      records,
      answer: {
        ok: true,
        promised: ballot,
        accepted,
        more: slots.length > accepted.length,
        fromSlot,
      },
    };
  }

  /** Phase 2b (seed 001, step 2). Accepting at a ballot also promises it. */
  accept(ballot: Ballot, instance: Instance, value: Value): Verdict<AcceptAnswer> {
    const promised = this.promisedFor(instance);
    if (!atLeast(ballot, promised) || this.#compacted(instance))
      return { records: [], answer: { ok: false, promised } };
    const current = this.#accepted.get(instance);
    const sameBallot = current !== undefined && compareBallots(current.ballot, ballot) === 0;
    const same = sameBallot && sameBytes(current.value, value);
    // A ballot carries one value; a second one under it means a proposer reused a ballot.
    if (sameBallot && !same) return { records: [], answer: { ok: false, promised } };
    const records: StoreRecord[] = same ? [] : [{ kind: 'accept', instance, ballot, value }];
    for (const record of records) this.#apply(record);
    return { records, answer: { ok: true, promised: ballot } };
  }

  #refuseCompacted(promised: Ballot): PromiseAnswer {
    return {
      ok: false,
      promised,
      accepted: [],
      more: false,
      compactedThrough: this.#compactedThrough,
    };
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
        this.#highestSlotBallot = maxBallot(this.#highestSlotBallot, record.ballot);
        break;
      case 'compact':
        if (record.throughSlot > this.#compactedThrough) {
          forgetThrough(this.#promised, record.throughSlot);
          forgetThrough(this.#accepted, record.throughSlot);
          this.#compactedThrough = this.#rules.compactionFloor(
            this.#compactedThrough,
            record.throughSlot,
          );
          this.#highestAcceptedSlot = Math.max(this.#highestAcceptedSlot, this.#compactedThrough);
        }
        break;
      case 'accept':
        // A record written before a compaction that a later rewrite has not dropped yet.
        if (this.#compacted(record.instance)) break;
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
    if (typeof instance === 'number')
      this.#highestSlotBallot = maxBallot(this.#highestSlotBallot, ballot);
    if (this.#compacted(instance)) return;
    const current = this.#promised.get(instance);
    if (current === undefined || compareBallots(ballot, current) > 0)
      this.#promised.set(instance, ballot);
  }
}

function forgetThrough(map: Map<Instance, unknown>, throughSlot: number): void {
  for (const instance of map.keys())
    if (typeof instance === 'number' && instance <= throughSlot) map.delete(instance);
}
