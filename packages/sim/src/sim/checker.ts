import { type AcceptorState, isNoop } from '@synod/actors';
import {
  type Ballot,
  compareBallots,
  formatBallot,
  type Instance,
  type PeerMessage,
  type Value,
} from '@synod/protocol';
import type { HostObserver } from './host.js';
import { hex } from './kv.js';

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
  #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
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

  /**
   * After a crash, the acceptor must remember at least every promise and acceptance it
   * answered before it: an answer is a claim that the record is durable.
   */
  recoveredAcceptor(node: string, state: AcceptorState): void {
    for (const [instance, ballot] of this.#answeredPromises.get(node) ?? []) {
      if (compareBallots(state.promisedFor(instance), ballot) < 0) {
        this.#violate(
          `durability: ${node} answered a promise of ${formatBallot(ballot)} for ${String(instance)} but forgot it in a crash`,
        );
      }
    }
    for (const [instance, ballot] of this.#answeredAccepts.get(node) ?? []) {
      const accepted = state.acceptedFor(instance);
      if (accepted === undefined || compareBallots(accepted.ballot, ballot) < 0) {
        this.#violate(
          `durability: ${node} acknowledged accepting ${String(instance)} at ${formatBallot(ballot)} but forgot it in a crash`,
        );
      }
    }
  }

  /** A node restarts with an empty state machine and delivers from slot 0 again. */
  restarted(node: string): void {
    this.#lastDelivered.delete(node);
    this.#appliedAt.delete(node);
  }

  /** A client was told its append was chosen at `slot`. */
  acknowledged(slot: number, value: Value): void {
    this.#acked.set(slot, hex(value));
    const chosen = this.#chosen.get(slot);
    if (chosen !== undefined && chosen.value !== hex(value))
      this.#violate(`acknowledged append lost: slot ${slot} holds another value`);
  }

  /** At the end: every acknowledged append is in every given node's log at its slot. */
  checkDurability(logs: ReadonlyMap<string, ReadonlyMap<number, Value>>): void {
    for (const [slot, value] of this.#acked) {
      for (const [node, log] of logs) {
        const got = log.get(slot);
        if (got === undefined || hex(got) !== value) {
          this.#violate(
            `acknowledged append lost: ${node} has ${got === undefined ? 'nothing' : 'another value'} at slot ${slot}`,
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
