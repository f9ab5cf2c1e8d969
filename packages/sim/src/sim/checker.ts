import { type AcceptorState, isNoop } from '@synod/actors';
import type { HostObserver } from '@synod/host';
import {
  type Ballot,
  compareBallots,
  formatBallot,
  type Instance,
  type PeerMessage,
  type Value,
} from '@synod/protocol';
import { hex, type KvStore } from './kv.js';

/**
 * Safety invariants, checked as the events happen (so after every step of the simulation):
 * agreement (one value per key and slot, across proposers and learners of every node),
 * validity (a chosen value was proposed for that instance), learners' logs are prefixes of one
 * another and apply each write once, and no acknowledged append is lost.
 */
export class SafetyChecker implements HostObserver {
  readonly violations: string[] = [];
  readonly #chosen = new Map<Instance, { value: string; by: string }>();
  readonly #proposed = new Map<Instance, Set<string>>();
  readonly #acked = new Map<number, string>();
  readonly #lastDelivered = new Map<string, number>();
  readonly #appliedAt = new Map<string, Map<string, number>>();
  readonly #submitted = new Set<string>();
  /** Per node: the promises and acceptances its acceptor answered, by instance (highest ballot). */
  readonly #answeredPromises = new Map<string, Map<Instance, Ballot>>();
  readonly #answeredAccepts = new Map<string, Map<Instance, Ballot>>();
  /** What was accepted under each (instance, ballot): a ballot must never carry two values. */
  readonly #valueAtBallot = new Map<string, string>();
  #now: () => number;
  readonly #onViolation: ((message: string) => void) | undefined;

  /** `onViolation` hears every violation as it happens (a trace prints them inline). */
  constructor(now: () => number, onViolation?: (message: string) => void) {
    this.#now = now;
    this.#onViolation = onViolation;
  }

  proposed(_node: string, instance: Instance, value: Value): void {
    const set = this.#proposed.get(instance) ?? new Set<string>();
    set.add(hex(value));
    this.#proposed.set(instance, set);
  }

  chosen(node: string, instance: Instance, value: Value): void {
    this.#agree(`proposer on ${node}`, instance, value);
  }

  learned(node: string, instance: Instance, value: Value): void {
    this.#agree(`learner on ${node}`, instance, value);
  }

  /** Leader mode: a client handed this value to the group (its slot is the leader's choice). */
  submitted(value: Value): void {
    this.#submitted.add(hex(value));
  }

  /** `applied`: whether the state machine applied it (false for no-ops and deduplicated retries). */
  delivered(node: string, slot: number, value: Value, applied = true): void {
    this.#agree(`delivery on ${node}`, slot, value);
    const last = this.#lastDelivered.get(node) ?? -1;
    if (slot !== last + 1)
      this.#violate(`log order: ${node} delivered slot ${slot} after slot ${last}`);
    this.#lastDelivered.set(node, slot);
    if (isNoop(value) || !applied) return;
    const appliedAt = this.#appliedAt.get(node) ?? new Map<string, number>();
    this.#appliedAt.set(node, appliedAt);
    const key = hex(value);
    const earlier = appliedAt.get(key);
    if (earlier !== undefined && earlier !== slot)
      this.#violate(`applied twice: ${node} applied one write at slots ${earlier} and ${slot}`);
    appliedAt.set(key, slot);
  }

  failed(node: string, error: unknown): void {
    this.#violate(
      `node ${node} stopped on an error: ${error instanceof Error ? error.message : String(error)}`,
    );
  }

  acceptorAnswered(node: string, message: PeerMessage): void {
    if (message.type === 'promise' && message.ok && message.instance !== undefined) {
      raise(this.#answeredPromises, node, message.instance, message.ballot);
    } else if (message.type === 'accepted' && message.ok && message.value === undefined) {
      raise(this.#answeredAccepts, node, message.instance, message.ballot);
    }
  }

  /** Which machine of a node used each of its rounds (node@round -> machine). */
  readonly #roundUsers = new Map<string, string>();

  /** No two machines of a node, in any of its lives, may start phase 1 with one ballot. */
  sentPrepare(node: string, machine: string, ballot: Ballot): void {
    const key = `${node}@${ballot.round}`;
    const first = this.#roundUsers.get(key);
    if (first === undefined) this.#roundUsers.set(key, machine);
    else if (first !== machine)
      this.#violate(
        `ballot reuse: ${formatBallot(ballot)} was used by two machines of ${node} (${first}, ${machine})`,
      );
  }

  /** One ballot carries one value: two proposers (or machines) must never share a ballot. */
  sentAccept(_node: string, instance: Instance, ballot: Ballot, value: Value): void {
    const key = `${String(instance)}@${formatBallot(ballot)}`;
    const earlier = this.#valueAtBallot.get(key);
    if (earlier === undefined) this.#valueAtBallot.set(key, hex(value));
    else if (earlier !== hex(value))
      this.#violate(
        `ballot reuse: ${String(instance)} was proposed with two values at ${formatBallot(ballot)}`,
      );
  }

  /**
   * After a crash, the acceptor must remember at least every promise and acceptance it
   * answered before it: an answer is a claim that the record is durable.
   */
  recoveredAcceptor(node: string, state: AcceptorState): void {
    // Compacted slots are forgotten on purpose (they are chosen and in a durable snapshot).
    const kept = (instance: Instance): boolean =>
      typeof instance !== 'number' || instance > state.compactedThrough;
    for (const [instance, ballot] of this.#answeredPromises.get(node) ?? []) {
      if (!kept(instance)) continue;
      if (compareBallots(state.promisedFor(instance), ballot) < 0) {
        this.#violate(
          `durability: ${node} answered a promise of ${formatBallot(ballot)} for ${String(instance)} but forgot it in a crash`,
        );
      }
    }
    for (const [instance, ballot] of this.#answeredAccepts.get(node) ?? []) {
      if (!kept(instance)) continue;
      const accepted = state.acceptedFor(instance);
      if (accepted === undefined || compareBallots(accepted.ballot, ballot) < 0) {
        this.#violate(
          `durability: ${node} acknowledged accepting ${String(instance)} at ${formatBallot(ballot)} but forgot it in a crash`,
        );
      }
    }
  }

  /**
   * A node restarts from its last durable snapshot (through `throughSlot`, -1 for none) and
   * delivers from the slot after it.
   */
  restarted(node: string, throughSlot: number, state: KvStore): void {
    this.#fromSnapshot(node, throughSlot, state, 'restart');
  }

  /** A node installed a peer's snapshot: its state now reflects every slot through `throughSlot`. */
  installedSnapshot(node: string, throughSlot: number, state: KvStore): void {
    const last = this.#lastDelivered.get(node) ?? -1;
    if (throughSlot <= last)
      this.#violate(
        `log order: ${node} installed a snapshot through ${throughSlot} after slot ${last}`,
      );
    this.#fromSnapshot(node, throughSlot, state, 'snapshot');
  }

  #fromSnapshot(node: string, throughSlot: number, state: KvStore, how: string): void {
    this.#lastDelivered.set(node, throughSlot);
    this.#appliedAt.set(node, new Map(state.ghostApplied));
    // What the snapshot says each slot held must agree with what was chosen there.
    for (const [slot, value] of state.ghostLog) {
      if (slot > throughSlot) {
        this.#violate(`${how} on ${node}: its snapshot through ${throughSlot} holds slot ${slot}`);
        continue;
      }
      const first = this.#chosen.get(slot);
      if (first !== undefined && first.value !== value)
        this.#violate(
          `agreement: the ${how} snapshot of ${node} has another value for ${slot} than ${first.by}`,
        );
    }
  }

  /** A client was told its append was chosen at `slot`. */
  acknowledged(slot: number, value: Value): void {
    this.#acked.set(slot, hex(value));
    const chosen = this.#chosen.get(slot);
    if (chosen !== undefined && chosen.value !== hex(value))
      this.#violate(`acknowledged append lost: slot ${slot} holds another value`);
  }

  /**
   * At the end: every acknowledged write is in every given node's log at its slot, and took
   * effect there (it was not skipped as a duplicate because a later write of its client was
   * applied first).
   */
  checkDurability(states: ReadonlyMap<string, KvStore>): void {
    for (const [slot, value] of this.#acked) {
      for (const [node, state] of states) {
        const got = state.ghostLog.get(slot);
        if (got === undefined || got !== value) {
          this.#violate(
            `acknowledged append lost: ${node} has ${got === undefined ? 'nothing' : 'another value'} at slot ${slot}`,
          );
        } else if (!state.ghostApplied.has(value)) {
          this.#violate(
            `acknowledged write lost: ${node} skipped the write at slot ${slot} as one its client had already overtaken`,
          );
        }
      }
    }
  }

  get acknowledgedCount(): number {
    return this.#acked.size;
  }

  violate(message: string): void {
    this.#violate(message);
  }

  #agree(who: string, instance: Instance, value: Value): void {
    const key = hex(value);
    if (
      !isNoop(value) &&
      !this.#submitted.has(key) &&
      !(this.#proposed.get(instance)?.has(key) ?? false)
    ) {
      this.#violate(
        `validity: ${who} has a value for ${String(instance)} that nobody proposed there`,
      );
    }
    const first = this.#chosen.get(instance);
    if (first === undefined) {
      this.#chosen.set(instance, { value: key, by: who });
      const acked = typeof instance === 'number' ? this.#acked.get(instance) : undefined;
      if (acked !== undefined && acked !== key)
        this.#violate(`acknowledged append lost: slot ${instance} chose another value`);
    } else if (first.value !== key) {
      this.#violate(
        `agreement: ${who} has a different value for ${String(instance)} than ${first.by}`,
      );
    }
  }

  #violate(message: string): void {
    this.#onViolation?.(message);
    if (this.violations.length < 20)
      this.violations.push(`t=${this.#now().toFixed(1)}ms ${message}`);
  }
}

function raise(
  table: Map<string, Map<Instance, Ballot>>,
  node: string,
  instance: Instance,
  ballot: Ballot,
): void {
  const byInstance = table.get(node) ?? new Map<Instance, Ballot>();
  table.set(node, byInstance);
  const current = byInstance.get(instance);
  if (current === undefined || compareBallots(ballot, current) > 0)
    byInstance.set(instance, ballot);
}
